"""Collectors: built-ins by upstream MOM's names, plus entry-point plugins.

``get_collector(name)`` finds a collector class for a name listed in
mom.conf's ``[host] collectors`` / ``[guest] collectors``: the built-ins
below first, then the ``mom.collectors`` entry-point group.  A class's
``kind`` says which section it belongs in.
"""
from __future__ import annotations

from mom.collectors._registry import PluginError, PluginRegistry, UnknownPluginError
from mom.collectors.base import CollectionError, Collector, CollectorContext
from mom.collectors.guest_balloon import GuestBalloon, GuestBalloonOptional
from mom.collectors.guest_cputune import GuestCpuTune, GuestCpuTuneOptional
from mom.collectors.guest_iotune import GuestIoTune, GuestIoTuneOptional
from mom.collectors.guest_memory import GuestMemory, GuestMemoryOptional
from mom.collectors.guest_qemu_proc import GuestQemuProc, GuestQemuProcOptional
from mom.collectors.host_cpu import HostCpu
from mom.collectors.host_ksm import HostKSM
from mom.collectors.host_memory import HostMemory
from mom.collectors.host_time import HostTime

ENTRY_POINT_GROUP = "mom.collectors"

BUILTIN_COLLECTORS: dict[str, type[Collector]] = {
    cls.__name__: cls for cls in (
        HostMemory, HostKSM, HostCpu, HostTime,
        GuestMemory, GuestMemoryOptional,
        GuestBalloon, GuestBalloonOptional,
        GuestCpuTune, GuestCpuTuneOptional,
        GuestIoTune, GuestIoTuneOptional,
        GuestQemuProc, GuestQemuProcOptional,
    )
}

_registry = PluginRegistry("collector", ENTRY_POINT_GROUP, BUILTIN_COLLECTORS,
                           "collect")


def get_collector(name: str) -> type[Collector]:
    """The collector class called ``name``.

    Raises UnknownPluginError (a KeyError) listing the known names, or
    PluginError when an installed plugin fails to load.
    """
    return _registry.get(name)


def collector_names() -> list[str]:
    """Every collector name: built-ins, then installed plugins."""
    return _registry.names()


__all__ = [
    "BUILTIN_COLLECTORS", "CollectionError", "Collector", "CollectorContext",
    "ENTRY_POINT_GROUP", "PluginError", "UnknownPluginError",
    "collector_names", "get_collector",
    *BUILTIN_COLLECTORS,
]
