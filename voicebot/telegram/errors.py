"""Telethon's exceptions end here: each leaves as the core's :class:`~voicebot.errors.TelegramError`
named as Telegram names it, so what it means is decided in the core
(:func:`voicebot.errors.classify`), offline and tested.

Example::

    except errors.RPCError as exc:
        raise translate(exc, "send") from exc      # TelegramError('CHAT_WRITE_FORBIDDEN', 403)
"""

from __future__ import annotations

from telethon import errors
from telethon.errors.rpcerrorlist import rpc_errors_dict, rpc_errors_re

from voicebot.errors import RateLimited, TelegramError, Unreachable

# Telethon raises one class per Telegram error; the core wants Telegram's own names.
_NAMES = {cls: name for name, cls in rpc_errors_dict.items()}
_NAMES.update({cls: pattern.replace(r"(\d+)", "X") for pattern, cls in rpc_errors_re})


def rpc_error(exc: errors.RPCError) -> TelegramError:
    """An RPC error as Telegram names it (``FLOOD_WAIT_X``, ``MESSAGE_ID_INVALID``…)."""
    name = _NAMES.get(type(exc)) or exc.message or type(exc).__name__
    return TelegramError(name, abs(exc.code or 400))


def flood_seconds(exc: errors.FloodError) -> float:
    """How long a flood error asks us to wait."""
    return float(getattr(exc, "seconds", 0) or 0)


def translate(exc: Exception, what: str) -> TelegramError:
    """Any failure of a request: a flood wait as :class:`RateLimited`, an RPC error by its
    name, a lost connection as :class:`Unreachable`."""
    if isinstance(exc, errors.FloodError):
        return RateLimited(flood_seconds(exc), rpc_error(exc).name)
    if isinstance(exc, errors.RPCError):
        return rpc_error(exc)
    return Unreachable(f"{what}: {type(exc).__name__}")
