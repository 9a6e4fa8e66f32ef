"""Hypervisor back-ends, looked up by the name in ``[main] hypervisor-interface``."""
from __future__ import annotations

import configparser
from collections.abc import Callable

from mom.hypervisor.base import Hypervisor, HypervisorError


def _libvirt(config: configparser.ConfigParser) -> Hypervisor:
    from mom.hypervisor import libvirt
    return libvirt.create(config)


def _vdsm(config: configparser.ConfigParser) -> Hypervisor:
    from mom.hypervisor import vdsm
    return vdsm.create(config)


def _not_yet(name: str) -> Callable[[configparser.ConfigParser], Hypervisor]:
    def create(config: configparser.ConfigParser) -> Hypervisor:
        raise HypervisorError(
            f"hypervisor-interface {name!r} (VDSM over RPC, process mode) is not "
            "available in this version; use 'vdsm' inside VDSM or 'libvirt'")
    return create


# Back-ends are imported only when chosen: libvirt-python and VDSM's API
# module are not needed by the others.
_FACTORIES: dict[str, Callable[[configparser.ConfigParser], Hypervisor]] = {
    "libvirt": _libvirt,
    "vdsm": _vdsm,
    "vdsmxmlrpc": _not_yet("vdsmxmlrpc"),
    "vdsmjsonrpc": _not_yet("vdsmjsonrpc"),
    "vdsmjsonrpcbulk": _not_yet("vdsmjsonrpcbulk"),
}


def interface_names() -> list[str]:
    return list(_FACTORIES)


def create(config: configparser.ConfigParser) -> Hypervisor:
    """Build the back-end the configuration names."""
    name = config.get("main", "hypervisor-interface").strip()
    return _FACTORIES[name](config)
