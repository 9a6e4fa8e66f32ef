"""Pure parts of the libvirt back-end, on captured data (no libvirt needed)."""
from __future__ import annotations

import os

import pytest

from mom.hypervisor.libvirt import (balloon_section, balloon_stats_period,
                                    cputune_section, iotune_params,
                                    ksm_write_order, memory_section,
                                    needs_event_loop, normalise_record,
                                    pid_file_candidates, read_pid,
                                    record_from_domain_info)

# getAllDomainStats(BALLOON | VCPU) for a running QEMU guest whose balloon
# driver is loaded (shape as libvirt 9.0 reports it; KiB / counts).
QEMU_RECORD = {
    "balloon.current": 524288, "balloon.maximum": 524288,
    "balloon.swap_in": 0, "balloon.swap_out": 0,
    "balloon.major_fault": 112, "balloon.minor_fault": 23817,
    "balloon.unused": 452628, "balloon.available": 481296,
    "balloon.usable": 447372, "balloon.last-update": 1700000000,
    "balloon.disk_caches": 2144, "balloon.hugetlb_pgalloc": 0,
    "balloon.hugetlb_pgfail": 0, "balloon.rss": 183764,
    "vcpu.current": 1, "vcpu.maximum": 1,
    "vcpu.0.state": 1, "vcpu.0.time": 2010000000, "vcpu.0.wait": 0,
}

# The same guest before its balloon driver loaded: host-side values only.
QEMU_RECORD_NO_DRIVER = {
    "balloon.current": 524288, "balloon.maximum": 524288,
    "balloon.rss": 90112, "vcpu.current": 1, "vcpu.maximum": 1,
}


def test_memory_section_maps_guest_fields():
    assert memory_section(QEMU_RECORD) == {
        "mem_available": 481296, "mem_unused": 452628,
        "mem_free": 447372, "major_fault": 112, "minor_fault": 23817,
        "swap_in": 0, "swap_out": 0,
    }


def test_memory_section_empty_without_guest_driver():
    # rss is host-side: it must not make a memory section appear.
    assert memory_section(QEMU_RECORD_NO_DRIVER) == {}


def test_mem_free_prefers_usable_then_unused_plus_caches_then_unused():
    rec = {"balloon.unused": 100, "balloon.disk_caches": 50,
           "balloon.usable": 120}
    assert memory_section(rec)["mem_free"] == 120
    del rec["balloon.usable"]
    assert memory_section(rec)["mem_free"] == 150
    del rec["balloon.disk_caches"]
    assert memory_section(rec)["mem_free"] == 100


def test_balloon_section():
    assert balloon_section(QEMU_RECORD) == {
        "balloon_cur": 524288, "balloon_max": 524288, "balloon_min": 0}
    assert balloon_section({"balloon.current": 10}) == {
        "balloon_cur": 10, "balloon_max": 10, "balloon_min": 0}
    assert balloon_section({"vcpu.current": 2}) == {}


def test_cputune_section_combines_bulk_and_cached_scheduler_params():
    assert cputune_section(QEMU_RECORD, {"vcpu_quota": -1,
                                         "vcpu_period": 100000,
                                         "cpu_shares": 1024}) == {
        "vcpu_count": 1, "vcpu_quota": -1, "vcpu_period": 100000,
        "vcpu_user_limit": 100}
    assert cputune_section(QEMU_RECORD) == {"vcpu_count": 1,
                                            "vcpu_user_limit": 100}
    assert cputune_section({}, None) == {}


def test_normalise_record_sections_only_when_present():
    full = normalise_record(QEMU_RECORD, {"vcpu_quota": 5000,
                                          "vcpu_period": 100000})
    assert set(full) == {"memory", "balloon", "cputune"}
    assert full["balloon"]["balloon_cur"] == 524288
    bare = normalise_record(QEMU_RECORD_NO_DRIVER)
    assert set(bare) == {"balloon", "cputune"}
    assert normalise_record({}) == {}


def test_normalise_record_without_balloon_device():
    stats = normalise_record(QEMU_RECORD, has_balloon=False)
    assert set(stats) == {"cputune"}


