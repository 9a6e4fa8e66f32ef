"""dry_run: what a policy set would decide for made-up statistics.

Used by ``mom-policy eval``, by tests of the stock policies, and by anyone
who wants to try a policy before installing it on a host.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mom.entity import Entity
from mom.iotune import IoTuneDevice
from mom.policy.policy_set import PolicySet

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


def _guest(stats: Stats | Sequence[Stats], index: int) -> Entity:
    properties: dict[str, Any] = {}
    history = []
    for sample in _history(stats):
        sample = dict(sample)
        for key in GUEST_PROPERTIES:
            if key in sample:
                properties[key] = sample.pop(key)
        if isinstance(sample.get("io_tune"), list):
            sample["io_tune"] = [d if isinstance(d, IoTuneDevice) else IoTuneDevice.from_dict(d)
                                 for d in sample["io_tune"]]
        history.append(sample)
    properties.setdefault("name", f"guest{index}")
    return Entity(properties, history)


def build_entities(host: Stats | Sequence[Stats],
                   guests: Sequence[Stats | Sequence[Stats]]) -> tuple[Entity, list[Entity]]:
    """The Host entity and Guest entities for made-up statistics."""
    return Entity({"name": "host"}, _history(host)), [_guest(g, i) for i, g in enumerate(guests)]


def dry_run(policies: Mapping[str, str], host: Stats | Sequence[Stats],
            guests: Sequence[Stats | Sequence[Stats]]) -> dict[str, Any]:
    """Evaluate ``policies`` once for ``host`` and ``guests``; the controls they set.

    Raises PolicyError when a policy does not parse or when evaluation
    fails (the whole run fails, as one engine cycle would).
    """
    policy_set = PolicySet(policies)
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
