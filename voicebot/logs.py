"""Logging with loguru: one stream, and secrets scrubbed at every level.

Example::

    setup_logging("INFO", secrets=[settings.api_hash])
"""

from __future__ import annotations

import sys

from loguru import logger


def setup_logging(level: str = "INFO", secrets: list[str] | tuple[str, ...] = ()) -> None:
    """Send logs to stderr at ``level``, replacing any of ``secrets`` with ``***``."""
    hidden = [s for s in secrets if s and len(s) >= 6]

    def scrub(record) -> bool:
        for secret in hidden:
            if secret in record["message"]:
                record["message"] = record["message"].replace(secret, "***")
        return True

    logger.remove()
    logger.add(
        sys.stderr,
        level=level,
        filter=scrub,
        backtrace=False,
        diagnose=False,
        format="{time:YYYY-MM-DD HH:mm:ss} | {level: <7} | {message}",
    )
