"""Controllers: built-ins by upstream MOM's names, plus entry-point plugins.

``get_controller(name)`` finds a controller class for a name listed in
mom.conf's ``[main] controllers``: the built-ins below first, then the
``mom.controllers`` entry-point group.
"""
from __future__ import annotations

from mom.collectors._registry import PluginError, PluginRegistry, UnknownPluginError
from mom.controllers.balloon import Balloon
from mom.controllers.base import Controller, ControllerContext
from mom.controllers.cputune import CpuTune
from mom.controllers.iotune import IoTune
from mom.controllers.ksm import KSM

ENTRY_POINT_GROUP = "mom.controllers"

BUILTIN_CONTROLLERS: dict[str, type[Controller]] = {
    cls.__name__: cls for cls in (Balloon, KSM, CpuTune, IoTune)
}

_registry = PluginRegistry("controller", ENTRY_POINT_GROUP, BUILTIN_CONTROLLERS,
                           "process")


def get_controller(name: str) -> type[Controller]:
    """The controller class called ``name``.

    Raises UnknownPluginError (a KeyError) listing the known names, or
    PluginError when an installed plugin fails to load.
    """
    return _registry.get(name)


def controller_names() -> list[str]:
    """Every controller name: built-ins, then installed plugins."""
    return _registry.names()


__all__ = [
    "BUILTIN_CONTROLLERS", "Controller", "ControllerContext",
    "ENTRY_POINT_GROUP", "PluginError", "UnknownPluginError",
    "controller_names", "get_controller",
    *BUILTIN_CONTROLLERS,
]
