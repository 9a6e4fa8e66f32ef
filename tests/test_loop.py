"""A MOM loop survives exceptions, wakes on demand and stops at once."""
import threading
import time

from waiting import wait_for
from mom.loop import Loop




def test_a_failing_step_is_logged_and_the_loop_goes_on(caplog):
    calls = []

    def step():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")

    stopping = threading.Event()
    loop = Loop("T", 0.01, step, stopping)
    loop.start()
    assert wait_for(lambda: len(calls) >= 3)
    loop.stop()
    loop.join(2)
    assert not loop.is_alive()
    assert loop.errors == 1
    assert "boom" in caplog.text and "Traceback" in caplog.text


def test_stop_interrupts_a_long_interval():
    stopping = threading.Event()
    loop = Loop("T", 3600, lambda: None, stopping)
    loop.start()
    assert wait_for(lambda: loop.rounds == 1)
    started = time.monotonic()
    loop.stop()
    loop.join(2)
    assert not loop.is_alive()
    assert time.monotonic() - started < 1


def test_wake_runs_the_next_step_now():
    stopping = threading.Event()
    loop = Loop("T", 3600, lambda: None, stopping)
    loop.start()
    assert wait_for(lambda: loop.rounds == 1)
    loop.wake()
    assert wait_for(lambda: loop.rounds == 2, timeout=2)
    loop.stop()
    loop.join(2)
