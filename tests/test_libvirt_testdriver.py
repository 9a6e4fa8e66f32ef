"""LibvirtHypervisor against libvirt's real test driver (test:///default).

The test driver keeps one shared state per process, so every test makes
its own transient domains with unique names and destroys them after.
"""
from __future__ import annotations

import uuid

import pytest
from fake_hypervisor import polled

libvirt = pytest.importorskip("libvirt")

from mom.config import load  # noqa: E402
from mom.hypervisor.base import GuestGoneError, HypervisorError  # noqa: E402
from mom.hypervisor.libvirt import LibvirtHypervisor, create  # noqa: E402

URI = "test:///default"
BALLOON_VIRTIO = "<memballoon model='virtio'/>"


def domain_xml(name: str, memory_kib: int = 1048576, current_kib: int = 524288,
               vcpus: int = 2, balloon: str = BALLOON_VIRTIO) -> str:
    return f"""<domain type='test'>
  <name>{name}</name>
  <memory unit='KiB'>{memory_kib}</memory>
  <currentMemory unit='KiB'>{current_kib}</currentMemory>
  <vcpu>{vcpus}</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <source file='/var/lib/{name}-a.img'/><target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <source file='/var/lib/{name}-b.img'/><target dev='vdb' bus='virtio'/>
    </disk>
    {balloon}
  </devices>
</domain>"""


@pytest.fixture
def conn():
    c = libvirt.open(URI)
    yield c
    c.close()


@pytest.fixture
def make_domain(conn):
    """Create transient running domains; destroy them at teardown."""
    made = []

    def make(**kwargs):
        name = f"mom-{uuid.uuid4().hex[:10]}"
        dom = conn.createXML(domain_xml(name, **kwargs), 0)
        made.append(dom)
        return dom

    yield make
    for dom in made:
        try:
            dom.destroy()
        except libvirt.libvirtError:
            pass                # already gone
        try:
            dom.undefine()
        except libvirt.libvirtError:
            pass


@pytest.fixture
def hv(tmp_path):
    h = LibvirtHypervisor(URI, sys_root=str(tmp_path / "sys"))
    yield h
    h.close()


def test_list_guests_reports_active_domains(hv, make_domain):
    dom = make_domain()
    guests = {g.id: g for g in [p.info for p in hv.poll()]}
    assert dom.UUIDString() in guests
    info = guests[dom.UUIDString()]
    assert info.name == dom.name()
    assert info.pid is None             # the test driver has no processes


def test_list_guests_sets_stats_period_once_and_respects_existing(hv, make_domain):
    plain = make_domain()
    preset = make_domain(balloon="<memballoon model='virtio'><stats period='3'/></memballoon>")
    [p.info for p in hv.poll()]
    assert "<stats period='5'/>" in plain.XMLDesc(0)
    assert "<stats period='3'/>" in preset.XMLDesc(0)


def test_stats_period_argument(tmp_path, make_domain):
    dom = make_domain()
    h = LibvirtHypervisor(URI, stats_period=2)
    try:
        h.poll()
    finally:
        h.close()
    assert "<stats period='2'/>" in dom.XMLDesc(0)


def test_restarted_domain_is_set_up_again(hv, conn):
    name = f"mom-{uuid.uuid4().hex[:10]}"
    dom = conn.defineXML(domain_xml(name))
    try:
        dom.create()
        [p.info for p in hv.poll()]
        assert "<stats period='5'/>" in dom.XMLDesc(0)
        dom.destroy()
        dom.create()              # same UUID, new run: period back to 0
        assert "period='5'" not in dom.XMLDesc(0)
        [p.info for p in hv.poll()]
        assert "<stats period='5'/>" in dom.XMLDesc(0)
    finally:
        if dom.isActive():
            dom.destroy()
        dom.undefine()


