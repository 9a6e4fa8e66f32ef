"""MOM in thread mode, end to end: VDSM's front object starts a real MOM with
VDSM's shipped mom.conf and stock policies, over a fake VDSM (API and
supervdsm modules) and a fake host (/proc, /sys)."""
from __future__ import annotations

import configparser
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

FAKE_DIR = os.path.join(os.path.dirname(__file__), "fake_vdsm")
if FAKE_DIR not in sys.path:
    sys.path.insert(0, FAKE_DIR)

import fakehost  # noqa: E402
import fakevdsm  # noqa: E402

import vdsm_plugin  # noqa: E402
from waiting import wait_for  # noqa: E402
from mom.hypervisor.base import HypervisorError  # noqa: E402
from vdsm_plugin import momif  # noqa: E402

GiB = 1024 * 1024            # in KiB
MiB = 1024
INTERVAL = 0.05


def write_conf(path: str, host: fakehost.FakeHost, **main: str) -> str:
    """VDSM's shipped thread-mode mom.conf, pointed at the fake host, the
    package's stock policies, and short intervals."""
    config = configparser.ConfigParser(interpolation=None)
    config.optionxform = str
    config.read(vdsm_plugin.data_path(vdsm_plugin.THREAD_CONF))
    for key in ("main-loop-interval", "host-monitor-interval", "guest-monitor-interval",
                "guest-manager-interval"):
        config.set("main", key, str(INTERVAL))
    # evaluation at half the collection rate, as in the shipped 5 s / 10 s
    config.set("main", "policy-engine-interval", str(2 * INTERVAL))
    config.set("main", "policy-dir", vdsm_plugin.data_path(vdsm_plugin.POLICY_DIR))
    for key, value in main.items():
        config.set("main", key.replace("_", "-"), value)
    for key, value in host.mom_overrides()["host"].items():
        config.set("host", key, value)
    with open(path, "w", encoding="utf-8") as handle:
        config.write(handle)
    return path


@dataclass
class Scene:
    vdsm: fakevdsm.FakeVdsm
    host: fakehost.FakeHost
    conf: str

    def start(self) -> momif.ThreadMomFront:
        """As VDSM does it: vdsm.conf [mom] names the mode and MOM's conf."""
        front = vdsm_plugin.create_mom({"mom": {"mode": "thread", "conf": self.conf}})
        assert isinstance(front, momif.ThreadMomFront)
        return front


@pytest.fixture
def scene(tmp_path: Any) -> Iterator[Scene]:
    fake = fakevdsm.install(fakevdsm.FakeVdsm())   # what `import API` serves
    host = fakehost.FakeHost(str(tmp_path / "host"), mem_total=16 * GiB,
                             mem_free=12 * GiB, cpus=1)
    host.attach(fake)
    yield Scene(fake, host, write_conf(str(tmp_path / "mom.conf"), host))


@pytest.fixture
def running(scene: Scene) -> Iterator[tuple[Scene, momif.ThreadMomFront]]:
    fronts: list[momif.ThreadMomFront] = []

    def start() -> momif.ThreadMomFront:
        fronts.append(scene.start())
        return fronts[-1]

    yield scene, start            # type: ignore[misc]
    for front in fronts:
        front.stop()


def targets(fake: fakevdsm.FakeVdsm, vm: fakevdsm.FakeVM) -> list[int]:
    return [int(t) for t in fake.calls_for("setBalloonTarget", vm.vm_id)]


def mom_warnings(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.WARNING and text in r.getMessage()]


# -- start and stop ---------------------------------------------------------

@pytest.mark.parametrize("count", [10, 500])
def test_start_and_stop_as_vdsm_does(running: Any, count: int) -> None:
    scene, start = running
    scene.vdsm.add_vms(count)
    before = {t.ident for t in threading.enumerate()}
    front = start()
    assert front.thread.name == "MOM" and front.thread.is_alive()
    assert front.getStatus() == "active"
    wait_for(lambda: len(front.mom.getActiveGuests()) == count, what="guests managed")
    assert front.mom.hypervisor.name == "vdsm"
    # VDSM's own MOM thread runs the cycle: MOM adds exactly that one thread.
    ours = [t for t in threading.enumerate() if t.ident not in before]
    assert [t.name for t in ours] == ["MOM"]

    started = time.monotonic()
    front.stop()
    assert time.monotonic() - started < 5.0
    assert not front.thread.is_alive()
    assert front.getStatus() == "inactive"
    assert not [t for t in ours if t.is_alive()]
    assert front.getKsmStats() == {}          # stopped: empty, no exception


