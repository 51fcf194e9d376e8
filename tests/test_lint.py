"""The project's linter and formatter (pyproject.toml's ruff settings) pass on the whole tree."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ruff() -> str:
    """ruff from requirements-dev.txt, beside the interpreter (.venv/bin), which need not be on PATH.
    Missing is a failure, not a skip: `.ci/setup` installs it."""
    found = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert found, "ruff is not installed: run .ci/setup (requirements-dev.txt has ruff)"
    return found


def test_ruff_check_passes():
    result = subprocess.run([ruff(), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_leaves_the_code_as_it_is():
    result = subprocess.run([ruff(), "format", "--check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_config_is_the_projects():
    """The checks above read pyproject.toml: a rule it selects is reported on code that breaks it."""
    result = subprocess.run(
        [ruff(), "check", "--no-cache", "--stdin-filename", "voicebot/x.py", "-"],
        cwd=ROOT,
        input="import os\n",
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "F401" in result.stdout
