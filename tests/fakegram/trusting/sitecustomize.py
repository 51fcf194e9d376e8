"""Trust fakegram's RSA key in a child process, as Telethon trusts Telegram's keys.

Telethon creates an auth key only with a server whose public key it knows
(``telethon/crypto/rsa.py``, ``add_key``). A test that runs ``python -m voicebot login``
against the fake puts this folder on the child's ``PYTHONPATH``; Python imports
``sitecustomize`` at start-up, before any of voicebot's code runs, and voicebot stays as
it ships.
"""

from pathlib import Path

from telethon.crypto import rsa

rsa.add_key((Path(__file__).parent.parent / "server_key.pub").read_text(), old=False)
