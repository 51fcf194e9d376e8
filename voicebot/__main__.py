"""``python -m voicebot`` → the command line (see ``voicebot.cli``)."""

import sys

from .cli import main

sys.exit(main())
