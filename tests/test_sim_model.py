"""The simulated host: balloons, guest swap, host swap, KSM, and the books."""
import pytest

from mom.hypervisor.base import GuestGoneError, HypervisorError
from mom.sim import runner
from mom.sim.hypervisor import SimHypervisor
from mom.sim.model import MIB, PAGE_KIB, SimInvariantError, Simulation
from mom.sim.scenario import load, parse, scenario_names

GIB = 1024 * MIB


def one_guest(**guest):
    """A host of 8 GiB with one 2 GiB guest (tunable), no boot ramp."""
    workload = {"kind": "steady", "base": 0.3, "cache": 0.1, "noise": 0.0}
    workload.update(guest.pop("workload", {}))
    spec = {"count": 1, "memory_mib": 2048, "min_mib": 256, "boot_seconds": 0,
            "workload": workload}
    spec.update(guest)
    return parse({"duration": 600, "host": {"memory_mib": 8192, "swap_mib": 4096},
                  "guests": [spec]}, "test")


def stepped(scenario, seconds):
    sim = Simulation(scenario)
    for _ in range(seconds):
        sim.step()
        sim.check()
    return sim


# -- the books -------------------------------------------------------------
@pytest.mark.parametrize("name", scenario_names())
def test_every_kib_is_in_one_place_every_step_under_mom(name):
    scenario = load(name).with_options(guests=4, duration=900)
    checked = []
    runner.run(scenario, runner.POLICY_STOCK,
               on_step=lambda sim: (sim.check(), checked.append(sim.now)))
    assert checked == list(range(1, 901))


def test_the_books_hold_while_the_host_swaps_and_kills():
    # 3 guests of 4 GiB that each touch almost all of it, on a 6 GiB host
    # with 2 GiB of swap: the host swaps, then its OOM killer must act.
    scenario = parse({"host": {"memory_mib": 6144, "swap_mib": 2048, "reserved_mib": 512},
                      "guests": [{"count": 3, "memory_mib": 4096, "boot_seconds": 0,
                                  "workload": {"kind": "steady", "base": 0.9, "noise": 0}}]},
                     "squeeze")
    sim = stepped(scenario, 300)
    assert sim.counters.pswpout_kib > 0
    assert sim.counters.oom_kills >= 1
    assert len(sim.running()) == 3 - sim.counters.oom_kills


def test_check_reports_a_kib_out_of_place():
    sim = stepped(one_guest(), 5)
    sim.free_kib += PAGE_KIB
    with pytest.raises(SimInvariantError, match="host memory does not add up"):
        sim.check()


# -- balloons ----------------------------------------------------------------
def test_a_balloon_target_takes_effect_over_a_few_seconds():
    sim = stepped(one_guest(), 10)
    guest = sim.running()[0]
    target = guest.cur - 512 * MIB
    SimHypervisor(sim).set_balloon_target(guest.id, target)
    sim.step()
    assert guest.cur == 2048 * MIB - 64 * MIB        # 64 MiB/s, the host's default
    for _ in range(7):
        sim.step()
    assert guest.cur == target
    assert guest.stats()["balloon"]["balloon_cur"] == target
    assert guest.stats()["memory"]["mem_available"] == target - 42 * MIB


def test_a_squeezed_guest_swaps_and_it_is_counted():
    sim = stepped(one_guest(workload={"base": 0.6}), 30)
    guest = sim.running()[0]
    assert guest.swap_out_kib == 0
    SimHypervisor(sim).set_balloon_target(guest.id, 800 * MIB)
    for _ in range(60):
        sim.step()
        sim.check()
    memory = guest.stats()["memory"]
    assert guest.cur == 800 * MIB
    assert memory["swap_out"] > 300 * MIB           # ~1.2 GiB working set in 800 MiB
    assert memory["swap_in"] > 0                    # and it keeps touching it
    assert memory["major_fault"] >= memory["swap_in"] // PAGE_KIB
    assert memory["swap_usage"] == guest.swapped > 0


