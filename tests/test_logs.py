import sys

import pytest
from loguru import logger

from voicebot.logs import setup_logging

SECRET = "0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def restore_default_sink():
    yield
    logger.remove()
    logger.add(sys.stderr)  # loguru's default, for the tests that follow


def test_secrets_are_scrubbed_at_every_level(capsys):
    setup_logging("TRACE", secrets=[SECRET])
    logger.debug("connecting with hash {}", SECRET)
    logger.error("failed: {}", f"bad hash={SECRET}!")
    err = capsys.readouterr().err
    assert SECRET not in err
    assert err.count("***") == 2 and "bad hash=***!" in err


def test_level_filters(capsys):
    setup_logging("INFO")
    logger.debug("transcript: secret words")
    logger.info("job done")
    err = capsys.readouterr().err
    assert "job done" in err and "secret words" not in err
