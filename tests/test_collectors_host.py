"""Host collectors against temporary /proc and /sys trees."""
import configparser
import logging
import os
import shutil
from pathlib import Path

import pytest

from mom.collectors import HostCpu, HostKSM, HostMemory, HostTime
from mom.collectors.base import CollectionError, CollectorContext

DATA = Path(__file__).parent / "data"
QEMU_STAT = (DATA / "qemu_stat.txt").read_text()
KSMD_STAT = (DATA / "ksmd_stat.txt").read_text()


class Tree:
    """A fake /proc and /sys under tmp_path, filled from tests/data."""

    def __init__(self, root: Path) -> None:
        self.proc = root / "proc"
        self.sys = root / "sys"
        self.proc.mkdir()
        self.sys.mkdir()

    def ctx(self) -> CollectorContext:
        return CollectorContext(configparser.ConfigParser(),
                                proc_root=str(self.proc), sys_root=str(self.sys))

    def write(self, rel: str, text: str) -> None:
        path = self.proc / rel if not rel.startswith("/sys/") else self.sys / rel[5:]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def vmstat(self, pswpin: int, pswpout: int) -> None:
        text = (DATA / "vmstat.txt").read_text()
        text = text.replace("pswpin 0\n", f"pswpin {pswpin}\n")
        text = text.replace("pswpout 0\n", f"pswpout {pswpout}\n")
        self.write("vmstat", text)

    def ksm(self, **overrides: int) -> None:
        shutil.copytree(DATA / "ksm", self.sys / "kernel/mm/ksm", dirs_exist_ok=True)
        for name, value in overrides.items():
            self.write(f"/sys/kernel/mm/ksm/{name}", f"{value}\n")

    def process(self, pid: int, stat: str) -> None:
        """A process from a captured stat line, renumbered to ``pid``."""
        self.write(f"{pid}/stat", f"{pid}{stat[stat.index(' '):]}")

    def ksmd(self, pid: int = 37, utime: int = 0, stime: int = 0) -> None:
        fields = KSMD_STAT.split()
        fields[13], fields[14] = str(utime), str(stime)   # fields 14, 15 of proc(5)
        self.process(pid, " ".join(fields) + "\n")


@pytest.fixture
def tree(tmp_path):
    return Tree(tmp_path)


# -- HostMemory ----------------------------------------------------------
def test_host_memory_swap_rates_are_deltas(tree):
    shutil.copy(DATA / "meminfo_swap.txt", tree.proc / "meminfo")
    tree.vmstat(1000, 5000)
    collector = HostMemory(tree.ctx())
    first = collector.collect()
    assert first == {
        "mem_available": 24684092, "mem_unused": 23663632,
        "mem_free": 23663632 + 23524 + 821652, "anon_pages": 13144,
        "swap_total": 8388604, "swap_usage": 262144,
        "swap_in": 0, "swap_out": 0,
    }
    assert set(first) == HostMemory.fields
    tree.vmstat(1040, 5100)
    second = collector.collect()
    assert (second["swap_in"], second["swap_out"]) == (40, 100)
    third = collector.collect()                       # no change
    assert (third["swap_in"], third["swap_out"]) == (0, 0)


def test_host_memory_on_this_machine():
    sample = HostMemory(CollectorContext(configparser.ConfigParser())).collect()
    assert set(sample) == HostMemory.fields
    assert sample["mem_available"] > 0
    assert sample["mem_free"] >= sample["mem_unused"]


def test_host_memory_without_meminfo_is_a_collection_error(tree):
    with pytest.raises(CollectionError, match="meminfo"):
        HostMemory(tree.ctx()).collect()


