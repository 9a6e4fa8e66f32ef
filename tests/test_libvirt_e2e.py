"""End to end: LibvirtHypervisor driving a real tiny QEMU guest.

libvirt's embedded QEMU driver (``qemu:///embed?root=DIR``) runs inside this
process, so no libvirt daemon is needed.  The guest is a Debian cloud
kernel plus a ~1 MB busybox initramfs that loads virtio_balloon; MOM turns
on its stats period, reads its bulk stats, and moves its balloon.

Runs only where the pieces are: root, libvirt-python, the QEMU driver
module, qemu-system-x86_64, a static busybox and the ``libvirt-qemu`` user
(``.ci/run`` provides all of them).  The kernel package is fetched once
with ``apt-get download`` into ``$MOM_E2E_CACHE`` (default
``/var/tmp/mom-e2e``), as is QEMU's capability cache (first probe ~8 s).
Anything missing makes the test skip, saying what; MOM_SKIP_E2E=1 skips it
on purpose.
"""
from __future__ import annotations

import glob
import gzip
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_hypervisor import polled

libvirt = pytest.importorskip("libvirt")

from waiting import wait_for  # noqa: E402
from mom.hypervisor.base import GuestGoneError  # noqa: E402
from mom.hypervisor.libvirt import LibvirtHypervisor  # noqa: E402

CACHE = Path(os.environ.get("MOM_E2E_CACHE", "/var/tmp/mom-e2e"))
QEMU = "/usr/bin/qemu-system-x86_64"
BUSYBOX = "/bin/busybox"
QEMU_DRIVER = "/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so"
# The balloon driver and its PCI transport (not a dependency of it).
GUEST_MODULES = ("virtio_pci", "virtio_balloon")
READY = "MOM-GUEST-READY"
GUEST_KIB = 524288


def _missing_prerequisite() -> str | None:
    if os.environ.get("MOM_SKIP_E2E"):
        return "MOM_SKIP_E2E is set"
    if os.geteuid() != 0:
        return "needs root (embedded QEMU driver)"
    for path in (QEMU, QEMU_DRIVER, BUSYBOX):
        if not os.path.exists(path):
            return f"{path} is not installed"
    if b"ld-linux" in Path(BUSYBOX).read_bytes()[:4096 * 4]:
        return f"{BUSYBOX} is not static (install busybox-static)"
    try:
        pwd.getpwnam("libvirt-qemu")
    except KeyError:
        return "no libvirt-qemu user"
    return None


def _publish(staging: str, dest: Path) -> None:
    """Move a finished cache entry into place; a concurrent run that got
    there first wins (rename onto an existing directory fails)."""
    try:
        os.rename(staging, dest)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)


def _kernel_package() -> Path:
    """The unpacked cloud kernel package, fetched once into CACHE."""
    unpacked = CACHE / "kernel"
    if glob.glob(str(unpacked / "boot/vmlinuz-*")):
        return unpacked
    CACHE.mkdir(parents=True, exist_ok=True)
    deps = subprocess.run(["apt-cache", "depends", "linux-image-cloud-amd64"],
                          capture_output=True, text=True, check=False).stdout
    match = re.search(r"Depends: (linux-image-\S+)", deps)
    if not match:
        pytest.skip("cannot resolve linux-image-cloud-amd64 (apt lists?)")
    download = tempfile.mkdtemp(dir=CACHE)
    try:
        got = subprocess.run(["apt-get", "download", "-q", match.group(1)],
                             cwd=download, capture_output=True, text=True,
                             check=False, stdin=subprocess.DEVNULL)
        debs = glob.glob(os.path.join(download, "*.deb"))
        if got.returncode != 0 or not debs:
            pytest.skip(f"cannot download {match.group(1)}: {got.stderr[-300:]}")
        staging = tempfile.mkdtemp(dir=CACHE)
        subprocess.run(["dpkg", "-x", debs[0], staging], check=True)
        _publish(staging, unpacked)
    finally:
        shutil.rmtree(download, ignore_errors=True)
    return unpacked


def _module_load_order(modules: dict[str, Path], targets: tuple[str, ...]) -> list[str]:
    """``targets`` and their dependencies (each .ko's ``depends=``), deps first."""
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        info = re.search(rb"depends=([\w,-]*)", modules[name].read_bytes())
        for dep in filter(None, (info.group(1).decode() if info else "").split(",")):
            visit(dep)
        order.append(name)

    for target in targets:
        visit(target)
    return order


def _cpio_newc(entries: list[tuple[str, int, bytes, int, int]]) -> bytes:
    """A cpio "newc" archive of (name, mode, data, rdev major, rdev minor)."""
    out = bytearray()

    def pad() -> None:
        out.extend(b"\0" * (-len(out) % 4))

    for ino, (name, mode, data, rmajor, rminor) in enumerate(
            entries + [("TRAILER!!!", 0, b"", 0, 0)], start=1):
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, rmajor, rminor,
                  len(name) + 1, 0)
        out.extend(b"070701" + b"".join(b"%08X" % f for f in fields))
        out.extend(name.encode() + b"\0")
        pad()
        out.extend(data)
        pad()
    return bytes(out)


