"""Hypervisor back-ends, looked up by the name in ``[main] hypervisor-interface``."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mom.hypervisor.base import Hypervisor, HypervisorError

if TYPE_CHECKING:
    from mom.config import Settings


def _libvirt(config: Settings) -> Hypervisor:
    from mom.hypervisor import libvirt
    return libvirt.create(config)


def _vdsm(config: Settings) -> Hypervisor:
    from mom.hypervisor import vdsm
    return vdsm.create(config)


def _not_yet(name: str) -> Callable[[Settings], Hypervisor]:
    def create(settings: Settings) -> Hypervisor:
        raise HypervisorError(
            f"hypervisor-interface {name!r} (VDSM over RPC, process mode) is not "
            "available in this version; use 'vdsm' inside VDSM or 'libvirt'")
    return create


# Back-ends are imported only when chosen: libvirt-python and VDSM's API
# module are not needed by the others.
_FACTORIES: dict[str, Callable[[Settings], Hypervisor]] = {
    "libvirt": _libvirt,
    "vdsm": _vdsm,
    "vdsmxmlrpc": _not_yet("vdsmxmlrpc"),
    "vdsmjsonrpc": _not_yet("vdsmjsonrpc"),
    "vdsmjsonrpcbulk": _not_yet("vdsmjsonrpcbulk"),
}


def interface_names() -> list[str]:
    return list(_FACTORIES)


def create(settings: Settings) -> Hypervisor:
    """Build the back-end the configuration names."""
    return _FACTORIES[settings.hypervisor_interface](settings)