# -- HostKSM -------------------------------------------------------------
class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_host_ksm_fields_cpu_and_shareable(tree):
    tree.ksm(run=1, pages_to_scan=64, pages_sharing=300)
    tree.ksmd(utime=10, stime=5)
    tree.process(5080, QEMU_STAT)
    tree.process(6000, QEMU_STAT.replace("(qemu-system-x86)", "(qemu-kvm)")
                 .replace(" 1587961856 ", " 1048576000 "))
    tree.process(5177, (DATA / "weird_comm_stat.txt").read_text())
    clock = Clock()
    collector = HostKSM(tree.ctx(), clock=clock, clk_tck=100)
    first = collector.collect()
    assert first == {
        "ksm_run": 1, "ksm_pages_to_scan": 64, "ksm_sleep_millisecs": 20,
        "ksm_pages_shared": 0, "ksm_pages_sharing": 300, "ksm_pages_unshared": 0,
        "ksm_pages_volatile": 0, "ksm_full_scans": 0, "ksm_merge_across_nodes": 1,
        "ksmd_cpu_usage": 0,                       # no previous sample
        "ksm_shareable": 1550744 + 1024000,
    }
    assert set(first) == HostKSM.fields
    # 10 s later ksmd used 150 more ticks at 100 Hz: 1.5 s of CPU = 15 %
    tree.ksmd(utime=110, stime=55)
    clock.now += 10
    assert collector.collect()["ksmd_cpu_usage"] == 15
    # idle for 5 s
    clock.now += 5
    assert collector.collect()["ksmd_cpu_usage"] == 0


def test_host_ksm_new_ksmd_pid_restarts_the_baseline(tree):
    tree.ksm()
    tree.ksmd(pid=37, utime=100)
    clock = Clock()
    collector = HostKSM(tree.ctx(), clock=clock, clk_tck=100)
    collector.collect()
    os.remove(tree.proc / "37" / "stat")
    os.rmdir(tree.proc / "37")
    tree.ksmd(pid=99, utime=5000)
    clock.now += 10
    assert collector.collect()["ksmd_cpu_usage"] == 0
    tree.ksmd(pid=99, utime=5100)
    clock.now += 10
    assert collector.collect()["ksmd_cpu_usage"] == 10


def test_host_ksm_a_user_process_named_ksmd_is_not_ksmd(tree, caplog):
    tree.ksm()
    # same stat line but without the kernel-thread flag
    tree.process(500, KSMD_STAT.replace(" 2097216 ", " 4194304 "))
    collector = HostKSM(tree.ctx(), clock=Clock(), clk_tck=100)
    with caplog.at_level(logging.WARNING, logger="mom.collectors.host_ksm"):
        assert collector.collect()["ksmd_cpu_usage"] == 0
        assert collector.collect()["ksmd_cpu_usage"] == 0
    assert [r.message for r in caplog.records] == [
        f"no ksmd kernel thread found under {tree.proc}; reporting ksmd_cpu_usage 0"]


def test_host_ksm_without_merge_across_nodes(tree):
    tree.ksm()
    os.remove(tree.sys / "kernel/mm/ksm/merge_across_nodes")
    sample = HostKSM(tree.ctx(), clk_tck=100).collect()
    assert "ksm_merge_across_nodes" not in sample
    assert "ksm_merge_across_nodes" in HostKSM.optional_fields
    assert sample["ksm_run"] == 0


def test_host_ksm_missing_required_file(tree):
    tree.ksm()
    os.remove(tree.sys / "kernel/mm/ksm/pages_sharing")
    with pytest.raises(CollectionError, match="pages_sharing"):
        HostKSM(tree.ctx(), clk_tck=100).collect()


def test_host_ksm_absent_is_a_clear_error(tree):
    with pytest.raises(CollectionError,
                       match=r"KSM is not available: .*kernel/mm/ksm does not exist"):
        HostKSM(tree.ctx()).collect()


def test_host_ksm_garbage_value(tree):
    tree.ksm(run="x")
    with pytest.raises(CollectionError, match="unexpected content"):
        HostKSM(tree.ctx(), clk_tck=100).collect()


# -- HostCpu / HostTime ----------------------------------------------------
def test_host_cpu_reads_online_list(tree):
    tree.write("/sys/devices/system/cpu/online", "0-7,16-23\n")
    assert HostCpu(tree.ctx()).collect() == {"cpu_count": 16}


def test_host_cpu_falls_back_to_os_cpu_count(tree):
    assert HostCpu(tree.ctx()).collect() == {"cpu_count": os.cpu_count()}


def test_host_time_uses_the_clock(tree):
    assert HostTime(tree.ctx(), clock=lambda: 1700000000.9).collect() == {
        "time": 1700000000}


def test_host_collectors_are_host_kind():
    assert {c.kind for c in (HostMemory, HostKSM, HostCpu, HostTime)} == {"host"}
