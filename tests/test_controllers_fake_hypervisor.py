"""The FakeHypervisor other tests (and the end-to-end ones) rely on."""
import threading

import pytest
from fake_hypervisor import FakeHypervisor, polled

from mom.hypervisor.base import GuestGoneError, GuestInfo, Hypervisor, HypervisorError

STATS = {"a": {"balloon": {"balloon_cur": 1000, "balloon_max": 2000, "balloon_min": 0},
               "iotune": [{"name": "vda", "path": "/d", "current": {"read_iops_sec": 1}}]},
         "b": {"memory": {"mem_free": 5}}}


def make(**kwargs):
    return FakeHypervisor([GuestInfo("a", "vm-a", 10), GuestInfo("b", "vm-b", 11)],
                          STATS, ksm={"run": 0}, **kwargs)


def test_is_a_hypervisor_and_records_calls():
    hv = make()
    assert isinstance(hv, Hypervisor)
    assert hv.ping() is True
    assert [p.info.name for p in hv.poll()] == ["vm-a", "vm-b"]
    assert polled(hv) == STATS
    hv.set_balloon_target("a", 900)
    hv.set_vcpu_tune("b", period=5000)
    hv.set_io_tune("a", [{"name": "vda", "path": "/d", "ioTune": {"read_iops_sec": 9}}])
    hv.ksm_tune({"run": 1})
    hv.close()
    assert hv.calls == [
        ("ping",), ("poll",), ("poll",),
        ("set_balloon_target", "a", 900),
        ("set_vcpu_tune", "b", None, 5000),
        ("set_io_tune", "a", [{"name": "vda", "path": "/d", "ioTune": {"read_iops_sec": 9}}]),
        ("ksm_tune", {"run": 1}),
        ("close",),
    ]
    assert hv.calls_to("ksm_tune") == [({"run": 1},)]
    assert hv.closed
    # effects
    assert hv.stats["a"]["balloon"]["balloon_cur"] == 900
    assert hv.stats["b"]["cputune"] == {"vcpu_period": 5000}
    assert hv.stats["a"]["iotune"][0]["current"] == {"read_iops_sec": 9}
    assert hv.ksm == {"run": 1}
    assert STATS["a"]["balloon"]["balloon_cur"] == 1000     # input not touched
    hv.reset_calls()
    assert hv.calls == []


def test_no_effects_when_disabled():
    hv = make(apply_effects=False)
    hv.set_balloon_target("a", 900)
    hv.ksm_tune({"run": 1})
    assert hv.stats["a"]["balloon"]["balloon_cur"] == 1000
    assert hv.ksm == {"run": 0}


def test_poll_is_a_copy():
    hv = make()
    hv.poll()[0].stats["balloon"]["balloon_cur"] = 1
    assert hv.stats["a"]["balloon"]["balloon_cur"] == 1000


def test_removed_guest_is_gone():
    hv = make()
    hv.remove_guest("a")
    assert list(polled(hv)) == ["b"]
    with pytest.raises(GuestGoneError) as info:
        hv.set_balloon_target("a", 1)
    assert info.value.guest_id == "a"
    hv.add_guest(GuestInfo("c", "vm-c"), {"memory": {}})
    hv.add_guest(GuestInfo("d", "vm-d"))          # polled, but no stats yet
    hv.update_stats("c", "memory", mem_free=7)
    hv.update_stats("c", "balloon", balloon_cur=9)
    assert polled(hv) == {"b": STATS["b"],
                          "c": {"memory": {"mem_free": 7}, "balloon": {"balloon_cur": 9}},
                          "d": {}}


def test_injected_failures_per_guest_and_count():
    hv = make()
    hv.fail("set_balloon_target", HypervisorError, guest_id="a", times=2)
    for _ in range(2):
        with pytest.raises(HypervisorError, match="injected set_balloon_target failure") as info:
            hv.set_balloon_target("a", 1)
        assert info.value.guest_id == "a"
    hv.set_balloon_target("a", 2)                 # the failure is used up
    hv.set_balloon_target("b", 3)                 # never affected
    assert hv.stats["a"]["balloon"]["balloon_cur"] == 2
    assert len(hv.calls_to("set_balloon_target")) == 4


def test_injected_failure_for_every_call_and_instance():
    hv = make()
    boom = HypervisorError("vdsm down")
    hv.fail("poll", boom)
    hv.fail("ping", ConnectionError)
    with pytest.raises(HypervisorError) as info:
        hv.poll()
    assert info.value is boom
    with pytest.raises(ConnectionError):
        hv.ping()
    hv.clear_failures("ping")
    assert hv.ping() is True
    with pytest.raises(HypervisorError):
        hv.poll()
    hv.clear_failures()
    assert polled(hv) == STATS


def test_block_and_release():
    hv = make()
    release = hv.block("poll")
    result = {}
    worker = threading.Thread(target=lambda: result.update(polled(hv)))
    worker.start()
    assert hv.entered("poll").wait(2)
    assert result == {} and worker.is_alive()
    hv.ping()                                     # other methods are not blocked
    release.set()
    worker.join(2)
    assert result == STATS


def test_unblock_all_and_block_timeout():
    hv = make(block_timeout=0.05)
    hv.block("ksm_tune")
    with pytest.raises(HypervisorError, match="blocked for 0.05s"):
        hv.ksm_tune({"run": 1})
    assert hv.ksm == {"run": 0}
    hv.unblock()
    hv.ksm_tune({"run": 1})
    assert hv.ksm == {"run": 1}