def test_guest_stats_bulk_and_normalised(hv, make_domain):
    dom = make_domain(memory_kib=2097152, current_kib=1048576, vcpus=3)
    [p.info for p in hv.poll()]
    stats = polled(hv)
    assert dom.UUIDString() in stats
    mine = stats[dom.UUIDString()]
    raw = dom.memoryStats()
    assert mine["balloon"] == {"balloon_cur": 1048576, "balloon_max": 2097152,
                               "balloon_min": 0}
    assert mine["memory"] == {
        "mem_available": raw["available"], "mem_unused": raw["unused"],
        "mem_free": raw["usable"], "major_fault": raw["major_fault"],
        "minor_fault": raw["minor_fault"], "swap_in": raw["swap_in"],
        "swap_out": raw["swap_out"]}
    assert mine["cputune"]["vcpu_count"] == 3
    # The test driver has no vcpu_quota/period: nothing is made up.
    assert "vcpu_quota" not in mine["cputune"]


def test_guest_without_balloon_has_no_memory_sections(hv, make_domain):
    dom = make_domain(balloon="<memballoon model='none'/>")
    [p.info for p in hv.poll()]
    mine = polled(hv)[dom.UUIDString()]
    assert "balloon" not in mine and "memory" not in mine


def test_set_balloon_target_is_applied_live(hv, make_domain, conn):
    dom = make_domain(memory_kib=1048576, current_kib=1048576)
    guest_id = dom.UUIDString()
    hv.set_balloon_target(guest_id, 393216)
    fresh = conn.lookupByUUIDString(guest_id)
    assert fresh.info()[2] == 393216
    assert fresh.memoryStats()["actual"] == 393216
    assert polled(hv)[guest_id]["balloon"]["balloon_cur"] == 393216


def test_destroyed_domain_is_gone(hv, make_domain):
    dom = make_domain()
    guest_id = dom.UUIDString()
    assert guest_id in {g.id for g in [p.info for p in hv.poll()]}
    dom.destroy()
    assert guest_id not in {g.id for g in [p.info for p in hv.poll()]}
    assert guest_id not in polled(hv)
    with pytest.raises(GuestGoneError) as err:
        hv.set_balloon_target(guest_id, 262144)
    assert err.value.guest_id == guest_id
    with pytest.raises(GuestGoneError):
        hv.set_vcpu_tune(guest_id, quota=50000)
    with pytest.raises(GuestGoneError):
        hv.set_io_tune(guest_id, [{"name": "vda", "path": "",
                                   "ioTune": {"total_bytes_sec": 0}}])


def test_stopped_persistent_domain_is_gone(hv, conn):
    name = f"mom-{uuid.uuid4().hex[:10]}"
    dom = conn.defineXML(domain_xml(name))
    try:
        dom.create()
        guest_id = dom.UUIDString()
        dom.destroy()                 # still defined, no longer running
        with pytest.raises(GuestGoneError):
            hv.set_balloon_target(guest_id, 262144)
    finally:
        if dom.isActive():
            dom.destroy()
        dom.undefine()


def test_set_vcpu_tune_refused_by_driver_is_hypervisor_error(hv, make_domain):
    dom = make_domain()
    with pytest.raises(HypervisorError) as err:
        hv.set_vcpu_tune(dom.UUIDString(), quota=50000, period=100000)
    assert not isinstance(err.value, GuestGoneError)
    assert dom.UUIDString() in str(err.value)
    hv.set_vcpu_tune(dom.UUIDString())      # nothing to set: no call, no error


