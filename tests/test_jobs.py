import asyncio
import threading
import time

from voicebot.core.jobs.queue import JobQueue


async def test_runs_jobs_with_bounded_concurrency():
    active, peak, done = 0, 0, []

    async def handler(job):
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.01)
        active -= 1
        done.append(job)

    queue = JobQueue(handler, workers=2, maxsize=10)
    queue.start()
    for i in range(6):
        assert queue.submit(i)
    await queue.join()
    await queue.stop()
    assert sorted(done) == list(range(6))
    assert peak == 2
    assert queue.done == 6


async def test_full_queue_refuses():
    gate = asyncio.Event()

    async def handler(job):
        await gate.wait()

    queue = JobQueue(handler, workers=1, maxsize=2)
    queue.start()
    assert queue.submit(1)
    await asyncio.sleep(0)  # the worker takes job 1
    assert queue.submit(2) and queue.submit(3)
    assert not queue.submit(4)
    assert queue.busy and queue.waiting == 2
    gate.set()
    await queue.join()
    await queue.stop()


async def test_a_failing_job_does_not_stop_the_worker():
    done = []

    async def handler(job):
        if job == "bad":
            raise ValueError("boom")
        done.append(job)

    queue = JobQueue(handler, workers=1, maxsize=5)
    queue.start()
    queue.submit("bad")
    queue.submit("good")
    await queue.join()
    await queue.stop()
    assert done == ["good"]


async def test_blocking_work_runs_off_the_event_loop():
    queue = JobQueue(None, workers=1, maxsize=1)
    loop_thread = threading.get_ident()
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    thread = await queue.run_blocking(lambda: (time.sleep(0.2), threading.get_ident())[1])
    task.cancel()
    await queue.stop()
    assert thread != loop_thread
    assert ticks >= 5  # the loop kept running while the thread slept