INIT = """#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
for m in {modules}; do /bin/busybox insmod /m/$m.ko; done
echo {ready}
while :; do /bin/busybox sleep 3600; done
"""


def _initramfs(kernel_pkg: Path, dest: Path) -> None:
    modules = {Path(p).name[:-3]: Path(p) for p in
               glob.glob(str(kernel_pkg / "lib/modules/*/kernel/**/*.ko"),
                         recursive=True)}
    order = _module_load_order(modules, GUEST_MODULES)
    entries = [(d, 0o40755, b"", 0, 0)
               for d in ("bin", "dev", "m", "proc", "sys", "tmp")]
    entries.append(("dev/console", 0o20600, b"", 5, 1))
    entries.append(("bin/busybox", 0o100755, Path(BUSYBOX).read_bytes(), 0, 0))
    init = INIT.format(modules=" ".join(order), ready=READY)
    entries.append(("init", 0o100755, init.encode(), 0, 0))
    entries += [(f"m/{m}.ko", 0o100644, modules[m].read_bytes(), 0, 0)
                for m in order]
    dest.write_bytes(gzip.compress(_cpio_newc(entries), compresslevel=1))


def _domain_xml(kernel: str, initrd: str, serial_log: str) -> str:
    # TCG when KVM is absent or the PVM nested module (which cannot run a
    # stock kernel) provides it; real KVM otherwise.
    kvm = os.path.exists("/dev/kvm") and not os.path.exists("/sys/module/kvm_pvm")
    return f"""<domain type='{'kvm' if kvm else 'qemu'}'>
  <name>mom-e2e</name>
  <memory unit='KiB'>{GUEST_KIB}</memory>
  <currentMemory unit='KiB'>{GUEST_KIB}</currentMemory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>console=ttyS0 panic=-1</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>{QEMU}</emulator>
    <serial type='file'><source path='{serial_log}'/><target port='0'/></serial>
    <controller type='usb' model='none'/>
    <memballoon model='virtio'/>
  </devices>
</domain>"""


QEMU_CONF = """user = "root"
group = "root"
stdio_handler = "file"
dynamic_ownership = 0
remember_owner = 0
"""


def _cgroup_dirs() -> set[str]:
    return set(glob.glob("/sys/fs/cgroup/*/machine*")) | set(
        glob.glob("/sys/fs/cgroup/*/machine*/**/", recursive=True))


@pytest.fixture(scope="module")
def embed_root() -> Iterator[Path]:
    missing = _missing_prerequisite()
    if missing:
        pytest.skip(missing)
    kernel_pkg = _kernel_package()
    # Short path: QEMU's monitor socket lives under it (108-byte limit).
    root = Path(tempfile.mkdtemp(prefix="mom-e2e-", dir="/tmp"))
    (root / "etc").mkdir()
    (root / "etc/qemu.conf").write_text(QEMU_CONF)
    caps_cache = CACHE / "qemu-cache"
    if caps_cache.is_dir():
        shutil.copytree(caps_cache, root / "cache/qemu")
    shutil.copy(glob.glob(str(kernel_pkg / "boot/vmlinuz-*"))[0], root / "vmlinuz")
    _initramfs(kernel_pkg, root / "initrd.gz")
    cgroups_before = _cgroup_dirs()
    yield root
    if (root / "cache/qemu").is_dir() and not caps_cache.exists():
        staging = tempfile.mkdtemp(dir=CACHE)
        shutil.copytree(root / "cache/qemu", staging, dirs_exist_ok=True)
        _publish(staging, caps_cache)
    # libvirt leaves empty machine cgroups behind; remove the new ones.
    for path in sorted(_cgroup_dirs() - cgroups_before, key=len, reverse=True):
        try:
            os.rmdir(path)
        except OSError:
            pass
    shutil.rmtree(root, ignore_errors=True)