def test_set_io_tune_per_device(hv, make_domain):
    dom = make_domain()
    # The test driver wants each rate under its burst limit: give bursts.
    for disk in ("vda", "vdb"):
        dom.setBlockIoTune(disk, {"total_bytes_sec_max": 10**9,
                                  "total_iops_sec_max": 10**6}, 0)
    zero = dict.fromkeys(("read_bytes_sec", "write_bytes_sec",
                          "read_iops_sec", "write_iops_sec"), 0)
    hv.set_io_tune(dom.UUIDString(), [
        {"name": "vda", "path": "", "ioTune": {**zero, "total_bytes_sec": 5000000,
                                               "total_iops_sec": 300}},
        {"name": "", "path": f"/var/lib/{dom.name()}-b.img",
         "ioTune": {**zero, "total_bytes_sec": 7000, "total_iops_sec": 0}},
    ])
    vda, vdb = dom.blockIoTune("vda", 0), dom.blockIoTune("vdb", 0)
    assert (vda["total_bytes_sec"], vda["total_iops_sec"]) == (5000000, 300)
    assert (vdb["total_bytes_sec"], vdb["total_iops_sec"]) == (7000, 0)
    assert vda["total_bytes_sec_max"] == 10**9      # burst untouched


def test_set_io_tune_failure_names_disk_and_applies_others(hv, make_domain):
    dom = make_domain()
    dom.setBlockIoTune("vda", {"total_bytes_sec_max": 10**9}, 0)
    with pytest.raises(HypervisorError) as err:
        hv.set_io_tune(dom.UUIDString(), [
            {"name": "sdz", "path": "", "ioTune": {"total_bytes_sec": 1}},
            {"name": "vda", "path": "", "ioTune": {"total_bytes_sec": 4096}},
        ])
    assert "sdz" in str(err.value) and not isinstance(err.value, GuestGoneError)
    assert dom.blockIoTune("vda", 0)["total_bytes_sec"] == 4096


def test_ksm_tune_writes_sysfs_files(hv, tmp_path):
    ksm = tmp_path / "sys/kernel/mm/ksm"
    ksm.mkdir(parents=True)
    for key in ("run", "pages_to_scan", "sleep_millisecs", "merge_across_nodes"):
        (ksm / key).write_text("0\n")
    hv.ksm_tune({"run": 1, "pages_to_scan": 64, "sleep_millisecs": 10})
    assert (ksm / "run").read_text() == "1\n"
    assert (ksm / "pages_to_scan").read_text() == "64\n"
    assert (ksm / "sleep_millisecs").read_text() == "10\n"
    assert (ksm / "merge_across_nodes").read_text() == "0\n"   # not asked


def test_ksm_tune_failures(hv, tmp_path):
    with pytest.raises(HypervisorError, match="run"):
        hv.ksm_tune({"run": 1})                   # no sysfs tree there
    with pytest.raises(HypervisorError, match="bogus"):
        hv.ksm_tune({"bogus": 1})
    (tmp_path / "sys/kernel/mm/ksm").mkdir(parents=True)
    with pytest.raises(HypervisorError, match="pages_to_scan"):
        hv.ksm_tune({"pages_to_scan": "many"})


def test_ping_and_reconnect_after_dead_connection(hv, make_domain):
    assert hv.ping() is True
    dom = make_domain()
    hv._conn.close()          # the connection dies behind MOM's back
    assert dom.UUIDString() in {g.id for g in [p.info for p in hv.poll()]}
    hv.close()
    assert hv.ping() is True  # reopens on the next call


def test_create_from_config(tmp_path):
    path = tmp_path / "mom.conf"
    path.write_text(f"[main]\nlibvirt-hypervisor-uri = {URI} \n[host]\nsys-root = {tmp_path}\n")
    hv = create(load(str(path)))
    try:
        assert hv.uri == URI and hv.name == "libvirt" and hv.ping()
        assert hv.sys_root == str(tmp_path)     # KSM goes where HostKsm reads
    finally:
        hv.close()


def test_create_defaults_to_qemu_system(monkeypatch):
    from mom.hypervisor import libvirt as backend

    opened = []
    monkeypatch.setattr(backend.LibvirtHypervisor, "_connection",
                        lambda self: opened.append(self.uri))
    hv = create(load(""))
    assert hv.uri == "qemu:///system" and hv.sys_root == "/sys"
    assert opened == ["qemu:///system"]


def test_unreachable_uri_is_a_clear_error():
    with pytest.raises(HypervisorError, match="no-such-driver"):
        LibvirtHypervisor("no-such-driver:///nowhere")
