"""Delivery: where a transcript goes, and what every Telegram refusal on the way out means.

- :mod:`.answer`: the answer to one voice as data (:class:`Answer`, its targets), and
  :class:`Deferred` / :class:`GaveUp`
- :mod:`.deliver`: :class:`Delivery`, the placeholder, progress, parts, ``transcript.txt``,
  captions, adoption after a crash, fallbacks

Example::

    answer = Answer(msg, job_id=7, target=delivery.target_for(msg))
    await delivery.open(answer, say("placeholder"))
    await delivery.deliver(answer, "Hello, world.")   # or raises Deferred / GaveUp
"""

from .answer import CAPTION, REPLY, SAVED, Answer, Deferred, GaveUp
from .deliver import Delivery

__all__ = ["CAPTION", "REPLY", "SAVED", "Answer", "Deferred", "Delivery", "GaveUp"]
