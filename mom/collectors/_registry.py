"""Name -> class lookup for plugins: built-ins first, then entry points.

Used by both :mod:`mom.collectors` and :mod:`mom.controllers`.  Entry
points are looked up when a name is asked for (at configuration time),
never imported by string games.
"""
from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping


class PluginLookupError(KeyError):
    """A plugin name could not be turned into a usable class.

    A KeyError so that callers validating configuration catch both cases
    below with one ``except KeyError``; ``args[0]`` is the message.
    """

    def __str__(self) -> str:       # KeyError would repr() the message
        return str(self.args[0])


class UnknownPluginError(PluginLookupError):
    """No built-in or installed plugin has this name."""


class PluginError(PluginLookupError):
    """An installed plugin could not be loaded or is not usable."""


class PluginRegistry:
    def __init__(self, what: str, group: str, builtins: Mapping[str, type],
                 method: str) -> None:
        self.what = what            # "collector" / "controller", for messages
        self.group = group          # entry-point group
        self.builtins = dict(builtins)
        self.method = method        # what a plugin class must implement

    def _entry_points(self) -> list[importlib.metadata.EntryPoint]:
        return list(importlib.metadata.entry_points(group=self.group))

    def names(self) -> list[str]:
        """Built-in names (in their order), then installed ones, sorted."""
        extra = {ep.name for ep in self._entry_points()} - self.builtins.keys()
        return list(self.builtins) + sorted(extra)

    def get(self, name: str) -> type:
        if name in self.builtins:
            return self.builtins[name]
        for ep in self._entry_points():
            if ep.name == name:
                return self._load(ep)
        raise UnknownPluginError(
            f"unknown {self.what} {name!r}; known {self.what}s: "
            f"{', '.join(self.names())}")

    def _load(self, ep: importlib.metadata.EntryPoint) -> type:
        try:
            obj = ep.load()
        except Exception as e:
            raise PluginError(f"{self.what} {ep.name!r} ({ep.value}) failed to "
                              f"load: {type(e).__name__}: {e}") from e
        if not isinstance(obj, type) or not callable(getattr(obj, self.method, None)):
            raise PluginError(f"{self.what} {ep.name!r} ({ep.value}) is not a "
                              f"class with a {self.method}() method")
        return obj
