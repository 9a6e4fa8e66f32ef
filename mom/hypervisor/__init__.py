"""Hypervisor back-ends, looked up by the name in ``[main] hypervisor-interface``."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mom.hypervisor.base import Hypervisor

if TYPE_CHECKING:
    from mom.config import Settings


def _libvirt(settings: Settings) -> Hypervisor:
    from mom.hypervisor import libvirt
    return libvirt.create(settings)


def _vdsm(settings: Settings) -> Hypervisor:
    from mom.hypervisor import vdsm
    return vdsm.create(settings)


def _vdsm_jsonrpc(settings: Settings) -> Hypervisor:
    from mom.hypervisor import vdsm_jsonrpc
    return vdsm_jsonrpc.create(settings)


def _vdsm_xmlrpc(settings: Settings) -> Hypervisor:
    from mom.hypervisor import vdsm_xmlrpc
    return vdsm_xmlrpc.create(settings)


# Back-ends are imported only when chosen: libvirt-python and VDSM's API
# module are not needed by the others.
_FACTORIES: dict[str, Callable[[Settings], Hypervisor]] = {
    "libvirt": _libvirt,
    "vdsm": _vdsm,
    # Process mode: VDSM over RPC.  ``vdsmjsonrpcclient`` is what VDSM's own
    # mom.conf names; the others are older names of the same back-ends.
    "vdsmjsonrpcclient": _vdsm_jsonrpc,
    "vdsmjsonrpc": _vdsm_jsonrpc,
    "vdsmjsonrpcbulk": _vdsm_jsonrpc,
    "vdsmxmlrpc": _vdsm_xmlrpc,
    "vdsmxmlrpcbulk": _vdsm_xmlrpc,
}


def interface_names() -> list[str]:
    return list(_FACTORIES)


def create(settings: Settings) -> Hypervisor:
    """Build the back-end the configuration names."""
    return _FACTORIES[settings.hypervisor_interface](settings)