def test_vdsm_can_hand_over_its_modules(scene: Scene,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """An embedding program passes API and supervdsm in; nothing is imported."""
    monkeypatch.setitem(sys.modules, "API", None)
    monkeypatch.setitem(sys.modules, "supervdsm", None)
    other = fakevdsm.FakeVdsm()
    vm = other.add_vm(name="handed-over", vcpu_user_limit=50)
    front = vdsm_plugin.create_mom({"mom": {"mode": "thread", "conf": scene.conf}},
                                   api=other.api, supervdsm=other.supervdsm)
    try:
        wait_for(lambda: vm.vcpu_quota == 50000, what="vcpu limit via the handed-over API")
        assert scene.vdsm.calls["getAllVmStats"] == 0
    finally:
        front.stop()


def test_stop_is_bounded_when_a_vdsm_call_hangs(running: Any) -> None:
    scene, start = running
    scene.vdsm.add_vms(2)
    front = start()
    wait_for(lambda: len(front.mom.getActiveGuests()) == 2, what="guests managed")
    cycle = front.mom.cycle
    release = scene.vdsm.hang("getAllVmStats")
    try:
        time.sleep(3 * INTERVAL)           # the next call enters VDSM and sticks
        stuck_at = cycle.polls
        sent = len(scene.vdsm.ksm_calls) + sum(
            len(scene.vdsm.calls_for(verb, vm.vm_id)) for vm in scene.vdsm.vms.values()
            for verb in ("setBalloonTarget", "setCpuTuneQuota", "setCpuTunePeriod"))
        time.sleep(6 * INTERVAL)
        assert cycle.polls == stuck_at
        # while VDSM hangs, no control is re-sent from old samples
        assert sent == len(scene.vdsm.ksm_calls) + sum(
            len(scene.vdsm.calls_for(verb, vm.vm_id)) for vm in scene.vdsm.vms.values()
            for verb in ("setBalloonTarget", "setCpuTuneQuota", "setCpuTunePeriod"))
        started = time.monotonic()
        front.stop()
        assert time.monotonic() - started < 5.0
        assert front.getStatus() == "inactive"
    finally:
        release.set()
    # Once VDSM answers, the MOM thread ends without another call.
    front.thread.join(2.0)
    assert not front.thread.is_alive()
    assert cycle.polls == stuck_at


def test_thread_mode_outside_vdsm_fails_to_start(scene: Scene,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "API", None)      # `import API` fails
    with pytest.raises(HypervisorError, match="VDSM's 'API' module"):
        scene.start()


# -- ballooning ---------------------------------------------------------------

def test_balloon_shrinks_under_pressure_and_grows_back(running: Any) -> None:
    scene, start = running
    fake, host = scene.vdsm, scene.host
    small = fake.add_vm(name="small", used=512 * MiB,     # floor: balloon_min
                        balloon_min=1600 * MiB)
    busy = fake.add_vm(name="busy", used=1100 * MiB)      # floor: used + kernel + 30%
    no_agent = fake.add_vm(name="no-agent", agent=False)
    below_min = fake.add_vm(name="below-min", balloon_cur=900 * MiB,
                            balloon_target=900 * MiB)
    host.set_memory(16 * GiB, 1 * GiB)                    # 6% free: pressure
    front = start()
    wait_for(lambda: len(front.mom.getActiveGuests()) == 4, what="guests managed")
    time.sleep(10 * INTERVAL)
    # ballooning is off until the engine enables it: nothing is squeezed,
    # a guest under its guaranteed minimum is raised to it first, then (as
    # every guest while ballooning is off) grows back towards balloon_max
    assert targets(fake, small) == [] and targets(fake, busy) == []
    raised = wait_for(lambda: targets(fake, below_min), what="raised to min")
    assert raised[0] == below_min.balloon_min
    assert all(b >= a for a, b in zip(raised, raised[1:]))

    assert front.setPolicyParameters({"balloonEnabled": True}) is True
    wait_for(lambda: below_min.balloon_cur == below_min.balloon_min, what="raised to min")
    wait_for(lambda: small.balloon_cur == small.balloon_min, what="small at balloon_min")
    # busy settles where used + what its kernel keeps (the policy assumes
    # 64 MiB: the fake guest's total is its whole balloon) + a 30% reserve
    # meets its size, above balloon_min
    kernel = 64 * MiB
    settled = (busy.used + kernel) / 0.7
    wait_for(lambda: abs(busy.balloon_cur - settled) < 0.01 * settled, what="busy settled")
    assert len(targets(fake, busy)) >= 4

    # one target per sample: every target is below the one before
    for vm in (small, busy):
        previous = vm.balloon_max
        for target in targets(fake, vm):
            assert target < previous                         # shrinking
            assert target >= previous - 0.05 * previous - 1  # at most 5% a cycle
            assert target >= vm.balloon_min                   # never below balloon_min
            assert target >= vm.used + kernel + 0.3 * previous - 1   # keeps a 30% reserve
            previous = target
    assert targets(fake, no_agent) == []

    host.set_memory(16 * GiB, 10 * GiB)                   # plenty free again
    wait_for(lambda: small.balloon_cur == small.balloon_max
             and busy.balloon_cur == busy.balloon_max, what="grown back to balloon_max")
    for vm in (small, busy):
        # (the averaged host statistics may allow a last shrink step or two
        # after the change: growth starts at the smallest target)
        sent = targets(fake, vm)
        turn = len(sent) - 1 - sent[::-1].index(min(sent))
        previous = sent[turn]
        assert len(sent) - turn >= 4
        for target in sent[turn + 1:]:
            assert previous <= target <= min(vm.balloon_max, previous * 1.05 + 1)
            previous = target
    assert targets(fake, no_agent) == []


# -- KSM --------------------------------------------------------------------

def test_ksm_tune_only_on_change_and_ksm_stats(running: Any) -> None:
    scene, start = running
    fake, host = scene.vdsm, scene.host
    fake.add_vms(2)
    host.set_memory(16 * GiB, 1 * GiB)                    # pressure: KSM runs
    host.set_ksm(pages_sharing=2560)
    front = start()
    wait_for(lambda: host.ksm("pages_to_scan") == 1250, what="scan rate at its maximum")
    calls_at_max = len(fake.ksm_calls)
    time.sleep(10 * INTERVAL)
    assert len(fake.ksm_calls) == calls_at_max            # nothing changes, no call

    state = {"run": 0, "pages_to_scan": 100, "sleep_millisecs": 20, "merge_across_nodes": 1}
    for call in fake.ksm_calls:
        for key, value in call.items():
            assert value != state[key], f"{key} sent unchanged in {call}"
        state.update(call)
    assert state["run"] == 1 and state["sleep_millisecs"] == 10
    assert fake.ksm_calls[0]["pages_to_scan"] == 400      # 100 + 300 under pressure

    stats = wait_for(lambda: front.getKsmStats().get("ksmPages") == 1250
                     and front.getKsmStats(), what="ksm stats")
    assert stats == {"ksmState": True, "ksmPages": 1250, "ksmMergeAcrossNodes": True,
                     "memShared": 2560 * os.sysconf("SC_PAGE_SIZE") // (1024 * 1024),
                     "ksmCpu": 0}

    host.set_memory(16 * GiB, 12 * GiB)                   # no pressure: KSM stops
    wait_for(lambda: host.ksm("run") == 0, what="KSM stopped")
    time.sleep(10 * INTERVAL)
    # A stopped KSM's tunables are left as they were: one call, with run only.
    assert fake.ksm_calls[-1] == {"run": 0}
    assert host.ksm("pages_to_scan") == 1250
    wait_for(lambda: front.getKsmStats().get("ksmState") is False, what="ksmState False")


# -- vCPU limits --------------------------------------------------------------

def test_vcpu_limits(running: Any) -> None:
    scene, start = running
    fake = scene.vdsm
    half = fake.add_vm(name="half", vcpu_user_limit=50, vcpu_count=1)
    tiny = fake.add_vm(name="tiny", vcpu_user_limit=10, vcpu_count=100)
    free = fake.add_vm(name="free", vcpu_user_limit=100, vcpu_count=4)
    front = start()
    wait_for(lambda: (half.vcpu_quota, half.vcpu_period) == (50000, 100000)
             and (tiny.vcpu_quota, tiny.vcpu_period) == (1100, 1100000),
             what="vcpu limits applied")
    assert (free.vcpu_quota, free.vcpu_period) == (-1, 100000)
    assert fake.calls_for("setCpuTuneQuota", free.vm_id) == []
    engine = front.mom.policy_engine
    rounds = engine.evaluations
    wait_for(lambda: engine.evaluations >= rounds + 8, what="more policy cycles")
    # applied once, not every cycle
    assert fake.calls_for("setCpuTuneQuota", tiny.vm_id) == [1100]
    assert fake.calls_for("setCpuTunePeriod", tiny.vm_id) == [1100000]


# -- API calls per cycle ------------------------------------------------------

@pytest.mark.parametrize("count", [1, 100])
def test_one_get_all_vm_stats_per_collection_cycle(running: Any, count: int) -> None:
    scene, start = running
    fake = scene.vdsm
    fake.add_vms(count)
    front = start()
    wait_for(lambda: len(front.mom.getActiveGuests()) == count, what="guests managed")
    time.sleep(10 * INTERVAL)
    front.stop()
    cycles = front.mom.cycle.polls
    assert cycles >= 5
    # discovery and collection share each cycle's one call
    assert fake.calls["getAllVmStats"] == cycles
    assert fake.calls["getStats"] == 0
    assert fake.calls["getVMList"] == 0
    # I/O-tune policies: once per VM, then cached
    assert fake.calls["getIoTunePolicy"] == count


# -- failures -----------------------------------------------------------------

def test_failures_leave_mom_running_and_other_guests_managed(
        running: Any, caplog: pytest.LogCaptureFixture) -> None:
    scene, start = running
    fake, host = scene.vdsm, scene.host
    healthy = fake.add_vm(name="healthy")
    vanishing = fake.add_vm(name="vanishing")
    erring = fake.add_vm(name="erring")
    raising = fake.add_vm(name="raising")
    host.set_memory(16 * GiB, 1 * GiB)
    fake.ghost(vanishing.vm_id)                 # listed, gone when acted upon
    fake.fail("setBalloonTarget", erring.vm_id, code=42, message="balloon busy")
    fake.raise_on("setBalloonTarget", raising.vm_id, RuntimeError("libvirt hiccup"))
    caplog.set_level(logging.INFO)
    front = start()
    front.setPolicyParameters({"balloonEnabled": True})
    wait_for(lambda: len(targets(fake, healthy)) >= 3, what="healthy guest ballooned")
    time.sleep(10 * INTERVAL)
    for vm in (vanishing, erring, raising):
        assert len(fake.calls_for("setBalloonTarget", vm.vm_id)) >= 5   # tried every cycle
    # logged once per VM and condition, not every cycle
    assert len(mom_warnings(caplog, "balloon busy")) == 1
    assert len(mom_warnings(caplog, "libvirt hiccup")) == 1
    assert mom_warnings(caplog, vanishing.vm_id) == []      # a gone VM is news, not trouble
    gone = [r for r in caplog.records if vanishing.vm_id in r.getMessage()
            and "gone" in r.getMessage()]
    assert len(gone) == 2                                   # balloon, and I/O-tune read

    # the VM really disappears: no longer managed, nothing else changes
    fake.remove_vm(vanishing.vm_id)
    wait_for(lambda: "vanishing" not in front.mom.getActiveGuests(), what="vanished")
    # VDSM's bulk call itself fails for a while, then recovers
    fake.raise_on("getAllVmStats", exc=ConnectionError("VDSM busy"))
    time.sleep(5 * INTERVAL)
    fake.heal("getAllVmStats")
    count = len(targets(fake, healthy))
    wait_for(lambda: len(targets(fake, healthy)) > count or
             healthy.balloon_cur == healthy.balloon_min, what="managed again")
    # one warning, however many cycles it failed
    assert len(mom_warnings(caplog, "VDSM busy")) == 1
    assert front.getStatus() == "active"
    assert front.thread.is_alive()


def test_bad_policy_parameter_is_refused_and_mom_keeps_going(running: Any) -> None:
    scene, start = running
    scene.vdsm.add_vm()
    front = start()
    with pytest.raises(momif.PolicyParameterError):
        front.setPolicyParameters({"balloonEnabled": [True]})
    assert front.getStatus() == "active"
    assert "01-parameters" in front.mom.getNamedPolicies()
    assert front.mom.getNamedPolicies()["01-parameters"].strip().startswith("#")
