"""The command line: ``python -m voicebot run|login|transcribe|doctor|health``.

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
from pathlib import Path


from . import __version__
from .config import Settings, load_settings
from .errors import ConfigError, NotLoggedIn, VoicebotError
from .logs import setup_logging

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["run"])
    try:
        return args.handler(args)
    except ConfigError as exc:
        print(f"voicebot: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except VoicebotError as exc:
        print(f"voicebot: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, NotLoggedIn) else EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voicebot", description="Telegram userbot that transcribes "
                                     "voice messages locally with faster-whisper.")
    parser.add_argument("--version", action="version", version=f"voicebot {__version__}")
    parser.add_argument("--env-file", default=".env", help="settings file (default: .env)")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the bot (default)").set_defaults(handler=_run)
    sub.add_parser("login", help="log in to Telegram interactively and save the session").set_defaults(
        handler=_login)
    tr = sub.add_parser("transcribe", help="transcribe local files to stdout, no Telegram needed")
    tr.add_argument("files", nargs="+", type=Path, metavar="FILE")
    tr.add_argument("--model", help="model name or directory (default: WHISPER_MODEL)")
    tr.add_argument("--language", help="language code, e.g. en (default: WHISPER_LANGUAGE or auto)")
    tr.set_defaults(handler=_transcribe)
    sub.add_parser("doctor", help="check configuration, model, device, ffmpeg, session, dirs").set_defaults(
        handler=_doctor)
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
            missing = exc.setting in ("API_ID", "API_HASH") and not (asked.get(exc.setting) or
                                                                     os.environ.get(exc.setting))
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


def _run(args) -> int:
    settings = _telegram_settings(args)
    setup_logging(settings.log_level, secrets=[settings.api_hash])
    from . import app  # imports Telethon and the engine only for commands that need them

    asyncio.run(app.run(settings))
    app.abandon_running_work()
    return EXIT_OK


def _login(args) -> int:
    settings = _telegram_settings(args)
    setup_logging(settings.log_level, secrets=[settings.api_hash])
    if not sys.stdin.isatty():
        print("voicebot: login needs a terminal to type the code into: "
              "use `docker compose run --rm voicebot login`", file=sys.stderr)
        return EXIT_USAGE
    from . import telegram
    from .storage import exclusive_lock, prepare_data_dir

    prepare_data_dir(settings.data_dir)
    with exclusive_lock(settings.data_dir):
        who = asyncio.run(telegram.login(settings))
    prepare_data_dir(settings.data_dir)
    print(f"Logged in as {who}. Session saved in {settings.data_dir}/. Now start the bot.")
    return EXIT_OK


def _transcribe(args) -> int:
    overrides = {}
    if args.model:
        overrides["WHISPER_MODEL"] = args.model
    if args.language:
        overrides["WHISPER_LANGUAGE"] = args.language
    settings = _settings(args, require_telegram=False, overrides=overrides)
    setup_logging("WARNING" if settings.log_level == "INFO" else settings.log_level)
    from .errors import AudioError, TooLongError
    from .pipeline import read_audio

    decoded, failed = [], 0
    for path in args.files:
        try:
            decoded.append((path, read_audio(path, settings.max_duration_s)))
        except AudioError as exc:
            print(f"voicebot: {path}: {exc}", file=sys.stderr)
            failed += 1
        except TooLongError as exc:
            print(f"voicebot: {path}: {exc.args[0]:.0f} s is over MAX_DURATION_SECONDS "
                  f"({settings.max_duration_s:.0f})", file=sys.stderr)
            failed += 1
    if decoded:
        from .transcriber import load_engine

        engine = load_engine(settings)
        for path, samples in decoded:
            result = engine.transcribe(samples, settings.whisper_language)
            if result.no_speech:
                print(f"voicebot: {path}: no speech detected", file=sys.stderr)
                continue
            if len(args.files) > 1:
                print(f"==> {path} <==")
            print(result.text, flush=True)
    return EXIT_FAILED if failed else EXIT_OK


def _health(args) -> int:
    from .storage import heartbeat_age

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
    for label, directory in (("temp dir", settings.temp_dir), ("data dir", settings.data_dir),
                             ("model cache", settings.model_cache_dir)):
        report(_writable(directory), f"{label} {directory} is writable",
               f"create {directory} and give this user write access")
    session = settings.session_file
    if session.exists():
        mode = session.stat().st_mode & 0o777
        report(mode == 0o600, f"session {session} (mode {mode:o})", f"chmod 600 {session}")
    else:
        report(False, f"session {session} does not exist", "run `python -m voicebot login`")

    from .transcriber import find_cached_model, pick_device

    device = pick_device(settings.whisper_device)
    report(True, f"device: {settings.whisper_device} → {device}")
    model = Path(settings.whisper_model).expanduser()
    if model.is_dir():
        report((model / "model.bin").is_file(), f"model directory {model}", "point WHISPER_MODEL at a "
               "directory holding a CTranslate2 Whisper model (model.bin)")
    else:
        cached = find_cached_model(settings.whisper_model, settings.model_cache_dir)
        report(True, f"model {settings.whisper_model}: " + (f"cached in {cached}" if cached else
               f"not cached yet; downloaded into {settings.model_cache_dir} on first start"))
    print("all checks passed" if not problems else f"{problems} problem(s) found")
    return EXIT_FAILED if problems else EXIT_OK


def _writable(directory: Path) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory):
            return True
    except OSError:
        return False