def test_record_from_domain_info_matches_bulk_shape():
    # dom.info() and dom.memoryStats() as libvirt's test driver returns them.
    info = [1, 1048576, 524288, 2, 1795239730767823000]
    mem = {"actual": 524288, "swap_in": 0, "swap_out": 0, "major_fault": 0,
           "minor_fault": 0, "unused": 262144, "available": 524288,
           "usable": 262144, "last_update": 627319920,
           "disk_caches": 65536, "hugetlb_pgalloc": 0,
           "hugetlb_pgfail": 0, "rss": 262144}
    rec = record_from_domain_info(info, mem)
    assert rec["balloon.current"] == 524288
    assert rec["balloon.maximum"] == 1048576
    assert rec["vcpu.current"] == 2
    assert rec["balloon.last-update"] == 627319920
    assert "balloon.actual" not in rec
    stats = normalise_record(rec)
    assert stats["memory"]["mem_free"] == 262144
    assert stats["balloon"] == {"balloon_cur": 524288,
                                "balloon_max": 1048576, "balloon_min": 0}


def test_record_from_domain_info_without_guest_stats():
    rec = record_from_domain_info([1, 2048, 1024, 1, 0], {})
    assert normalise_record(rec)["balloon"]["balloon_cur"] == 1024
    assert "memory" not in normalise_record(rec)


@pytest.mark.parametrize("devices, expected", [
    ("<memballoon model='virtio'><stats period='3'/></memballoon>", 3),
    ("<memballoon model='virtio'/>", 0),
    ("<memballoon model='none'/>", None),
    ("", None),
])
def test_balloon_stats_period(devices, expected):
    xml = f"<domain type='kvm'><name>a</name><devices>{devices}</devices></domain>"
    assert balloon_stats_period(xml) == expected


def test_pid_file_candidates(monkeypatch):
    assert pid_file_candidates("qemu:///system", "vm1") == [
        "/run/libvirt/qemu/vm1.pid"]
    assert pid_file_candidates("qemu+unix:///system", "vm1") == [
        "/run/libvirt/qemu/vm1.pid"]
    assert pid_file_candidates("qemu:///embed?root=/var/x", "vm1") == [
        "/var/x/run/qemu/vm1.pid"]
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/7")
    assert pid_file_candidates("qemu:///session", "vm1") == [
        "/run/user/7/libvirt/qemu/run/vm1.pid"]
    assert pid_file_candidates("qemu+ssh://host/system", "vm1") == []
    assert pid_file_candidates("test:///default", "vm1") == []
    assert pid_file_candidates("lxc:///system", "vm1") == []


def test_read_pid(tmp_path):
    good, bad = tmp_path / "a.pid", tmp_path / "b.pid"
    good.write_text(f"{os.getpid()}\n")
    bad.write_text("garbage")
    assert read_pid([str(tmp_path / "missing.pid"), str(bad), str(good)]) == os.getpid()
    assert read_pid([str(bad)]) is None
    assert read_pid([]) is None


def test_needs_event_loop():
    assert needs_event_loop("qemu:///embed?root=/tmp/x")
    assert not needs_event_loop("qemu:///system")
    assert not needs_event_loop("test:///default")


def test_ksm_write_order_unmerge_before_merge_mode_start_after():
    assert ksm_write_order({"run": 2, "merge_across_nodes": 0,
                            "pages_to_scan": 64}) == [
        "pages_to_scan", "run", "merge_across_nodes"]
    assert ksm_write_order({"run": 1, "merge_across_nodes": 1,
                            "sleep_millisecs": 10}) == [
        "sleep_millisecs", "merge_across_nodes", "run"]
    assert ksm_write_order({"run": 0}) == ["run"]
    assert ksm_write_order({}) == []


def test_iotune_params_raise_burst_limit_only_when_set_and_lower():
    new = {"total_bytes_sec": 1000, "read_bytes_sec": 0, "write_bytes_sec": 0,
           "total_iops_sec": 50, "read_iops_sec": 0, "write_iops_sec": 0}
    current = {"total_bytes_sec_max": 500, "total_iops_sec_max": 0,
               "read_bytes_sec_max": 10**9}
    params = iotune_params(new, current)
    assert params["total_bytes_sec_max"] == 1000      # raised to the rate
    assert "total_iops_sec_max" not in params         # 0 = no burst: untouched
    assert "read_bytes_sec_max" not in params         # already above
    assert {k: params[k] for k in new} == new
    assert iotune_params({"bogus": 1}, {}) == {}


def test_missing_libvirt_python_is_a_clear_error(monkeypatch):
    import sys

    from mom.hypervisor import libvirt as backend
    from mom.hypervisor.base import HypervisorError

    monkeypatch.setattr(backend, "_libvirt_module", None)
    monkeypatch.setitem(sys.modules, "libvirt", None)    # import fails
    with pytest.raises(HypervisorError, match=r"mom-overcommit\[libvirt\]"):
        backend.LibvirtHypervisor("test:///default")
