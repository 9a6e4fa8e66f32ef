"""Pure parsers on text captured from a real machine (tests/data)."""
from pathlib import Path

import pytest

from mom.collectors._procfs import (PF_KTHREAD, parse_key_values, parse_pid_stat,
                                    parse_pid_status)
from mom.collectors.base import CollectionError
from mom.collectors.host_cpu import parse_cpu_list
from mom.collectors.host_ksm import (cpu_percent, is_ksmd, is_qemu, parse_ksm,
                                     qemu_vsize_kib)
from mom.collectors.host_memory import (counter_delta, memory_fields, parse_meminfo,
                                        parse_vmstat)

DATA = Path(__file__).parent / "data"


def sample(name: str) -> str:
    return (DATA / name).read_text()


def test_parse_meminfo_real_sample():
    info = parse_meminfo(sample("meminfo.txt"))
    assert info["MemTotal"] == 24684092
    assert info["MemFree"] == 23663632
    assert info["MemAvailable"] == 24326616
    assert info["Buffers"] == 23524
    assert info["Cached"] == 821652
    assert info["AnonPages"] == 13144
    assert info["SwapTotal"] == 0
    # unit-less counters are kept too
    assert info["HugePages_Total"] == 0
    assert info["Hugepagesize"] == 2048
    assert len(info) == 54          # every line of the sample


def test_memory_fields_from_real_sample():
    assert memory_fields(parse_meminfo(sample("meminfo.txt"))) == {
        "mem_available": 24684092,
        "mem_unused": 23663632,
        "mem_free": 23663632 + 23524 + 821652,
        "anon_pages": 13144,
        "swap_total": 0,
        "swap_usage": 0,
    }


def test_memory_fields_with_swap():
    fields = memory_fields(parse_meminfo(sample("meminfo_swap.txt")))
    assert fields["swap_total"] == 8388604
    assert fields["swap_usage"] == 8388604 - 8126460


def test_memory_fields_missing_key_is_a_collection_error():
    info = parse_meminfo(sample("meminfo.txt"))
    del info["AnonPages"], info["Cached"]
    with pytest.raises(CollectionError, match="lacks Cached, AnonPages"):
        memory_fields(info)


def test_parse_vmstat_real_sample():
    vm = parse_vmstat(sample("vmstat.txt"))
    assert len(vm) == 192
    assert vm["pswpin"] == 0
    assert vm["pswpout"] == 0
    assert vm["pgfault"] == 1657396
    assert vm["pgmajfault"] == 831
    assert vm["nr_free_pages"] == 816567


def test_parse_vmstat_skips_junk():
    assert parse_vmstat("pswpin 5\n\nbad line here\nx y\npswpout 7\n") == {
        "pswpin": 5, "pswpout": 7}


def test_counter_delta():
    assert counter_delta(None, 100) == 0
    assert counter_delta(100, 130) == 30
    assert counter_delta(130, 5) == 0       # counter reset


def test_parse_pid_stat_ksmd():
    st = parse_pid_stat(sample("ksmd_stat.txt"))
    assert (st.pid, st.comm, st.state, st.ppid) == (37, "ksmd", "S", 2)
    assert st.flags == 2097216 and st.flags & PF_KTHREAD
    assert st.is_kernel_thread
    assert (st.utime, st.stime, st.vsize, st.rss_pages) == (0, 0, 0, 0)
    assert is_ksmd(st) and not is_qemu(st)


def test_parse_pid_stat_qemu():
    st = parse_pid_stat(sample("qemu_stat.txt"))
    assert (st.pid, st.comm, st.ppid) == (5080, "qemu-system-x86", 1)
    assert (st.minflt, st.majflt) == (5633, 0)
    assert (st.utime, st.stime) == (2, 2)
    assert st.vsize == 1587961856
    assert st.rss_pages == 6933
    assert not st.is_kernel_thread
    assert is_qemu(st) and not is_ksmd(st)


def test_parse_pid_stat_comm_with_spaces_and_parens():
    st = parse_pid_stat(sample("weird_comm_stat.txt"))
    assert st.pid == 5177
    assert st.comm == "we(ird) name"
    assert (st.state, st.ppid, st.minflt, st.vsize) == ("S", 5174, 206, 4464640)


@pytest.mark.parametrize("text", ["", "garbage", "12 (x) S 1 2 3"])
def test_parse_pid_stat_rejects_malformed(text):
    with pytest.raises(ValueError):
        parse_pid_stat(text)


def test_parse_pid_status_qemu():
    status = parse_pid_status(sample("qemu_status.txt"))
    assert status["Name"] == "qemu-system-x86"
    assert status["VmSize"] == 1550744
    assert status["VmRSS"] == 27948
    assert status["Pid"] == 5080
    assert "Uid" not in status          # multi-valued lines are skipped
    # stat's vsize and status's VmSize are the same number in other units
    assert parse_pid_stat(sample("qemu_stat.txt")).vsize // 1024 == 1550744


def test_parse_pid_status_kernel_thread_has_no_vm_fields():
    status = parse_pid_status(sample("ksmd_status.txt"))
    assert status["Name"] == "ksmd"
    assert "VmRSS" not in status and "VmSize" not in status


def test_parse_key_values_ignores_lines_without_colon_or_number():
    assert parse_key_values("A: 1 kB\nB 2\nC: x\nD:\nE: 3\n") == {"A": 1, "E": 3}


def test_parse_ksm_real_sample():
    files = {p.name: p.read_text() for p in (DATA / "ksm").iterdir()}
    assert parse_ksm(files) == {
        "ksm_run": 0, "ksm_pages_to_scan": 100, "ksm_sleep_millisecs": 20,
        "ksm_pages_shared": 0, "ksm_pages_sharing": 0, "ksm_pages_unshared": 0,
        "ksm_pages_volatile": 0, "ksm_full_scans": 0,
        "ksm_merge_across_nodes": 1,
    }


def test_parse_ksm_without_numa_file():
    assert parse_ksm({"run": "1\n", "pages_to_scan": "64\n"}) == {
        "ksm_run": 1, "ksm_pages_to_scan": 64}


def test_cpu_percent():
    # 50 ticks at 100 Hz in 10 s: 0.5 s of CPU = 5 %
    assert cpu_percent(100, 150, 10.0, 100) == 5
    assert cpu_percent(0, 1000, 5.0, 100) == 200     # not clamped: ticks are exact
    assert cpu_percent(100, 100, 10.0, 100) == 0
    assert cpu_percent(100, 150, 0.0, 100) == 0      # no time passed
    assert cpu_percent(150, 100, 10.0, 100) == 0     # counter went back


def test_qemu_vsize_kib_counts_only_qemu_processes():
    stats = [parse_pid_stat(sample(n)) for n in
             ("qemu_stat.txt", "ksmd_stat.txt", "weird_comm_stat.txt")]
    assert qemu_vsize_kib(stats) == 1550744


@pytest.mark.parametrize("text,count", [
    ("0-1\n", 2), ("0\n", 1), ("0-3,6,8-9\n", 7), ("", 0)])
def test_parse_cpu_list(text, count):
    assert parse_cpu_list(text) == count


def test_parse_cpu_list_real_sample():
    assert parse_cpu_list(sample("cpu_online.txt")) == 2
