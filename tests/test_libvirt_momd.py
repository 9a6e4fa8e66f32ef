"""The whole of MOM on the libvirt back-end, against libvirt's test driver:
mom.conf picks ``hypervisor-interface = libvirt``, the guest manager finds
the domain, its bulk stats reach getStatistics(), and a policy's balloon
target reaches the domain through the Balloon controller."""
from __future__ import annotations

import uuid

import pytest

libvirt = pytest.importorskip("libvirt")

from waiting import wait_for
from mom import MOM  # noqa: E402
from mom.hypervisor.libvirt import LibvirtHypervisor  # noqa: E402

URI = "test:///default"


@pytest.fixture
def domain():
    conn = libvirt.open(URI)
    name = f"mom-{uuid.uuid4().hex[:10]}"
    dom = conn.createXML(f"""<domain type='test'>
      <name>{name}</name>
      <memory unit='KiB'>1048576</memory>
      <currentMemory unit='KiB'>1048576</currentMemory>
      <vcpu>1</vcpu>
      <os><type arch='x86_64'>hvm</type></os>
      <devices><memballoon model='virtio'/></devices>
    </domain>""", 0)
    yield dom
    try:
        dom.destroy()
    except libvirt.libvirtError:
        pass
    conn.close()


def test_momd_on_libvirt_balloons_a_guest(tmp_path, domain):
    name = domain.name()
    conf = tmp_path / "mom.conf"
    conf.write_text(f"""[main]
hypervisor-interface = libvirt
libvirt-hypervisor-uri = {URI}
host-monitor-interval = 0.1
guest-monitor-interval = 0.1
guest-manager-interval = 0.1
policy-engine-interval = 0.2
controllers = Balloon

[guest]
collectors = GuestMemory, GuestBalloon
""")
    mom = MOM(str(conf))
    assert isinstance(mom.hypervisor, LibvirtHypervisor)
    assert mom.setPolicy(f"""
(with Guests guest
  (if (== (guest.Prop "name") "{name}")
      (guest.Control "balloon_target" 786432)
      0))
""")
    mom.start()
    try:
        stats = wait_for(lambda: mom.getStatistics()["guests"].get(name))
        assert stats, mom.getStatistics()
        assert stats["balloon_max"] == 1048576
        assert stats["mem_free"] > 0
        assert wait_for(lambda: domain.info()[2] == 786432), domain.info()
    finally:
        mom.shutdown()