def test_a_balloon_stops_at_what_the_guest_kernel_keeps():
    # 2 GiB guest, 1.2 GiB working set, 256 MiB of swap: the kernel cannot
    # give more than its swap can take.
    sim = stepped(one_guest(swap_mib=256, workload={"base": 0.6}), 10)
    guest = sim.running()[0]
    SimHypervisor(sim).set_balloon_target(guest.id, 100 * MIB)
    for _ in range(60):
        sim.step()
        sim.check()
    assert guest.cur == guest.floor_kib > 100 * MIB
    assert guest.floor_kib == (42 * MIB + guest.kernel_kib + 16 * MIB
                               + guest.want_anon - 256 * MIB)
    assert guest.swapped == 256 * MIB


def test_a_guest_gives_page_cache_back_before_it_swaps():
    sim = stepped(one_guest(workload={"base": 0.3, "cache": 0.4}), 60)
    guest = sim.running()[0]
    cache = guest.cache
    assert cache == int(0.4 * 2048 * MIB)
    free = guest.unused_kib
    assert free < 700 * MIB
    SimHypervisor(sim).set_balloon_target(guest.id, guest.cur - 700 * MIB)
    for _ in range(20):
        sim.step()
    assert guest.cache == cache - (700 * MIB - free)
    assert guest.swap_out_kib == 0


def test_bad_balloon_targets_are_refused_and_change_nothing():
    sim = stepped(one_guest(), 3)
    hv = SimHypervisor(sim)
    guest = sim.running()[0]
    for bad in (0, -5, 2048 * MIB + 1, 1.5, "100"):
        with pytest.raises(HypervisorError):
            hv.set_balloon_target(guest.id, bad)
    assert guest.target == 2048 * MIB
    with pytest.raises(GuestGoneError):
        hv.set_balloon_target("no-such-guest", 1024 * MIB)


def test_direction_reversals_are_counted():
    sim = stepped(one_guest(), 3)
    guest = sim.running()[0]
    hv = SimHypervisor(sim)
    top = guest.cur
    # down, down, up (a reversal), down (another), the same again (no change)
    for target in (top - 100 * MIB, top - 200 * MIB, top - 100 * MIB, top - 300 * MIB,
                   top - 300 * MIB):
        hv.set_balloon_target(guest.id, target)
    assert (guest.balloon.changes, guest.balloon.reversals) == (4, 2)


# -- host memory ---------------------------------------------------------------
def test_host_free_memory_follows_what_guests_touch():
    sim = stepped(one_guest(), 60)
    guest = sim.running()[0]
    used_by_host = 1024 * MIB + 32 * MIB        # its reserve and one qemu
    assert sim.free_kib + sim.cache_kib == 8 * GIB - used_by_host - guest.footprint
    assert guest.footprint == guest.in_use_kib


def test_ballooning_gives_free_guest_memory_back_to_the_host():
    # A burst touches memory; after it the guest's free pages stay resident
    # until the balloon takes them.
    sim = stepped(one_guest(workload={"kind": "growing", "base": 0.2, "peak": 0.9,
                                      "rise": 10, "hold": 50, "fall": 10, "jitter": 0}), 100)
    guest = sim.running()[0]
    assert guest.footprint > guest.in_use_kib + 500 * MIB
    free_before = sim.free_kib
    SimHypervisor(sim).set_balloon_target(guest.id, guest.in_use_kib + 64 * MIB)
    for _ in range(40):
        sim.step()
    assert sim.free_kib > free_before + 400 * MIB


# -- KSM ---------------------------------------------------------------------
def ksm_host(pages_to_scan):
    return parse({"host": {"memory_mib": 16384},
                  "ksm": {"run": 1, "pages_to_scan": pages_to_scan, "sleep_millisecs": 20},
                  "guests": [{"count": 4, "memory_mib": 2048, "shareable": 0.4,
                              "boot_seconds": 0,
                              "workload": {"kind": "steady", "base": 0.5, "noise": 0}}]},
                 "ksm")


