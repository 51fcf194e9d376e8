"""The endpoint pool's decisions, on in-process clients (the servers' side is tests/test_remote.py)."""

import threading

import pytest

from voicebot.engine.remote.openai_client import retry_after
from voicebot.engine.remote.pool import AllDown, Endpoint, EndpointError, EndpointPool, display_name
from voicebot.errors import Interrupted, TranscriptionError


class Client:
    def __init__(self, name, fail=()):
        self.name, self.fail, self.calls, self.pings = name, list(fail), 0, 0

    def ping(self, timeout):
        self.pings += 1

    def run(self):
        self.calls += 1
        if self.fail:
            raise self.fail.pop(0)
        return self.name


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def pool(*clients, **kwargs):
    return EndpointPool([Endpoint(f"http://{c.name}:8000/v1", c) for c in clients], **kwargs)


def test_least_busy_endpoint_first_and_load_spreads():
    a, b = Client("a"), Client("b")
    p = pool(a, b, capacity=2)
    first = p._acquire(wait=False)
    second = p._acquire(wait=False)
    assert {first.name, second.name} == {"a:8000/v1", "b:8000/v1"}  # not both on one
    p._release(first, None), p._release(second, None)
    assert [p.call(lambda c: c.run()) for _ in range(4)].count("a") == 2


def test_failure_benches_and_the_next_server_takes_the_request():
    a, b = Client("a", [EndpointError("HTTP 500")]), Client("b")
    clock = Clock()
    p = pool(a, b, clock=clock)
    p.endpoints[1].last_used = -1  # make a the first choice
    p.endpoints[0].last_used = -2
    assert p.call(lambda c: c.run()) == "b"
    status = {s.name: s for s in p.status()}
    assert status["a:8000/v1"].state == "failing" and "next try in 1s" in status["a:8000/v1"].detail
    clock.now += 1.5  # the bench is over: a is probed before it gets work again
    p.endpoints[1].in_flight = 1  # b busy
    assert p.call(lambda c: c.run()) == "a" and a.pings == 1


def test_retry_after_is_a_bench_not_a_failure():
    a = Client("a", [EndpointError("HTTP 429", retry_after=7)])
    clock = Clock()
    p = pool(a, clock=clock)
    threading.Timer(0.05, lambda: setattr(clock, "now", clock.now + 7.5)).start()
    assert p.call(lambda c: c.run()) == "a" and a.calls == 2
    assert p.endpoints[0].failures_in_a_row == 0


def test_every_server_down_raises_alldown_only_when_asked_not_to_wait():
    a = Client("a", [EndpointError("refused", down=True)])
    p = pool(a, clock=Clock())
    with pytest.raises(AllDown):
        p.call(lambda c: c.run(), wait=False)
    assert p.all_down()
    threading.Timer(0.1, p.close).start()
    with pytest.raises(Interrupted):  # shutdown wakes a waiting caller
        p.call(lambda c: c.run(), wait=True)


def test_refused_request_is_not_retried_and_failures_are_bounded():
    a = Client("a", [EndpointError("HTTP 401", retry=False)])
    with pytest.raises(TranscriptionError, match="401"):
        pool(a).call(lambda c: c.run())
    assert a.calls == 1
    clock = Clock()
    b = Client("b", [EndpointError("HTTP 500")] * 10)
    p = pool(b, attempts=3, clock=clock)
    ticker = threading.Event()

    def advance():
        while not ticker.wait(0.01):
            clock.now += 100

    threading.Thread(target=advance, daemon=True).start()
    try:
        with pytest.raises(TranscriptionError, match="failed 3 times"):
            p.call(lambda c: c.run())
    finally:
        ticker.set()
    assert b.calls == 3


def test_retry_after_header_forms():
    assert retry_after({"retry-after": "3"}) == 3.0
    assert retry_after({"retry-after-ms": "1500"}) == 1.5
    assert 0 <= retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) < 1  # in the past
    assert retry_after({}) == 1.0


def test_display_name_never_shows_credentials():
    assert display_name("https://gpu1.lan:8443/v1/") == "gpu1.lan:8443/v1"
    assert display_name("tcp://ha.local:10300") == "ha.local:10300"
