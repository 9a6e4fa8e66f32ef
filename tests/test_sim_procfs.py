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
