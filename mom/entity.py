"""The Host and Guest objects a policy sees during one evaluation.

An Entity is a read-mostly snapshot: the monitor builds a fresh one for every
policy cycle from its sample history, the policy reads fields and sets
controls on it, and the controllers read those controls afterwards.  Only the
variables dict (SetVar/GetVar) outlives the evaluation; the monitor owns it.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


class UndeclaredFieldError(KeyError):
    """Stat/StatAvg asked for a field that no collector declares."""

    def __str__(self) -> str:
        return self.args[0]


class Entity:
    """Fields of the latest sample as attributes, plus the policy methods.

    Field values are stored straight in the instance ``__dict__`` (the
    entity's own state is in slots) so that Python code can read
    ``guest.balloon_cur`` as a plain attribute; a name
    that is neither a field nor a method reads there as ``None``.  Policies
    read the fields from ``_stats``, a dict holding exactly the declared
    fields (see mom.policy.sandbox), so one dict lookup tells a statistic
    from anything else.
    """

    # The entity's own state lives in slots, so the instance ``__dict__``
    # holds the statistics only.
    __slots__ = ("_properties", "_history", "_fields", "_variables", "_controls",
                 "_stamp", "_missing", "_stats", "__dict__")

    def __init__(self, properties: Mapping[str, Any],
                 history: Sequence[Mapping[str, Any]],
                 fields: Iterable[str] | None = None,
                 variables: dict[str, Any] | None = None, *,
                 stamp: float | None = None,
                 missing: frozenset[str] = frozenset()) -> None:
        self._properties = dict(properties)
        self._history = history
        if fields is None:
            fields = {key for sample in history for key in sample}
        self._fields = fields = frozenset(fields)
        self._variables = {} if variables is None else variables
        self._controls: dict[str, Any] = {}
        # When the latest sample was taken (the cycle's clock), and the fields
        # a required collector could not provide in it: controls that need
        # them are not applied (see mom.facts.GUEST_CONTROL_NEEDS).
        self._stamp = stamp
        self._missing = frozenset(missing)
        latest = history[-1] if history else {}
        if fields.issuperset(latest):      # a monitor's sample: declared fields only
            stats = dict(latest)
        else:
            stats = {name: value for name, value in latest.items() if name in fields}
        if len(stats) < len(fields):       # declared, but not in this sample: nil
            stats.update(dict.fromkeys(fields - stats.keys()))
        self._stats = stats
        self.__dict__.update(stats)

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: a missing field is nil.
        if name.startswith("__"):
            raise AttributeError(name)
        return None

    def __repr__(self) -> str:
        return f"<Entity {self._properties.get('name', '?')}>"

    # -- what the policy language calls ---------------------------------
    def _check(self, name: str) -> None:
        if name not in self._fields:
            raise UndeclaredFieldError(
                f"no collector provides the field {name!r}")

    def Stat(self, name: str) -> Any:
        """Latest value of a field (nil when this sample lacks it)."""
        self._check(name)
        return self.__dict__.get(name)

    def StatAvg(self, name: str) -> float:
        """Mean of the non-nil values of a field over the kept history."""
        self._check(name)
        values = [s[name] for s in self._history if s.get(name) is not None]
        return float(sum(values)) / len(values) if values else 0.0

    def Prop(self, name: str) -> Any:
        return self._properties.get(name)

    def Control(self, name: str, value: Any) -> Any:
        self._controls[name] = value
        return value

    def GetControl(self, name: str) -> Any:
        return self._controls.get(name)

    def SetVar(self, name: str, value: Any) -> Any:
        self._variables[name] = value
        return value

    def GetVar(self, name: str) -> Any:
        return self._variables.get(name)

    # -- what the engine and controllers use ----------------------------
    @property
    def controls(self) -> dict[str, Any]:
        """Controls set by the policy during this evaluation."""
        return self._controls

    @property
    def properties(self) -> dict[str, Any]:
        return self._properties

    @property
    def fields(self) -> frozenset[str]:
        return self._fields

    @property
    def stamp(self) -> float | None:
        return self._stamp

    @property
    def missing(self) -> frozenset[str]:
        return self._missing
