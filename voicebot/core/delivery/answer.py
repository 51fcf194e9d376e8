"""One voice's answer as plain data: where it goes and what of it exists, and the two ways
delivery can end without one (:class:`Deferred`, :class:`GaveUp`).

A target's value is what the journal keeps (``payload["target"]``): ``reply``, ``caption``,
``saved``, or a log chat's id or @username.

Example::

    answer = Answer(msg, job_id=7, target=REPLY)
    answer.sent["1"] = Sent(msg.chat_id, placeholder_id)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from voicebot.errors import VoicebotError
from voicebot.messages import IncomingMessage, Sent

REPLY = "reply"  # in the voice's own chat (and forum topic)
CAPTION = "caption"  # the owner's own media: the transcript becomes its caption
SAVED = "saved"


class Deferred(VoicebotError):
    """Delivery cannot go on now; try again in ``seconds`` (journaled meanwhile), or as soon as
    Telegram is back when ``outage`` (Telegram could not be reached)."""

    def __init__(self, seconds: float, reason: str, *, outage: bool = False):
        super().__init__(f"{reason}; retrying in {seconds:.0f} s")
        self.seconds = seconds
        self.reason = reason
        self.outage = outage


class GaveUp(VoicebotError):
    """Delivery will never succeed (logged once); the job is finished as failed."""


@dataclass
class Answer:
    """What is known about the answer to one message: where it goes and what exists of it.

    ``sent`` maps slots ('1', '2'… for text parts, 'txt' for the file) to the messages
    created so far; slot '1' starts life as the placeholder.
    """

    msg: IncomingMessage
    job_id: int | None = None
    target: str = REPLY
    sent: dict[str, Sent] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    adopt: bool = False  # look for messages a crash left unrecorded before sending anew
    private: bool = False  # view-once: never cached or indexed, only ever in Saved Messages
