"""Guest collectors read their section of the cycle's bulk snapshot."""
import configparser
import shutil
from pathlib import Path

import pytest

from mom.collectors import (GuestBalloon, GuestBalloonOptional, GuestCpuTune,
                            GuestCpuTuneOptional, GuestIoTune, GuestIoTuneOptional,
                            GuestMemory, GuestMemoryOptional, GuestQemuProc,
                            GuestQemuProcOptional)
from mom.collectors.base import CollectionError, CollectorContext
from mom.hypervisor.base import GuestInfo
from mom.iotune import IoTuneDevice

DATA = Path(__file__).parent / "data"
GUEST = GuestInfo("6d1c-id", "vm1", pid=5080)

MEMORY = {"mem_available": 2097152, "mem_unused": 1048576, "mem_free": 1572864,
          "major_fault": 12, "minor_fault": 3400, "swap_in": 0, "swap_out": 4,
          "swap_total": 1048572, "swap_usage": 100}
BALLOON = {"balloon_cur": 2097152, "balloon_max": 4194304, "balloon_min": 1048576}
CPUTUNE = {"vcpu_quota": -1, "vcpu_period": 100000, "vcpu_user_limit": 100,
           "vcpu_count": 2}
LIMITS = {"total_bytes_sec": 0, "read_bytes_sec": 1000, "write_bytes_sec": 0,
          "total_iops_sec": 0, "read_iops_sec": 0, "write_iops_sec": 50}
IOTUNE = [{"name": "vda", "path": "/rhev/disk1",
           "guaranteed": {"total_bytes_sec": 10},
           "maximum": {"total_bytes_sec": 100, "read_iops_sec": 20},
           "current": LIMITS}]


def ctx(snapshot=None, guest=GUEST, proc_root="/proc"):
    return CollectorContext(configparser.ConfigParser(), guest=guest,
                            snapshot=snapshot, proc_root=proc_root)


@pytest.mark.parametrize("cls,section,values", [
    (GuestMemory, "memory", MEMORY),
    (GuestBalloon, "balloon", BALLOON),
    (GuestCpuTune, "cputune", CPUTUNE),
])
def test_full_section_is_returned(cls, section, values):
    snapshot = {"memory": MEMORY, "balloon": BALLOON, "cputune": CPUTUNE}
    assert cls(ctx(snapshot)).collect() == values
    assert cls.fields == set(values)
    assert cls.kind == "guest"


def test_values_are_made_ints_and_junk_is_absent():
    snapshot = {"balloon": {"balloon_cur": "2048", "balloon_max": 4096.0,
                            "balloon_min": None, "other": 1}}
    assert GuestBalloonOptional(ctx(snapshot)).collect() == {
        "balloon_cur": 2048, "balloon_max": 4096}


@pytest.mark.parametrize("cls,message", [
    (GuestMemory, "guest vm1 (6d1c-id): no memory data for major_fault, mem_available, "
                  "mem_free, mem_unused, minor_fault, swap_in, swap_out"),
    (GuestBalloon, "guest vm1 (6d1c-id): no balloon data for balloon_cur, balloon_max, "
                   "balloon_min"),
    (GuestCpuTune, "guest vm1 (6d1c-id): no cputune data for vcpu_count, vcpu_period, "
                   "vcpu_quota, vcpu_user_limit"),
    (GuestIoTune, "guest vm1 (6d1c-id): no iotune data for io_tune"),
])
@pytest.mark.parametrize("snapshot", [None, {}])
def test_required_section_missing(cls, message, snapshot):
    with pytest.raises(CollectionError) as info:
        cls(ctx(snapshot)).collect()
    assert str(info.value) == message


def test_partly_missing_required_fields_name_the_missing_ones():
    memory = dict(MEMORY)
    del memory["mem_free"]
    with pytest.raises(CollectionError, match=r"no memory data for mem_free$"):
        GuestMemory(ctx({"memory": memory})).collect()


def test_guest_memory_swap_totals_are_optional():
    # libvirt's balloon driver never reports them; VDSM's agent does.
    memory = {k: v for k, v in MEMORY.items() if k not in ("swap_total", "swap_usage")}
    assert GuestMemory(ctx({"memory": memory})).collect() == memory
    assert GuestMemory.optional_fields == {"swap_total", "swap_usage"}


