"""dry_run: what a policy set would decide for made-up statistics.

Used by ``mom-policy eval``, by tests of the stock policies, and by anyone
who wants to try a policy before installing it on a host.

The entities declare the statistics given plus every statistic MOM's
built-in collectors declare for their kind, as on a host running them all:
a field left out of the made-up statistics reads as nil, a misspelt one is
an error.  A statistic's value must be something a policy can hold
(a number, string, nil, or a list of such values; ``io_tune`` is a list of
disks).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mom.entity import Entity
from mom.iotune import IoTuneDevice
from mom.policy.budget import DEFAULT_MAX_SECONDS, DEFAULT_MAX_STEPS
from mom.policy.known import known_fields
from mom.policy.policy_set import PolicySet
from mom.policy.sandbox import is_policy_value

Stats = Mapping[str, Any]

#: Keys of a guest stats dict that are properties, not statistics.
GUEST_PROPERTIES = ("id", "name", "uuid", "pid")


def _history(stats: Stats | Sequence[Stats]) -> list[Stats]:
    if isinstance(stats, Mapping):
        return [stats]
    history = list(stats)
    if not all(isinstance(s, Mapping) for s in history):
        raise TypeError("statistics must be a dict or a list of dicts")
    return history


def _check_values(history: list[Stats]) -> None:
    for sample in history:
        for key, value in sample.items():
            if not isinstance(key, str) or key.startswith("_"):
                raise TypeError(f"{key!r} cannot be the name of a statistic")
            if not is_policy_value(value):
                raise TypeError(f"statistic {key!r}: a policy cannot use "
                                f"a {type(value).__name__}")


def _entity(properties: dict[str, Any], history: list[Stats], kind: str) -> Entity:
    _check_values(history)
    fields = known_fields(kind).union(*(sample.keys() for sample in history))
    return Entity(properties, history, fields)


def _guest(stats: Stats | Sequence[Stats], index: int) -> Entity:
    properties: dict[str, Any] = {}
    history = []
    for sample in _history(stats):
        sample = dict(sample)
        for key in GUEST_PROPERTIES:
            if key in sample:
                properties[key] = sample.pop(key)
        if isinstance(sample.get("io_tune"), list):
            if not all(isinstance(d, (Mapping, IoTuneDevice)) for d in sample["io_tune"]):
                raise TypeError("io_tune must be a list of disks (dicts)")
            sample["io_tune"] = [d if isinstance(d, IoTuneDevice) else IoTuneDevice.from_dict(d)
                                 for d in sample["io_tune"]]
        history.append(sample)
    properties.setdefault("name", f"guest{index}")
    return _entity(properties, history, "guest")


def build_entities(host: Stats | Sequence[Stats],
                   guests: Sequence[Stats | Sequence[Stats]]) -> tuple[Entity, list[Entity]]:
    """The Host entity and Guest entities for made-up statistics."""
    return (_entity({"name": "host"}, _history(host), "host"),
            [_guest(g, i) for i, g in enumerate(guests)])


def dry_run(policies: Mapping[str, str], host: Stats | Sequence[Stats],
            guests: Sequence[Stats | Sequence[Stats]], *,
            max_steps: int = DEFAULT_MAX_STEPS,
            max_seconds: float = DEFAULT_MAX_SECONDS) -> dict[str, Any]:
    """Evaluate ``policies`` once for ``host`` and ``guests``; the controls they set.

    Raises PolicyError when a policy does not parse or when evaluation
    fails (the whole run fails, as one engine cycle would), including
    running out of its budget (``max_steps``, ``max_seconds``).  Raises
    TypeError for statistics of a shape a policy cannot use.
    """
    policy_set = PolicySet(policies, max_steps=max_steps, max_seconds=max_seconds)
    host_entity, guest_entities = build_entities(host, guests)
    policy_set.evaluate(host_entity, guest_entities)
    result_guests = []
    for guest in guest_entities:
        controls = dict(guest.controls)
        devices = guest.io_tune if isinstance(guest.io_tune, list) else []
        changed = [d.as_tunable() for d in devices
                   if isinstance(d, IoTuneDevice) and d.changed()]
        if changed:
            controls["io_tune"] = changed
        result_guests.append(controls)
    return {"host": dict(host_entity.controls), "guests": result_guests}
