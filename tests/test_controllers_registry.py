"""Looking controllers up by name: built-ins, entry-point plugins, errors."""
import importlib.metadata
import sys
import types

import pytest

from mom.controllers import (BUILTIN_CONTROLLERS, KSM, Balloon, Controller, CpuTune,
                             IoTune, UnknownPluginError, controller_names,
                             get_controller)


class NumaController(Controller):
    def process(self, host, guests):
        pass


@pytest.fixture
def plugins(monkeypatch):
    module = types.ModuleType("fake_mom_ctl_plugin")
    module.NumaController = NumaController
    monkeypatch.setitem(sys.modules, "fake_mom_ctl_plugin", module)
    eps = [importlib.metadata.EntryPoint("Numa", "fake_mom_ctl_plugin:NumaController",
                                         "mom.controllers")]
    seen_groups = []

    def entry_points(*, group):
        seen_groups.append(group)
        return eps if group == "mom.controllers" else []

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    return seen_groups


def test_builtins():
    assert BUILTIN_CONTROLLERS == {"Balloon": Balloon, "KSM": KSM,
                                   "CpuTune": CpuTune, "IoTune": IoTune}
    for name, cls in BUILTIN_CONTROLLERS.items():
        assert get_controller(name) is cls


def test_plugin_from_entry_point(plugins):
    assert get_controller("Numa") is NumaController
    assert controller_names() == ["Balloon", "KSM", "CpuTune", "IoTune", "Numa"]
    assert set(plugins) == {"mom.controllers"}


def test_unknown_controller(plugins):
    with pytest.raises(UnknownPluginError) as info:
        get_controller("Ballon")
    assert isinstance(info.value, KeyError)
    assert str(info.value) == ("unknown controller 'Ballon'; known controllers: "
                               "Balloon, KSM, CpuTune, IoTune, Numa")
