"""Static checks of the Docker packaging: Dockerfile, compose files, .dockerignore.

No Docker engine is needed: the Dockerfile is parsed with dockerfile-parse, the
compose files with PyYAML, and hadolint runs on the Dockerfile. Every test
checks a property the build or the deployment relies on (see docs/docker.md).
"""

from __future__ import annotations

import base64
import hashlib
import re
import shlex
import shutil
import stat
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from .helpers import hadolint

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "docker-compose.yml"
COMPOSE_GPU = REPO / "docker-compose.gpu.yml"
DOCKERIGNORE = REPO / ".dockerignore"
CI = REPO / ".ci"

RUNTIME_STAGES = ("runtime", "gpu")  # the stages that become images
COMPILERS = re.compile(
    r"(?<![\w.-])(gcc|g\+\+|cc|c\+\+|clang|build-essential|python3(\.\d+)?-dev|libpython3(\.\d+)?-dev|make|cmake|nasm)(?![\w.+-])"
)
APP_SOURCES = ("voicebot", "userbot.py")


def load_strip_wheels():
    """Import .ci/strip_wheels.py without leaving a __pycache__ in .ci/."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("strip_wheels", CI / "strip_wheels.py")
    module = importlib.util.module_from_spec(spec)
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = saved
    return module


# --------------------------------------------------------------------------- Dockerfile model


@dataclass
class Instr:
    instruction: str
    value: str
    line: int


@dataclass
class Stage:
    name: str
    base: str
    index: int
    instrs: list[Instr] = field(default_factory=list)
    args: dict[str, str] = field(default_factory=dict)

    def all(self, kind: str) -> list[Instr]:
        return [i for i in self.instrs if i.instruction == kind]

    def position(self, pred) -> list[int]:
        return [n for n, i in enumerate(self.instrs) if pred(i)]


def _substitute(text: str, variables: dict[str, str]) -> str:
    def repl(m: re.Match) -> str:
        return variables.get(m.group(1) or m.group(2), m.group(0))

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", repl, text)


def _arg_default(value: str) -> tuple[str, str]:
    name, _, default = value.partition("=")
    return name.strip(), default.strip().strip('"').strip("'")


def parse_dockerfile() -> tuple[list[Stage], dict[str, str], list[str]]:
    """Stages (with ARG defaults resolved), global ARGs, raw lines."""
    parser = DockerfileParser(path=str(DOCKERFILE))
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for item in parser.structure:
        kind, value = item["instruction"], item["value"]
        if kind == "COMMENT":
            continue
        if kind == "FROM":
            parts = value.split()
            base = _substitute(parts[0], global_args)
            name = parts[2] if len(parts) >= 3 and parts[1].lower() == "as" else str(len(stages))
            stages.append(Stage(name=name, base=base, index=len(stages)))
            continue
        if not stages:
            if kind == "ARG":
                k, v = _arg_default(value)
                global_args[k] = v
            continue
        stage = stages[-1]
        if kind == "ARG":
            k, v = _arg_default(value)
            stage.args[k] = v or global_args.get(k, "")
        stage.instrs.append(Instr(kind, value, item["startline"] + 1))
    return stages, global_args, DOCKERFILE.read_text().splitlines()


@pytest.fixture(scope="module")
def dockerfile():
    stages, global_args, lines = parse_dockerfile()
    return {"stages": stages, "by_name": {s.name: s for s in stages}, "args": global_args, "lines": lines}


def _ancestry(stage: Stage, by_name: dict[str, Stage]) -> list[Stage]:
    """The stage and the internal stages it is built FROM, nearest first."""
    chain = [stage]
    while chain[-1].base in by_name:
        chain.append(by_name[chain[-1].base])
    return chain


def _chain(stage: Stage, by_name: dict[str, Stage]) -> list[Instr]:
    """Every instruction that makes up the image of ``stage``, in build order (base stages first)."""
    return [i for s in reversed(_ancestry(stage, by_name)) for i in s.instrs]


def _is_pip_install(i: Instr) -> bool:
    return i.instruction == "RUN" and re.search(r"\bpip\b[^&;]*\binstall\b", i.value) is not None


def _is_app_copy(i: Instr) -> bool:
    if i.instruction not in ("COPY", "ADD") or "--from=" in i.value:
        return False
    words = [w for w in shlex.split(i.value) if not w.startswith("--")]
    sources = [w.rstrip("/") for w in words[:-1]]
    return any(s in (".", "./", "*") or s.split("/")[0] in APP_SOURCES for s in sources)


def _apt_installs(stage: Stage) -> list[Instr]:
    return [i for i in stage.all("RUN") if re.search(r"apt-get\s+install", i.value)]


# --------------------------------------------------------------------------- Dockerfile tests


def test_syntax_directive_is_first_line(dockerfile):
    assert dockerfile["lines"][0].strip() == "# syntax=docker/dockerfile:1"


def test_multi_stage_with_builder_and_runtimes(dockerfile):
    names = [s.name for s in dockerfile["stages"]]
    assert len(names) >= 2, names
    for needed in ("builder", *RUNTIME_STAGES):
        assert needed in names, f"stage {needed!r} missing: {names}"


def test_default_target_is_the_cpu_runtime(dockerfile):
    # `docker build .` without --target builds the last stage.
    last = dockerfile["stages"][-1]
    assert last.name == "runtime"
    root = _ancestry(last, dockerfile["by_name"])[-1].base
    assert re.fullmatch(r"python:3\.12-slim(-\w+)?", root), root


def test_runtime_stages_start_from_clean_bases(dockerfile):
    # FROM builder would inherit the compilers.
    by_name = dockerfile["by_name"]
    for name in RUNTIME_STAGES:
        chain = _ancestry(by_name[name], by_name)
        assert "builder" not in [s.name for s in chain], f"{name} is built on the builder"
        assert chain[-1].base not in by_name and "cuda" not in chain[-1].base
        assert re.fullmatch(r"python:3\.12-slim(-\w+)?", chain[-1].base), chain[-1].base


def test_no_compiler_in_runtime_stages(dockerfile):
    by_name = dockerfile["by_name"]
    # The pattern really finds compilers where they are installed on purpose ...
    build_side = [i for s in _ancestry(by_name["builder"], by_name) for i in _apt_installs(s)]
    assert any(COMPILERS.search(i.value) for i in build_side), "builder installs no compiler?"
    # ... and none in the images that ship.
    for name in RUNTIME_STAGES:
        for instr in [i for s in _ancestry(by_name[name], by_name) for i in _apt_installs(s)]:
            found = COMPILERS.search(instr.value)
            assert not found, f"{name} (line {instr.line}) installs {found.group(0)}"


def test_builder_copies_requirements_before_building_wheels(dockerfile):
    builder = dockerfile["by_name"]["builder"]
    copies = builder.position(lambda i: i.instruction == "COPY" and "requirements.txt" in i.value)
    wheels = builder.position(lambda i: i.instruction == "RUN" and re.search(r"pip\s+wheel", i.value))
    assert copies and wheels
    assert max(copies) < min(wheels)
    wheel_run = builder.instrs[wheels[0]].value
    assert re.search(r"(-r|--requirement)[ =]requirements\.txt", wheel_run)
    assert re.search(r"(-w|--wheel-dir)[ =]/wheels", wheel_run)
    assert "--mount=type=cache,target=/root/.cache/pip" in wheel_run
    # The builder never sees the application code, so code edits keep its cache.
    assert not [i for i in builder.instrs if _is_app_copy(i)]


def test_dependencies_install_before_app_code_in_every_image(dockerfile):
    for name in RUNTIME_STAGES:
        chain = _chain(dockerfile["by_name"][name], dockerfile["by_name"])
        installs = [n for n, i in enumerate(chain) if _is_pip_install(i)]
        app = [n for n, i in enumerate(chain) if _is_app_copy(i)]
        assert installs and app
        assert max(installs) < min(app), f"{name}: pip install after the app COPY"
        # The code is the last thing copied: only metadata and its compile come after it.
        assert {i.instruction for i in chain[min(app) :]} <= {"COPY", "RUN", "USER", "ARG"}


def test_no_copy_of_the_whole_context(dockerfile):
    for stage in dockerfile["stages"]:
        for i in stage.all("COPY") + stage.all("ADD"):
            words = [w for w in shlex.split(i.value) if not w.startswith("--")]
            assert words[0] not in (".", "./"), f"line {i.line}: COPY . copies the whole context"


def test_runtime_installs_offline_from_builder_wheels(dockerfile):
    for name in RUNTIME_STAGES:
        chain = _chain(dockerfile["by_name"][name], dockerfile["by_name"])
        installs = [i.value for i in chain if _is_pip_install(i)]
        assert len(installs) == (2 if name == "gpu" else 1), f"{name}: {installs}"
        for run in installs:
            assert "--no-index" in run and "--only-binary=:all:" in run
            assert re.search(r"--find-links[ =]/wheels", run)
            assert re.search(r"--mount=type=bind,from=(builder|cuda-wheels),source=/wheels", run), (
                f"{name}: wheels must be bind-mounted from a build stage, never copied into a layer"
            )
        run = installs[0]
        assert re.search(r"-r\s+\S*requirements\.txt", run)
        assert "--mount=type=bind,from=builder,source=/wheels" in run
        assert "--no-compile" not in run, "bytecode must be compiled at build time"


def test_pip_runs_with_the_base_interpreter_not_the_pipless_venv(dockerfile):
    """Once PATH starts with /opt/venv/bin, a bare `python -m pip` is the venv's, which has no
    pip (the build failed with "No module named pip"; tests/test_image.py builds it for real)."""
    for name in RUNTIME_STAGES:
        chain = _chain(dockerfile["by_name"][name], dockerfile["by_name"])
        for i in chain:
            if _is_pip_install(i):
                for call in re.findall(r"(\S+) -m pip\b", i.value):
                    assert call.startswith("/"), f"{name} line {i.line}: `{call} -m pip` depends on PATH"
                assert "--python /opt/venv/bin/python" in i.value


def test_app_code_is_byte_compiled(dockerfile):
    for name in RUNTIME_STAGES:
        stage = dockerfile["by_name"][name]
        compile_runs = stage.position(lambda i: i.instruction == "RUN" and "compileall" in i.value)
        app = stage.position(_is_app_copy)
        assert compile_runs and app and min(compile_runs) > max(app)


def test_runtime_runs_as_fixed_non_root_user(dockerfile):
    for name in RUNTIME_STAGES:
        stage = dockerfile["by_name"][name]
        users = stage.all("USER")
        assert users, f"{name}: no USER"
        user = _substitute(users[-1].value, stage.args).split(":")[0]
        assert user not in ("root", "0", ""), f"{name} runs as {user!r}"
        assert user.isdigit() and int(user) >= 1000, f"{name}: use a fixed numeric uid, got {user!r}"
        # USER comes after every RUN that needs root.
        assert stage.instrs.index(users[-1]) > max(stage.position(lambda i: i.instruction == "RUN"))


def test_healthcheck_uses_heartbeat(dockerfile):
    for name in RUNTIME_STAGES:
        checks = [
            i for i in _chain(dockerfile["by_name"][name], dockerfile["by_name"]) if i.instruction == "HEALTHCHECK"
        ]
        assert len(checks) == 1, name
        value = checks[0].value
        assert re.search(r'"-m",\s*"voicebot",\s*"health"', value), value
        start = re.search(r"--start-period=(\d+)([smh])", value)
        assert start, "first start downloads the model: give it a start period"
        seconds = int(start.group(1)) * {"s": 1, "m": 60, "h": 3600}[start.group(2)]
        assert seconds >= 120
        assert "--interval=" in value and "--timeout=" in value


def test_apt_uses_locked_cache_mounts_and_keeps_debs(dockerfile):
    by_name = dockerfile["by_name"]
    apt_runs = 0
    for stage in dockerfile["stages"]:
        for instr in _apt_installs(stage):
            apt_runs += 1
            assert re.search(r"--mount=type=cache,(id=[\w-]+,)?target=/var/cache/apt,sharing=locked", instr.value)
            assert re.search(r"--mount=type=cache,(id=[\w-]+,)?target=/var/lib/apt,sharing=locked", instr.value)
            # docker-clean would delete the downloaded .debs from the cache mount.
            before = [
                i
                for s in _ancestry(stage, by_name)
                for i in s.instrs
                if s is not stage or s.instrs.index(i) < s.instrs.index(instr)
            ]
            assert any("rm -f /etc/apt/apt.conf.d/docker-clean" in i.value for i in before), (
                f"stage {stage.name}: docker-clean not removed before line {instr.line}"
            )
            assert "--no-install-recommends" in instr.value
    assert apt_runs >= 2


def test_volumes_env_and_ownership(dockerfile):
    by_name = dockerfile["by_name"]
    for name in RUNTIME_STAGES:
        assert "base" in [s.name for s in _ancestry(by_name[name], by_name)]
        instrs = _chain(by_name[name], by_name)
        env = " ".join(i.value for i in instrs if i.instruction == "ENV")
        assert re.search(r"\bDATA_DIR=/data\b", env)
        assert re.search(r"\bWHISPER_CACHE_DIR=/models\b", env)
        assert re.search(r"\bHF_HOME=/models/", env)
        assert re.search(r"\bTEMP_DIR=/", env)
        volumes = [i for i in instrs if i.instruction == "VOLUME"]
        assert volumes and "/data" in volumes[0].value and "/models" in volumes[0].value
        volume_at = instrs.index(volumes[0])
        # Directories exist and belong to the app user before VOLUME (later changes are lost).
        for directory in ("/data", "/models/hf"):
            owner = [
                n
                for n, i in enumerate(instrs)
                if i.instruction == "RUN" and re.search(rf"install -d -o \S+ .*{directory}", i.value)
            ]
            assert owner and max(owner) < volume_at, directory


def test_remote_target_has_no_local_engine_and_its_own_volume(dockerfile):
    by_name = dockerfile["by_name"]
    instrs = _chain(by_name["remote"], by_name)
    assert "base" not in [s.name for s in _ancestry(by_name["remote"], by_name)]
    runs = " ".join(i.value for i in instrs if i.instruction == "RUN")
    assert "requirements-remote.txt" in runs and "-r /tmp/requirements.txt" not in runs
    volumes = [i.value for i in instrs if i.instruction == "VOLUME"]
    assert volumes == ['["/data"]']
    assert instrs[-1].instruction == "USER"


def test_gpu_adds_pinned_cuda12_wheels_to_the_cpu_base(dockerfile):
    by_name = dockerfile["by_name"]
    assert by_name["gpu"].base == by_name["runtime"].base == "base"
    pins = [line.split("#")[0].strip() for line in (REPO / "requirements-gpu.txt").read_text().splitlines()]
    pins = [p for p in pins if p]
    assert pins and all(re.fullmatch(r"nvidia-[\w-]+-cu12==[\d.]+", p) for p in pins), pins
    assert any(p.startswith("nvidia-cublas-cu12==12.") for p in pins)
    gpu_run = " ".join(i.value for i in by_name["gpu"].all("RUN"))
    assert "ldconfig" in gpu_run, "ctranslate2 dlopens libcublas.so.12 by name: the loader must find it"


def test_bake_model_is_optional(dockerfile):
    stages = dockerfile["by_name"]
    model = next(s for s in dockerfile["stages"] if "BAKE_MODEL" in s.args)
    assert model.args["BAKE_MODEL"] == "", "BAKE_MODEL must default to empty (no download)"
    run = " ".join(i.value for i in model.all("RUN"))
    assert '[ -n "$BAKE_MODEL" ]' in run
    assert 'download_model(sys.argv[1], cache_dir="/models")' in run
    stage = stages["base"]
    copies = stage.position(lambda i: i.instruction == "COPY" and f"--from={model.name}" in i.value)
    assert copies and min(copies) < stage.instrs.index(stage.all("VOLUME")[0])


def test_no_torch_anywhere():
    reqs = (REPO / "requirements.txt").read_text().lower()
    names = {
        re.split(r"[=<>!~\[; ]", line.strip())[0]
        for line in reqs.splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert not names & {"torch", "torchaudio", "torchvision", "transformers", "openai-whisper"}
    assert "faster-whisper" in names and "ctranslate2" in names
    assert "torch" not in DOCKERFILE.read_text().lower().replace("pytorch", "")


def test_hadolint_ignores_carry_a_reason(dockerfile):
    lines = dockerfile["lines"]
    pragmas = [n for n, line in enumerate(lines) if line.strip().startswith("# hadolint ignore=")]
    assert pragmas, "expected the DL3008 pragmas to be present"
    for n in pragmas:
        assert (lines[n - 1].strip().startswith("#") and "DL3008" in lines[n - 1]) or (
            "DL3008" in "".join(lines[max(0, n - 4) : n])
        ), f"line {n + 1}: ignore without a reason"


def test_hadolint_is_clean():
    result = subprocess.run([hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


# --------------------------------------------------------------------------- .dockerignore


def _dockerignore_patterns() -> list[tuple[bool, re.Pattern]]:
    patterns = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        line = line.lstrip("!").strip().strip("/")
        regex = ""
        i = 0
        while i < len(line):
            if line.startswith("**/", i):
                regex += "(?:.*/)?"
                i += 3
            elif line.startswith("**", i):
                regex += ".*"
                i += 2
            elif line[i] == "*":
                regex += "[^/]*"
                i += 1
            elif line[i] == "?":
                regex += "[^/]"
                i += 1
            elif line[i] == "[":
                end = line.index("]", i)
                regex += line[i : end + 1]
                i = end + 1
            else:
                regex += re.escape(line[i])
                i += 1
        patterns.append((negate, re.compile(regex)))
    return patterns


def is_ignored(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for negate, regex in _dockerignore_patterns():
        if any(regex.fullmatch(c) for c in candidates):
            ignored = not negate
    return ignored


def test_dockerignore_lists_the_required_entries():
    entries = {line.strip() for line in DOCKERIGNORE.read_text().splitlines()}
    for needed in (
        ".git",
        ".env",
        "docs/",
        "temp/",
        "logs/",
        "__pycache__",
        "tests/",
        "data/",
        "models/",
        "*.session",
        ".venv/",
    ):
        assert needed in entries, needed


@pytest.mark.parametrize(
    "path",
    [
        ".git/config",
        ".env",
        ".env.local",
        "voicebot.session",
        "data/voicebot.session",
        "data/heartbeat",
        "models/models--Systran--faster-whisper-small/blobs/x",
        "temp/123.ogg",
        "logs/bot.log",
        "docs/docker.md",
        "tests/test_docker.py",
        "bench/run.py",
        "voicebot/__pycache__/cli.cpython-312.pyc",
        "__pycache__/userbot.cpython-312.pyc",
        ".venv/bin/python",
        ".ci/run",
    ],
)
def test_dockerignore_keeps_out(path):
    assert is_ignored(path)


@pytest.mark.parametrize(
    "path",
    [
        "requirements.txt",
        "requirements-gpu.txt",
        "userbot.py",
        "voicebot/__init__.py",
        "voicebot/cli.py",
        ".ci/strip_wheels.py",
    ],
)
def test_dockerignore_lets_through_what_the_build_needs(path):
    assert not is_ignored(path)


def test_every_context_path_the_dockerfile_uses_exists_and_is_sent(dockerfile):
    used = set()
    for stage in dockerfile["stages"]:
        for i in stage.instrs:
            if i.instruction in ("COPY", "ADD") and "--from=" not in i.value:
                words = [w for w in shlex.split(i.value) if not w.startswith("--")]
                used.update(w.rstrip("/") for w in words[:-1])
            if i.instruction == "RUN":
                for mount in re.findall(r"--mount=(\S+)", i.value):
                    opts = dict(kv.split("=", 1) for kv in mount.split(",") if "=" in kv)
                    if opts.get("type") == "bind" and "from" not in opts:
                        used.add(opts["source"])
    assert {"requirements.txt", "voicebot", "userbot.py"} <= used
    for path in sorted(used):
        assert (REPO / path).exists(), f"{path} is used by the Dockerfile but missing from the repo"
        assert not is_ignored(path), f"{path} is used by the Dockerfile but excluded by .dockerignore"


# --------------------------------------------------------------------------- compose


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def compose_gpu():
    return yaml.safe_load(COMPOSE_GPU.read_text())


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_compose_service_build_and_image(compose, dockerfile):
    svc = compose["services"]["voicebot"]
    assert svc["build"]["context"] in (".", "./")
    assert svc["build"]["target"] == "runtime"
    assert svc["build"]["target"] in dockerfile["by_name"]
    assert svc["image"] == "voicebot:latest"
    assert svc["restart"] == "unless-stopped"


def test_compose_env_file_and_container_paths(compose):
    svc = compose["services"]["voicebot"]
    env_file = svc["env_file"]
    files = [env_file] if isinstance(env_file, str) else [e if isinstance(e, str) else e["path"] for e in env_file]
    assert ".env" in files
    env = _env(svc)
    assert env["DATA_DIR"] == "/data"
    assert env["WHISPER_CACHE_DIR"] == "/models"
    assert env["HF_HOME"].startswith("/models/")


def test_compose_named_volumes(compose):
    svc = compose["services"]["voicebot"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in svc["volumes"]}
    assert {"/data", "/models"} <= set(mounts)
    for target in ("/data", "/models"):
        source = mounts[target]
        assert "/" not in source and not source.startswith("."), f"{target} should be a named volume"
        assert source in compose["volumes"], f"volume {source} not declared"
        # A fixed name keeps the session when the checkout directory is renamed.
        assert "voicebot" in (compose["volumes"][source] or {}).get("name", ""), source


def test_compose_logging_is_bounded(compose):
    logging = compose["services"]["voicebot"]["logging"]
    assert logging["driver"] == "json-file"
    assert re.fullmatch(r"\d+[kmg]", str(logging["options"]["max-size"]))
    assert int(logging["options"]["max-file"]) >= 1


def test_compose_interactive_login_and_memory_limit(compose):
    svc = compose["services"]["voicebot"]
    assert svc["stdin_open"] is True and svc["tty"] is True
    assert svc["deploy"]["resources"]["limits"]["memory"]
    text = COMPOSE.read_text()
    assert "run --rm voicebot login" in text


def test_gpu_override_requests_an_nvidia_gpu(compose_gpu, dockerfile):
    svc = compose_gpu["services"]["voicebot"]
    assert svc["build"]["target"] == "gpu" and "gpu" in dockerfile["by_name"]
    assert "voicebot" in svc["image"] and svc["image"] != "voicebot:latest"
    devices = svc["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] and d.get("count") in (1, "all") for d in devices)
    assert _env(svc)["WHISPER_DEVICE"] == "cuda"


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_config_validates_when_compose_is_available(tmp_path):
    command = _compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed; structure checked above")
    for path in (COMPOSE, COMPOSE_GPU):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / ".env").write_text("API_ID=1\nAPI_HASH=0123456789abcdef0123456789abcdef\n")
    for files in (["-f", COMPOSE.name], ["-f", COMPOSE.name, "-f", COMPOSE_GPU.name]):
        result = subprocess.run([*command, *files, "config"], cwd=tmp_path, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        merged = yaml.safe_load(result.stdout)["services"]["voicebot"]
        assert merged["restart"] == "unless-stopped"
    # The override really switched the merged service to the GPU target.
    assert merged["build"]["target"] == "gpu"
    assert merged["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"


# --------------------------------------------------------------------------- build helpers


def _load_strip_wheels():
    return load_strip_wheels()


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def test_strip_wheels_removes_debug_sections_and_keeps_the_wheel_valid(tmp_path):
    gcc, strip = shutil.which("gcc") or shutil.which("cc"), shutil.which("strip")
    if not gcc or not strip:
        pytest.skip("needs a C compiler and binutils to make a shared object with debug info")
    sw = _load_strip_wheels()
    src = tmp_path / "ext.c"
    src.write_text("int answer(void) { return 42; }\n")
    so = tmp_path / "ext.so"
    subprocess.run([gcc, "-g", "-shared", "-fPIC", "-o", str(so), str(src)], check=True)
    so_bytes = so.read_bytes()
    assert sw.has_debug_sections(so_bytes)

    py = b"from .ext import *\n"
    members = {"demo/__init__.py": py, "demo/ext.so": so_bytes}
    record = "".join(f"{n},{_record_hash(d)},{len(d)}\n" for n, d in members.items()) + "demo-1.0.dist-info/RECORD,,\n"
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 2, 3, 4, 6))
            info.external_attr = (stat.S_IFREG | (0o755 if name.endswith(".so") else 0o644)) << 16
            z.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("demo-1.0.dist-info/RECORD", record)

    assert sw.main([str(tmp_path)]) == 0

    with zipfile.ZipFile(wheel) as z:
        assert z.namelist() == ["demo/__init__.py", "demo/ext.so", "demo-1.0.dist-info/RECORD"]
        new_so = z.read("demo/ext.so")
        assert len(new_so) < len(so_bytes)
        assert not sw.has_debug_sections(new_so)
        assert ".dynsym" in sw.elf_section_names(new_so)
        assert z.read("demo/__init__.py") == py
        info = z.getinfo("demo/ext.so")
        assert (info.external_attr >> 16) & 0o777 == 0o755
        assert info.date_time == (2024, 1, 2, 3, 4, 6)
        rows = {
            line.split(",")[0]: line.split(",")[1:]
            for line in z.read("demo-1.0.dist-info/RECORD").decode().splitlines()
        }
        assert rows["demo/ext.so"] == [_record_hash(new_so), str(len(new_so))]
        assert rows["demo/__init__.py"] == [_record_hash(py), str(len(py))]

    # A second run finds nothing left to strip and leaves the file alone.
    before = wheel.read_bytes()
    assert sw.main([str(tmp_path)]) == 0
    assert wheel.read_bytes() == before


def test_elf_parser_ignores_non_elf_data():
    sw = _load_strip_wheels()
    assert sw.elf_section_names(b"not an elf file at all" * 4) == []
    assert sw.elf_section_names(b"\x7fELF" + b"\0" * 10) == []
    assert not sw.has_debug_sections(b"")


# --------------------------------------------------------------------------- the newcomer's path


def test_ci_runs_the_readme_test_command():
    """README's second command is what CI runs, word for word (and it sets up what it needs)."""
    readme = (REPO / "README.md").read_text()
    command = re.search(r"^(.+?)\s+# run the tests", readme, re.M).group(1).strip()
    assert command.startswith(".ci/setup && ") and "pytest" in command
    ci = (CI / "run").read_text()
    assert command in [line.strip() for line in ci.splitlines()], "CI must run the README's test command"
    setup = (CI / "setup").read_text()
    assert subprocess.run(["sh", "-n", str(CI / "setup")]).returncode == 0
    assert 'SUDO="sudo"' in setup and 'if [ "$(id -u)" = 0 ]' in setup  # root needs no sudo
    for tool in ("ffmpeg", "espeak-ng", "docker-compose", "debootstrap", "gcc", "binutils", "python3-venv"):
        assert tool in setup, f".ci/setup does not install {tool}: a test would skip or fail without it"
    assert ".ci/builder setup" in setup
