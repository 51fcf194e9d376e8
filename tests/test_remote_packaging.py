"""Packaging of the remote engine: requirements-remote.txt, the Dockerfile's remote target,
docker-compose.server.yml and its server image."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from .helpers import hadolint

REPO = Path(__file__).parent.parent


def pins(name):
    lines = (REPO / name).read_text().splitlines()
    return {
        re.split("==", line)[0].lower().replace("_", "-"): line.split("==")[1]
        for line in lines
        if line and not line.startswith("#")
    }


def test_remote_requirements_are_the_full_pins_without_the_local_engine():
    full, remote = pins("requirements.txt"), pins("requirements-remote.txt")
    assert all(full.get(name) == version for name, version in remote.items())  # same pins: same wheels
    for local_only in ("faster-whisper", "ctranslate2", "onnxruntime", "tokenizers", "huggingface-hub"):
        assert local_only in full and local_only not in remote
    for needed in ("openai", "wyoming", "telethon", "av", "numpy"):
        assert needed in remote


def stage(name):
    text = (REPO / "Dockerfile").read_text()
    match = re.search(rf"^FROM \S+ AS {name}\n(.*?)(?=^FROM |\Z)", text, re.M | re.S)
    assert match, name
    return match.group(1)


def test_dockerfile_remote_target_has_no_local_engine():
    remote = stage("remote")
    assert "-r /tmp/requirements-remote.txt" in remote and "--no-index" in remote
    assert "/models" not in remote and "from=model" not in remote
    assert "USER ${APP_UID}" in remote
    # The default target stays the CPU image with the local engine.
    assert re.findall(r"^FROM \S+ AS (\S+)", (REPO / "Dockerfile").read_text(), re.M)[-1] == "runtime"


def test_compose_server_points_the_bot_at_the_gpu_server(tmp_path):
    compose = yaml.safe_load((REPO / "docker-compose.server.yml").read_text())
    bot, server = compose["services"]["voicebot"], compose["services"]["whisper"]
    assert bot["build"]["target"] == "remote"
    assert bot["environment"]["WHISPER_ENGINE"] == "openai"
    assert bot["environment"]["WHISPER_URL"] == "http://whisper:8000/v1"
    assert server["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"
    assert "ports" not in server  # only the bot reaches it
    dockerfile = (REPO / server["build"]["context"] / "Dockerfile").read_text()
    assert "faster-whisper-server==0.0.3" in dockerfile  # the release the tests run against
    legacy = shutil.which("docker-compose")
    if legacy is None:
        pytest.skip("docker-compose is not installed; structure checked above")
    shutil.copy(REPO / "docker-compose.server.yml", tmp_path)
    shutil.copytree(REPO / "whisper-server", tmp_path / "whisper-server")
    (tmp_path / ".env").write_text("API_ID=1\nAPI_HASH=0123456789abcdef0123456789abcdef\n")
    done = subprocess.run(
        [legacy, "-f", "docker-compose.server.yml", "config"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_server_dockerfile_passes_hadolint():
    done = subprocess.run([hadolint(), str(REPO / "whisper-server" / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
