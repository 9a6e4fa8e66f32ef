"""MOM's own host collectors read the simulated host's rendered /proc and /sys."""
import configparser

from mom.collectors import GuestQemuProc, HostCpu, HostKSM, HostMemory
from mom.collectors.base import CollectorContext
from mom.hypervisor.base import GuestInfo
from mom.sim.model import MIB, PAGE_KIB, Simulation
from mom.sim.procfs import ProcTree, qemu_vsize_kib
from mom.sim.scenario import parse

SCENARIO = parse({
    "host": {"memory_mib": 5120, "swap_mib": 2048, "reserved_mib": 512, "cpus": 6},
    "ksm": {"run": 1, "pages_to_scan": 1000, "sleep_millisecs": 10},
    "guests": [{"count": 3, "memory_mib": 2048, "shareable": 0.3, "boot_seconds": 0,
                "workload": {"kind": "steady", "base": 0.7, "noise": 0}}]}, "procfs")


def collectors(tree, sim):
    ctx = CollectorContext(configparser.ConfigParser(), proc_root=tree.proc_root,
                           sys_root=tree.sys_root)
    return (HostMemory(ctx), HostKSM(ctx, clock=lambda: float(sim.now)), HostCpu(ctx))


def run_to(sim, tree, seconds):
    while sim.now < seconds:
        sim.step()
    tree.render()


def test_host_collectors_see_the_simulated_host(tmp_path):
    sim = Simulation(SCENARIO)
    tree = ProcTree(str(tmp_path), sim)
    memory, ksm, cpu = collectors(tree, sim)
    run_to(sim, tree, 60)
    memory.collect()
    ksm.collect()
    run_to(sim, tree, 120)
    swapped_before = sim.counters.pswpout_kib
    host = memory.collect()
    assert host["mem_available"] == 5120 * MIB
    assert host["mem_free"] == sim.host_mem_free_kib()
    assert host["mem_unused"] == sim.free_kib
    assert host["swap_total"] == 2048 * MIB
    assert host["swap_usage"] == sim.swap_total_kib - sim.swap_free_kib > 0
    run_to(sim, tree, 150)
    later = memory.collect()
    assert later["swap_out"] == (sim.counters.pswpout_kib // PAGE_KIB
                                 - swapped_before // PAGE_KIB)

    sample = ksm.collect()
    shared, sharing = sim.ksm_pages()
    assert sharing > 0
    assert (sample["ksm_run"], sample["ksm_pages_to_scan"], sample["ksm_sleep_millisecs"]) == (1, 1000, 10)
    assert (sample["ksm_pages_shared"], sample["ksm_pages_sharing"]) == (shared, sharing)
    assert sample["ksm_shareable"] == sum(qemu_vsize_kib(sim, g) for g in sim.running())
    # ksmd's share of a CPU, from its ticks over simulated seconds
    assert sample["ksmd_cpu_usage"] == round(100 * sim.ksmd_cpu_share())
    assert cpu.collect() == {"cpu_count": 6}


def test_qemu_processes_are_there_for_the_qemu_collector(tmp_path):
    sim = Simulation(SCENARIO)
    tree = ProcTree(str(tmp_path), sim)
    run_to(sim, tree, 30)
    guest = sim.running()[0]
    ctx = CollectorContext(configparser.ConfigParser(), guest=GuestInfo(guest.id, guest.name, guest.pid),
                           proc_root=tree.proc_root, sys_root=tree.sys_root)
    sample = GuestQemuProc(ctx).collect()
    assert sample["rss"] == guest.resident + 32 * MIB
    assert sample["host_minor_faults"] == guest.host_minor_faults


def test_a_killed_guest_leaves_proc(tmp_path):
    sim = Simulation(SCENARIO)
    tree = ProcTree(str(tmp_path), sim)
    run_to(sim, tree, 5)
    guest = sim.running()[0]
    assert (tmp_path / "proc" / str(guest.pid) / "stat").exists()
    sim._kill(guest)
    tree.render()
    assert not (tmp_path / "proc" / str(guest.pid)).exists()
    assert (tmp_path / "proc" / "37" / "stat").exists()           # ksmd stays


def test_mom_sees_the_simulated_host_through_its_own_collectors(tmp_path):
    from mom.sim import runner
    from mom.sim.scenario import load

    scenario = load("overcommit-150").with_options(guests=4)
    sim = Simulation(scenario)
    driver = runner.MomDriver(sim, scenario,
                              runner.write_stock_policies(str(tmp_path / "policies")),
                              str(tmp_path))
    try:
        while sim.now < 900:
            driver.maybe_run()
            sim.step()
        driver.maybe_run()                        # a cycle at t=900, on this state
        host = driver.mom.getStatistics()["host"]
        guests = driver.mom.getStatistics()["guests"]
    finally:
        driver.close()
    assert host["mem_free"] == sim.host_mem_free_kib()
    assert host["ksm_run"] == 1                   # the stock KSM policy started it
    assert host["ksm_pages_sharing"] == sim.ksm_pages()[1] > 0
    assert host["ksmd_cpu_usage"] == round(100 * sim.ksmd_cpu_share()) > 0
    first = sim.running()[0]
    assert guests[first.name]["balloon_cur"] == first.cur


def test_mom_applies_vcpu_and_io_limits_to_the_simulated_guests():
    from mom.sim import runner
    from mom.sim.scenario import load

    storm = runner.run(load("boot-storm").with_options(guests=4, duration=180),
                       runner.POLICY_STOCK).simulation
    # win guests: vcpu_limit 50 on a 32-CPU host, 2 vCPUs: 50% x 100000 x 32 / 2
    assert [g.vcpu_quota for g in storm.guests if g.name.startswith("win")] == [800000] * 2
    assert [g.vcpu_quota for g in storm.guests if g.name.startswith("lin")] == [-1] * 2
    burst = runner.run(load("overcommit-150").with_options(guests=2, duration=120),
                       runner.POLICY_STOCK).simulation
    for g in burst.guests:
        assert g.disks[0].current["total_iops_sec"] == 400
        assert g.disks[0].current["total_bytes_sec"] == 104857600
