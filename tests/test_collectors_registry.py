"""Looking collectors up by name: built-ins, entry-point plugins, errors."""
import importlib.metadata
import sys
import types

import pytest

import mom.collectors
from mom.collectors import (BUILTIN_COLLECTORS, Collector, HostMemory, PluginError,
                            UnknownPluginError, collector_names, get_collector)

BUILTIN_NAMES = [
    "HostMemory", "HostKSM", "HostCpu", "HostTime",
    "GuestMemory", "GuestMemoryOptional", "GuestBalloon", "GuestBalloonOptional",
    "GuestCpuTune", "GuestCpuTuneOptional", "GuestIoTune", "GuestIoTuneOptional",
    "GuestQemuProc", "GuestQemuProcOptional",
]


class NetCollector(Collector):
    kind = "guest"
    fields = frozenset({"net_rx"})

    def collect(self):
        return {"net_rx": 1}


@pytest.fixture
def plugins(monkeypatch):
    """Install a fake plugin module and fake entry points for both groups."""
    module = types.ModuleType("fake_mom_plugin")
    module.NetCollector = NetCollector
    module.not_a_class = 42
    monkeypatch.setitem(sys.modules, "fake_mom_plugin", module)
    eps = {
        "mom.collectors": [
            importlib.metadata.EntryPoint("GuestNet", "fake_mom_plugin:NetCollector",
                                          "mom.collectors"),
            importlib.metadata.EntryPoint("Broken", "no_such_module_xyz:Thing",
                                          "mom.collectors"),
            importlib.metadata.EntryPoint("Weird", "fake_mom_plugin:not_a_class",
                                          "mom.collectors"),
            # a plugin cannot shadow a built-in
            importlib.metadata.EntryPoint("HostMemory", "fake_mom_plugin:NetCollector",
                                          "mom.collectors"),
        ],
    }

    def entry_points(*, group):
        return eps.get(group, [])

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    return module


def test_builtins_have_upstream_names():
    assert list(BUILTIN_COLLECTORS) == BUILTIN_NAMES
    assert collector_names()[:len(BUILTIN_NAMES)] == BUILTIN_NAMES
    for name in BUILTIN_NAMES:
        cls = get_collector(name)
        assert cls.__name__ == name
        assert issubclass(cls, Collector)
        assert cls.kind == ("host" if name.startswith("Host") else "guest")
        assert cls.fields and cls.optional_fields <= cls.fields
        assert getattr(mom.collectors, name) is cls


def test_plugin_from_entry_point(plugins):
    assert get_collector("GuestNet") is NetCollector
    assert collector_names() == BUILTIN_NAMES + ["Broken", "GuestNet", "Weird"]


def test_builtin_wins_over_plugin_of_same_name(plugins):
    assert get_collector("HostMemory") is HostMemory


def test_unknown_name_lists_known_names(plugins):
    with pytest.raises(KeyError) as info:
        get_collector("HostMemroy")
    assert isinstance(info.value, UnknownPluginError)
    assert str(info.value) == (
        "unknown collector 'HostMemroy'; known collectors: "
        + ", ".join(BUILTIN_NAMES + ["Broken", "GuestNet", "Weird"]))


def test_collector_base_leaves_kind_unset():
    # A third-party class that does not say may be listed in either section.
    assert not hasattr(Collector, "kind")
    assert getattr(type("Plain", (Collector,), {}), "kind", None) is None


def test_plugin_that_fails_to_import(plugins):
    with pytest.raises(KeyError):               # config validation catches KeyError
        get_collector("Broken")
    with pytest.raises(PluginError, match=r"collector 'Broken' \(no_such_module_xyz:Thing\) "
                                          r"failed to load: ModuleNotFoundError"):
        get_collector("Broken")


def test_plugin_that_is_not_a_collector_class(plugins):
    with pytest.raises(PluginError, match=r"'Weird' .* is not a class with a collect\(\) method"):
        get_collector("Weird")