def test_ksm_sharing_grows_with_pages_to_scan():
    slow = stepped(ksm_host(100), 60)
    fast = stepped(ksm_host(1000), 60)
    assert fast.ksm_pages()[1] > 2 * slow.ksm_pages()[1] > 0
    assert fast.ksm.cpu_seconds > slow.ksm.cpu_seconds > 0
    assert fast.saved_kib == fast.ksm_pages()[1] * PAGE_KIB


def test_ksm_merges_only_guests_of_one_image():
    scenario = parse({"host": {"memory_mib": 16384},
                      "ksm": {"run": 1, "pages_to_scan": 1000},
                      "guests": [{"name": "a", "image": "x", "boot_seconds": 0},
                                 {"name": "b", "image": "y", "boot_seconds": 0}]}, "alone")
    sim = stepped(scenario, 120)
    assert sim.ksm_pages() == (0, 0)


def test_ksm_unmerge_gives_the_savings_back_and_merge_mode_waits():
    sim = stepped(ksm_host(1000), 200)
    hv = SimHypervisor(sim)
    saved = sim.saved_kib
    free = sim.free_kib
    assert saved > 0
    with pytest.raises(HypervisorError, match="EBUSY"):
        hv.ksm_tune({"merge_across_nodes": 0})
    assert sim.ksm.merge_across_nodes == 1
    hv.ksm_tune({"run": 2})
    assert sim.ksm_pages() == (0, 0)
    assert sim.free_kib == free - saved
    hv.ksm_tune({"merge_across_nodes": 0})
    assert sim.ksm.merge_across_nodes == 0


def test_bad_ksm_settings_are_refused_whole():
    sim = stepped(ksm_host(100), 1)
    hv = SimHypervisor(sim)
    for bad in ({"run": 3}, {"pages_to_scan": -1}, {"sleep": 5},
                {"pages_to_scan": 500, "run": 7}):
        with pytest.raises(HypervisorError):
            hv.ksm_tune(bad)
    assert (sim.ksm.run, sim.ksm.pages_to_scan) == (1, 100)


# -- vCPU and I/O ----------------------------------------------------------------
def test_vcpu_and_io_tuning_are_applied_and_bad_values_refused():
    sim = stepped(one_guest(disk_iops_max=300), 1)
    hv = SimHypervisor(sim)
    guest = sim.running()[0]
    hv.set_vcpu_tune(guest.id, quota=50000, period=None)
    assert guest.stats()["cputune"]["vcpu_quota"] == 50000
    with pytest.raises(HypervisorError):
        hv.set_vcpu_tune(guest.id, quota=10, period=100000)
    assert (guest.vcpu_quota, guest.vcpu_period) == (50000, 100000)
    disk = guest.stats()["iotune"][0]
    assert disk["maximum"]["total_iops_sec"] == 300
    hv.set_io_tune(guest.id, [{"name": "vda", "path": disk["path"],
                               "ioTune": {"total_iops_sec": 300}}])
    assert guest.stats()["iotune"][0]["current"]["total_iops_sec"] == 300
    with pytest.raises(HypervisorError):
        hv.set_io_tune(guest.id, [{"name": "vdz", "ioTune": {"total_iops_sec": 1}}])
    with pytest.raises(HypervisorError):
        hv.set_io_tune(guest.id, [{"name": "vda", "ioTune": {"total_iops_sec": -1}}])
    assert guest.stats()["iotune"][0]["current"]["total_iops_sec"] == 300


def test_a_quota_caps_the_guest_cpu_time():
    scenario = one_guest(workload={"cpu": 0.8})
    free_run = stepped(scenario, 100)
    capped = Simulation(scenario)
    capped.step()
    SimHypervisor(capped).set_vcpu_tune(capped.running()[0].id, quota=20000, period=100000)
    for _ in range(99):
        capped.step()
    assert free_run.running()[0].cpu_seconds == pytest.approx(0.8 * 2 * 100)
    assert capped.running()[0].cpu_seconds == pytest.approx(0.8 * 2 + 0.2 * 2 * 99)