@pytest.mark.parametrize("cls", [GuestMemoryOptional, GuestBalloonOptional,
                                 GuestCpuTuneOptional, GuestIoTuneOptional,
                                 GuestQemuProcOptional])
def test_optional_variants_declare_every_field_optional(cls):
    assert cls.optional_fields == cls.fields
    assert cls.__name__.removesuffix("Optional") == cls.__mro__[1].__name__
    assert cls.fields == cls.__mro__[1].fields


@pytest.mark.parametrize("cls", [GuestMemoryOptional, GuestBalloonOptional,
                                 GuestCpuTuneOptional, GuestIoTuneOptional])
def test_optional_variants_return_nothing_without_data(cls):
    assert cls(ctx(None)).collect() == {}
    assert cls(ctx({})).collect() == {}


def test_optional_memory_returns_what_is_there():
    snapshot = {"memory": {"mem_available": 100, "swap_in": 3}}
    assert GuestMemoryOptional(ctx(snapshot)).collect() == {
        "mem_available": 100, "swap_in": 3}


def test_guest_iotune_builds_devices():
    sample = GuestIoTune(ctx({"iotune": IOTUNE})).collect()
    (device,) = sample["io_tune"]
    assert isinstance(device, IoTuneDevice)
    assert (device.name, device.path) == ("vda", "/rhev/disk1")
    assert device.guaranteed.total_bytes_sec == 10
    assert device.maximum.total_bytes_sec == 100
    assert device.maximum.read_iops_sec == 20
    assert vars(device.current) == LIMITS
    assert not device.changed()


def test_guest_iotune_fresh_objects_every_collect():
    collector = GuestIoTune(ctx({"iotune": IOTUNE}))
    first = collector.collect()["io_tune"][0]
    first.setReadBytesSec(5)
    second = collector.collect()["io_tune"][0]
    assert second is not first and not second.changed()


def test_guest_iotune_empty_list_is_data():
    assert GuestIoTune(ctx({"iotune": []})).collect() == {"io_tune": []}


def test_guest_iotune_bad_data():
    with pytest.raises(CollectionError, match="bad iotune data: iotune section is not a list"):
        GuestIoTune(ctx({"iotune": {"vda": 1}})).collect()
    with pytest.raises(CollectionError, match="not a mapping"):
        GuestIoTune(ctx({"iotune": ["vda"]})).collect()
    assert GuestIoTuneOptional(ctx({"iotune": ["vda"]})).collect() == {}


# -- GuestQemuProc ---------------------------------------------------------
@pytest.fixture
def proc(tmp_path):
    pid_dir = tmp_path / "5080"
    pid_dir.mkdir()
    shutil.copy(DATA / "qemu_stat.txt", pid_dir / "stat")
    shutil.copy(DATA / "qemu_status.txt", pid_dir / "status")
    return str(tmp_path)


def test_guest_qemu_proc_real_sample(proc):
    assert GuestQemuProc(ctx(proc_root=proc)).collect() == {
        "rss": 27948, "host_minor_faults": 5633, "host_major_faults": 0}


def test_guest_qemu_proc_unknown_pid(proc):
    with pytest.raises(CollectionError, match=r"guest vm2 \(id-2\): qemu pid unknown"):
        GuestQemuProc(ctx(guest=GuestInfo("id-2", "vm2"), proc_root=proc)).collect()
    assert GuestQemuProcOptional(ctx(guest=GuestInfo("id-2", "vm2"),
                                     proc_root=proc)).collect() == {}


def test_guest_qemu_proc_process_gone(proc):
    gone = GuestInfo("id-3", "vm3", pid=999999)
    with pytest.raises(CollectionError, match="guest vm3: qemu process gone"):
        GuestQemuProc(ctx(guest=gone, proc_root=proc)).collect()
    assert GuestQemuProcOptional(ctx(guest=gone, proc_root=proc)).collect() == {}


def test_guest_qemu_proc_kernel_thread_has_no_rss(tmp_path):
    (tmp_path / "37").mkdir()
    shutil.copy(DATA / "ksmd_stat.txt", tmp_path / "37" / "stat")
    shutil.copy(DATA / "ksmd_status.txt", tmp_path / "37" / "status")
    guest = GuestInfo("id-4", "vm4", pid=37)
    with pytest.raises(CollectionError, match=r"process 37 \(ksmd\) has no VmRSS"):
        GuestQemuProc(ctx(guest=guest, proc_root=str(tmp_path))).collect()
