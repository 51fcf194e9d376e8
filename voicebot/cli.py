"""The command line: ``python -m voicebot run|login [--qr]|transcribe|doctor|health``.

Exit codes: 0 success; 1 a file or check failed; 2 usage or configuration error.
Expected failures print one line on stderr, never a traceback.

Example::

    $ python -m voicebot transcribe voice.ogg --model tiny
    Hello, this is a test.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from loguru import logger

from voicebot import __version__
from voicebot.config import Settings, load_settings
from voicebot.errors import ConfigError, NotLoggedIn, VoicebotError
from voicebot.logs import setup_logging

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["run"])
    try:
        return args.handler(args)
    except VoicebotError as exc:
        return _report(exc)
    except KeyboardInterrupt:
        return 130


def _report(exc: VoicebotError) -> int:
    """One line on stderr for ``exc``; returns the exit code it means."""
    if isinstance(exc, ConfigError):
        print(f"voicebot: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"voicebot: {exc}", file=sys.stderr)
    return EXIT_USAGE if isinstance(exc, NotLoggedIn) else EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voicebot", description="Telegram userbot that transcribes voice messages locally with faster-whisper."
    )
    parser.add_argument("--version", action="version", version=f"voicebot {__version__}")
    parser.add_argument("--env-file", default=".env", help="settings file (default: .env)")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the bot (default)").set_defaults(handler=_run)
    login = sub.add_parser("login", help="log in to Telegram at this terminal and save the session")
    login.add_argument(
        "--qr", action="store_true", help="show a QR code to scan with Telegram on your phone instead of typing a code"
    )
    login.set_defaults(handler=_login)
    tr = sub.add_parser("transcribe", help="transcribe local files to stdout, no Telegram needed")
    tr.add_argument("files", nargs="+", type=Path, metavar="FILE")
    tr.add_argument("--model", help="model name or directory (default: WHISPER_MODEL)")
    tr.add_argument("--language", help="language code, e.g. en (default: WHISPER_LANGUAGE or auto)")
    tr.set_defaults(handler=_transcribe)
    doctor = sub.add_parser("doctor", help="check configuration, model, device, ffmpeg, session, dirs")
    doctor.add_argument(
        "--listen", type=float, metavar="SECONDS", help="instead, report which updates bring your reactions this long"
    )
    doctor.set_defaults(handler=_doctor)
    health = sub.add_parser("health", help="exit 0 if the running bot's heartbeat is fresh")
    health.add_argument("--max-age", type=float, default=120.0, metavar="SECONDS")
    health.set_defaults(handler=_health)
    return parser


def _settings(args, *, require_telegram: bool, overrides: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ)
    env.update(overrides or {})
    return load_settings(env, dotenv_path=args.env_file, require_telegram=require_telegram)


def _telegram_settings(args) -> Settings:
    """Settings for ``run``/``login``. On a terminal, a missing API_ID or API_HASH is asked for
    (and may be saved to the env file); without one, it is the usual one-line exit 2."""
    asked: dict[str, str] = {}
    while True:
        try:
            settings = _settings(args, require_telegram=True, overrides=asked)
            break
        except ConfigError as exc:
            missing = exc.setting in ("API_ID", "API_HASH") and not (
                asked.get(exc.setting) or os.environ.get(exc.setting)
            )
            if not (missing and sys.stdin.isatty()) or exc.setting in asked:
                raise
            print(f"{exc.setting} is not set. Get it at https://my.telegram.org → API development tools.")
            read = getpass.getpass if exc.setting == "API_HASH" else input
            asked[exc.setting] = read(f"{exc.setting}: ").strip()
    if asked and input(f"Save to {args.env_file}? [y/N] ").strip().lower() in ("y", "yes"):
        with open(args.env_file, "a", encoding="utf-8") as env_file:
            env_file.writelines(f"{name}={value}\n" for name, value in asked.items())
        os.chmod(args.env_file, 0o600)
        print(f"Saved to {args.env_file}.")
    return settings


def _secrets(settings: Settings) -> list[str]:
    return [settings.api_hash, settings.whisper_api_key, settings.llm_api_key]


def _run(args) -> int:
    settings = _telegram_settings(args)
    setup_logging(settings.log_level, secrets=_secrets(settings))
    from voicebot import app  # imports Telethon and the engine only for commands that need them

    try:
        asyncio.run(app.run(settings))
    except VoicebotError as exc:
        # Logged out or a wedged worker: a thread stuck in the engine must not keep us from exiting.
        code = _report(exc)
        app.abandon_running_work(code=code)
        return code
    app.abandon_running_work()
    return EXIT_OK


def _login(args) -> int:
    settings = _telegram_settings(args)
    setup_logging(settings.log_level, secrets=_secrets(settings))
    if not sys.stdin.isatty():
        print(
            "voicebot: login needs a terminal to type the code into: use `docker compose run --rm voicebot login`",
            file=sys.stderr,
        )
        return EXIT_USAGE
    from voicebot.login import Console
    from voicebot.storage import exclusive_lock, prepare_data_dir

    prepare_data_dir(settings.data_dir)
    # The session file holds the account's key: created 0600, never readable by others even briefly.
    os.umask(0o077)
    with exclusive_lock(settings.data_dir), Console() as console:
        who = asyncio.run(_log_in(settings, console, qr=args.qr))
    prepare_data_dir(settings.data_dir)
    print(f"Logged in as {who}. The session is in {settings.session_file} (mode 0600); now start the bot.")
    return EXIT_OK


async def _log_in(settings: Settings, terminal, *, qr: bool) -> str:
    """Log in at ``terminal`` (phone and code, or ``qr``) and keep the session file; returns who."""
    from voicebot import telegram
    from voicebot.login import interactive_login
    from voicebot.state import WATCHING_SINCE, State
    from voicebot.storage import prepare_data_dir

    client = telegram.make_client(settings)
    try:
        await client.connect()
        who = await interactive_login(telegram.TelethonLogin(client), terminal, qr=qr)
        # From now on voices are the bot's to answer, even before its first start (backfill).
        prepare_data_dir(settings.data_dir)
        with State.in_dir(settings.data_dir) as state:
            state.marks.keep(WATCHING_SINCE, time.time())
        await telegram.seed_channel_states(client)
    finally:
        await client.disconnect()
    logger.info("logged in as {}", who)
    return who


def _transcribe(args) -> int:
    overrides = {}
    if args.model:
        overrides["WHISPER_MODEL"] = args.model
    if args.language:
        overrides["WHISPER_LANGUAGE"] = args.language
    settings = _settings(args, require_telegram=False, overrides=overrides)
    setup_logging("WARNING" if settings.log_level == "INFO" else settings.log_level, secrets=_secrets(settings))
    from voicebot.audio import open_recording
    from voicebot.errors import AudioError, TooLongError

    decoded, failed = [], 0
    for path in args.files:
        try:
            decoded.append((path, open_recording(path, max_duration_s=settings.max_duration_s)))
        except AudioError as exc:
            print(f"voicebot: {path}: {exc}", file=sys.stderr)
            failed += 1
        except TooLongError as exc:
            print(
                f"voicebot: {path}: {exc.args[0]:.0f} s is over MAX_DURATION_SECONDS ({settings.max_duration_s:.0f})",
                file=sys.stderr,
            )
            failed += 1
    if decoded:
        from voicebot.engine.base import budgeted
        from voicebot.engine.loader import load_engine
        from voicebot.engine.remote.pool import AllDown

        engine = load_engine(settings, one_shot=True)  # no server for ONESHOT_TIMEOUT_SECONDS: AllDown
        for path, samples in decoded:
            try:
                result = engine.transcribe(
                    samples,
                    settings.whisper_language,
                    languages=settings.whisper_languages,
                    vocabulary=budgeted(settings.vocabulary),
                )
            except AllDown as exc:
                print(f"voicebot: {exc}; gave up (ONESHOT_TIMEOUT_SECONDS)", file=sys.stderr)
                return EXIT_FAILED
            if result.no_speech:
                print(f"voicebot: {path}: no speech detected", file=sys.stderr)
                continue
            if len(args.files) > 1:
                print(f"==> {path} <==")
            print(result.text, flush=True)
    return EXIT_FAILED if failed else EXIT_OK


def _health(args) -> int:
    from voicebot.storage import heartbeat_age

    settings = _settings(args, require_telegram=False)
    age = heartbeat_age(settings.data_dir)
    if age is None:
        print(f"unhealthy: no heartbeat in {settings.data_dir} yet", file=sys.stderr)
        return EXIT_FAILED
    if age > args.max_age:
        print(f"unhealthy: last heartbeat {age:.0f}s ago (limit {args.max_age:.0f}s)", file=sys.stderr)
        return EXIT_FAILED
    print(f"healthy: last heartbeat {age:.0f}s ago")
    return EXIT_OK


def _doctor(args) -> int:
    if args.listen:  # the bot must be stopped: one process per session
        settings = _telegram_settings(args)
        from voicebot.storage import exclusive_lock
        from voicebot.telegram.listen import doctor_listen

        with exclusive_lock(settings.data_dir):
            asyncio.run(doctor_listen(settings, args.listen, print))
        return EXIT_OK
    problems = 0

    def report(ok: bool, what: str, fix: str = "") -> None:
        nonlocal problems
        problems += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {what}" + (f"\n     → {fix}" if fix and not ok else ""))

    try:
        settings = _settings(args, require_telegram=True)
        report(True, "configuration is valid")
    except ConfigError as exc:
        report(False, f"configuration: {exc}", "edit .env (see .env.example)")
        settings = _settings(args, require_telegram=False)
    for tool in ("ffmpeg", "ffprobe"):
        # Optional: PyAV's bundled FFmpeg decodes every format Telegram sends (docs/docker.md,
        # "Decoding"); the program is a fallback for rarer codecs. The image ships none.
        found = shutil.which(tool)
        report(True, f"{tool}: {found or 'not installed (optional fallback decoder)'}")
    for label, directory in (
        ("temp dir", settings.temp_dir),
        ("data dir", settings.data_dir),
        ("model cache", settings.model_cache_dir),
    ):
        report(
            _writable(directory),
            f"{label} {directory} is writable",
            f"create {directory} and give this user write access",
        )
    session = settings.session_file
    if session.exists():
        mode = session.stat().st_mode & 0o777
        report(mode == 0o600, f"session {session} (mode {mode:o})", f"chmod 600 {session}")
    else:
        report(False, f"session {session} does not exist", "run `python -m voicebot login`")

    if settings.vocabulary and settings.whisper_engine == "wyoming":
        # Not a failure: the bot runs, only without the vocabulary.
        print("note VOCABULARY is set, but Wyoming has no field for it: it is not used with WHISPER_ENGINE=wyoming")
    if settings.llm_url:
        _doctor_llm(settings, report)
    if settings.remote:
        _doctor_endpoints(settings, report)  # report() counts the problems
        if settings.whisper_fallback == "none":
            print("all checks passed" if not problems else f"{problems} problem(s) found")
            return EXIT_FAILED if problems else EXIT_OK
    try:
        from voicebot.engine.local import find_cached_model, pick_device
    except ImportError as exc:
        report(
            False,
            f"local engine: {exc.name} is not installed",
            "this is the remote-only image: set WHISPER_ENGINE=openai or wyoming (and WHISPER_FALLBACK=none)",
        )
        print(f"{problems} problem(s) found")
        return EXIT_FAILED

    device = pick_device(settings.whisper_device)
    report(True, f"device: {settings.whisper_device} → {device}")
    name = settings.whisper_fallback_model if settings.remote else settings.whisper_model
    setting = "WHISPER_FALLBACK_MODEL" if settings.remote else "WHISPER_MODEL"
    model = Path(name).expanduser()
    if model.is_dir():
        report(
            (model / "model.bin").is_file(),
            f"model directory {model}",
            f"point {setting} at a directory holding a CTranslate2 Whisper model (model.bin)",
        )
    else:
        cached = find_cached_model(name, settings.model_cache_dir)
        report(
            True,
            f"model {name}: "
            + (
                f"cached in {cached}"
                if cached
                else f"not cached yet; downloaded into {settings.model_cache_dir} on first start"
            ),
        )
    print("all checks passed" if not problems else f"{problems} problem(s) found")
    return EXIT_FAILED if problems else EXIT_OK


def _doctor_endpoints(settings: Settings, report) -> int:
    """Each server: reachable, the model served, a 1 s test clip transcribed. Returns problems.

    All of it within ONESHOT_TIMEOUT_SECONDS: each request gets at most what is left of it
    (and 10 s), and a server not reached by then is reported unchecked."""
    import time

    import numpy as np

    from voicebot.engine.loader import load_remote_engine
    from voicebot.engine.remote.pool import EndpointError, display_name

    print(f"note WHISPER_ENGINE={settings.whisper_engine}: audio is sent to these servers; it leaves this machine")
    engine = load_remote_engine(settings, fallback=False)
    clip = (0.1 * np.sin(2 * np.pi * 440 * np.arange(16_000) / 16_000)).astype(np.float32)  # 1 s tone
    failed = 0
    limit = settings.oneshot_timeout_s
    deadline = time.monotonic() + limit

    def left() -> float:
        return max(0.1, min(10.0, deadline - time.monotonic()))

    for endpoint in engine.pool.endpoints:
        name, client = display_name(endpoint.url), endpoint.client
        if time.monotonic() >= deadline:
            report(False, f"{name}: not checked: ONESHOT_TIMEOUT_SECONDS ({limit:g} s) ran out", "raise it")
            failed += 1
            continue
        try:
            client.ping(timeout=left())
        except EndpointError as exc:
            report(
                False,
                f"{name}: {exc}",
                f"start the server, or fix WHISPER_URL (doctor waits ONESHOT_TIMEOUT_SECONDS, {limit:g} s, in all)",
            )
            failed += 1
            continue
        report(True, f"{name}: reachable")
        try:
            models = client.models(timeout=left())
        except EndpointError as exc:
            models = None
            report(False, f"{name}: cannot list models: {exc}", "check WHISPER_API_KEY")
            failed += 1
        wanted = settings.whisper_model
        if models is None:
            report(True, f"{name}: lists no models; the test clip checks {wanted or 'its default'}")
        elif wanted and wanted not in models:
            report(
                False,
                f"{name}: does not serve {wanted} (it has: {', '.join(models[:8]) or 'none'})",
                "set WHISPER_MODEL to one of those",
            )
            failed += 1
        else:
            report(True, f"{name}: serves {wanted or ', '.join(models[:4]) or 'its default model'}")
        started = time.monotonic()
        try:
            client.transcribe(clip, "en")
            report(True, f"{name}: transcribed a 1 s test clip in {time.monotonic() - started:.1f}s")
        except EndpointError as exc:
            report(False, f"{name}: the 1 s test clip failed: {exc}", "see the server's log")
            failed += 1
    return failed


def _doctor_llm(settings: Settings, report) -> None:
    """The LLM answers a one-token test prompt within LLM_TIMEOUT_SECONDS (the key: never shown)."""
    from voicebot.llm.client import LlmClient, LlmError, stays_here

    llm = LlmClient(settings.llm_url, settings.llm_model, settings.llm_api_key, settings.llm_timeout_seconds)
    where = "this machine" if stays_here(settings.llm_url) else "it leaves this machine"
    print(f"note LLM_URL is set: transcripts are sent to {llm.host} ({where})")

    async def check() -> str:
        try:
            return await llm.check()
        finally:
            await llm.aclose()

    try:
        report(True, f"LLM {asyncio.run(check())}")
    except LlmError as exc:
        report(False, f"LLM {exc}", "start the server, or fix LLM_URL, LLM_MODEL or LLM_API_KEY")


def _writable(directory: Path) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory):
            return True
    except OSError:
        return False
