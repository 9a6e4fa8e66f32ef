"""Hypervisor back-ends, looked up by the name in ``[main] hypervisor-interface``."""
from __future__ import annotations

import configparser
from collections.abc import Callable

from mom.hypervisor.base import Hypervisor


def _libvirt(config: configparser.ConfigParser) -> Hypervisor:
    from mom.hypervisor import libvirt
    return libvirt.create(config)


def _vdsm(config: configparser.ConfigParser) -> Hypervisor:
    from mom.hypervisor import vdsm
    return vdsm.create(config)


def _vdsm_jsonrpc(config: configparser.ConfigParser) -> Hypervisor:
    from mom.hypervisor import vdsm_jsonrpc
    return vdsm_jsonrpc.create(config)


def _vdsm_xmlrpc(config: configparser.ConfigParser) -> Hypervisor:
    from mom.hypervisor import vdsm_xmlrpc
    return vdsm_xmlrpc.create(config)


# Back-ends are imported only when chosen: libvirt-python and VDSM's API
# module are not needed by the others.
_FACTORIES: dict[str, Callable[[configparser.ConfigParser], Hypervisor]] = {
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


def create(config: configparser.ConfigParser) -> Hypervisor:
    """Build the back-end the configuration names."""
    name = config.get("main", "hypervisor-interface").strip()
    return _FACTORIES[name](config)
