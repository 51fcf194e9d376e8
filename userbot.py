"""Entry point: ``python userbot.py`` runs the bot (same as ``python -m voicebot run``)."""

import sys

from voicebot.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