def test_e2e_real_guest_stats_and_balloon(embed_root: Path) -> None:
    uri = f"qemu:///embed?root={embed_root}"
    hv = LibvirtHypervisor(uri, stats_period=1)     # registers the event loop
    conn = hv._connection()
    serial = embed_root / "serial.log"
    dom = conn.createXML(_domain_xml(str(embed_root / "vmlinuz"),
                                     str(embed_root / "initrd.gz"),
                                     str(serial)), 0)
    try:
        guest_id = dom.UUIDString()
        wait_for(lambda: serial.exists() and READY in serial.read_text(errors="replace"),
                 60, "the guest's ready marker", poll=0.1)

        guests = {g.id: g for g in [p.info for p in hv.poll()]}   # sets stats period 1
        assert guests[guest_id].name == "mom-e2e"
        pid = guests[guest_id].pid
        assert pid is not None
        assert b"qemu" in Path(f"/proc/{pid}/cmdline").read_bytes()
        assert "<stats period='1'/>" in dom.XMLDesc(0)

        stats = wait_for(lambda: polled(hv).get(guest_id, {}).get("memory")
                         and polled(hv)[guest_id], 15, "guest memory stats", poll=0.1)
        assert stats["balloon"] == {"balloon_cur": GUEST_KIB,
                                    "balloon_max": GUEST_KIB, "balloon_min": 0}
        memory = stats["memory"]
        assert 0 < memory["mem_free"] <= memory["mem_available"] <= GUEST_KIB
        assert 0 < memory["mem_unused"] <= memory["mem_available"]
        assert stats["cputune"]["vcpu_count"] == 1
        assert "vcpu_period" in stats["cputune"]

        def balloon_at(kib: int) -> dict | None:
            s = polled(hv)[guest_id]
            ok = (s["balloon"]["balloon_cur"] == kib
                  and s["memory"]["mem_available"] <= kib)
            return s if ok else None

        hv.set_balloon_target(guest_id, GUEST_KIB // 2)
        shrunk = wait_for(lambda: balloon_at(GUEST_KIB // 2), 15, "the balloon to inflate",
                          poll=0.1)
        assert shrunk["memory"]["mem_available"] < memory["mem_available"]
        hv.set_balloon_target(guest_id, GUEST_KIB)
        wait_for(lambda: polled(hv)[guest_id]["memory"]["mem_available"]
                 > GUEST_KIB * 3 // 4, 15, "the balloon to deflate", poll=0.1)

        hv.set_vcpu_tune(guest_id, quota=50000, period=100000)
        sched = dom.schedulerParameters()
        assert (sched["vcpu_quota"], sched["vcpu_period"]) == (50000, 100000)
        assert polled(hv)[guest_id]["cputune"]["vcpu_quota"] == 50000
        hv.set_vcpu_tune(guest_id, quota=-1)
        assert dom.schedulerParameters()["vcpu_quota"] == -1

        dom.destroy()
        assert guest_id not in {g.id for g in [p.info for p in hv.poll()]}
        with pytest.raises(GuestGoneError):
            hv.set_balloon_target(guest_id, GUEST_KIB // 2)
    finally:
        try:
            dom.destroy()
        except libvirt.libvirtError:
            pass            # already gone
        hv.close()


# Alternates the real guest's balloon between two sizes, one change per
# evaluation: every change overlaps MOM's next bulk stats call in QEMU.
FLIP_POLICY = f"""
(with Guests guest
    (guest.Control "balloon_target"
        (if (> guest.balloon_cur {GUEST_KIB * 3 // 4}) {GUEST_KIB * 5 // 8} {GUEST_KIB})))
"""


def test_e2e_mom_balloons_a_real_guest_without_losing_it(embed_root: Path) -> None:
    import configparser

    import mom

    uri = f"qemu:///embed?root={embed_root}"
    hv = LibvirtHypervisor(uri, stats_period=1)
    serial = embed_root / "serial-mom.log"
    dom = hv._connection().createXML(_domain_xml(str(embed_root / "vmlinuz"),
                                                 str(embed_root / "initrd.gz"),
                                                 str(serial)), 0)
    instance = None
    try:
        wait_for(lambda: serial.exists() and READY in serial.read_text(errors="replace"),
                 60, "the guest's ready marker", poll=0.1)
        wait_for(lambda: polled(hv).get(dom.UUIDString(), {}).get("memory"), 15,
                 "guest memory stats", poll=0.1)
        conf = configparser.ConfigParser(interpolation=None)
        conf.read_dict({"main": {"host-monitor-interval": "0.5",
                                 "guest-monitor-interval": "0.5",
                                 "guest-manager-interval": "0.5",
                                 "policy-engine-interval": "1"},
                        "guest": {"collectors": "GuestMemory, GuestBalloon, GuestCpuTune"}})
        instance = mom.MOM("", conf, hypervisor=hv)
        assert instance.setPolicy(FLIP_POLICY)
        seen: list[tuple[int, frozenset[str]]] = []
        evaluate = instance.policy_engine.evaluate

        def recording(host, guests):          # what every evaluation saw
            seen.append((len(guests), frozenset().union(*(g.missing for g in guests))))
            return evaluate(host, guests)
        instance.policy_engine.evaluate = recording
        changes: list[int] = []
        set_target = hv.set_balloon_target
        hv.set_balloon_target = lambda gid, kib: (set_target(gid, kib), changes.append(kib))
        instance.start()
        wait_for(lambda: len(changes) >= 10, 60, "ten balloon changes", poll=0.2)
        assert instance.getActiveGuests() == ["mom-e2e"]
        instance.shutdown()
        # the guest took part in every evaluation, with all its data
        assert seen and all(count == 1 and not missing for count, missing in seen), seen
        assert set(changes) == {GUEST_KIB * 5 // 8, GUEST_KIB}
        # the balloon really went back and forth (a target may be sent twice when
        # the next sample still shows the balloon on its way)
        assert sum(a != b for a, b in zip(changes, changes[1:])) >= 4
    finally:
        if instance is not None:
            instance.shutdown()
        try:
            dom.destroy()
        except libvirt.libvirtError:
            pass
        hv.close()
