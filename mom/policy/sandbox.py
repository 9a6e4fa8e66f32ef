"""What a policy can reach: one declared table, consulted for every dotted name.

Policies arrive over RPC and run inside MOM (often as root), so a dotted
name such as ``Host.mem_free`` or ``(dev.setTotalBytesSec 5)`` is never a
Python ``getattr`` on whatever object happens to be bound.  It is looked up
in :data:`EXPOSED`, keyed by the exact Python type of the object:

- an entity (:class:`mom.entity.Entity`, ``Host`` and each guest): its
  declared statistics (``entity.fields``) and the methods ``Stat``,
  ``StatAvg``, ``Prop``, ``Control``, ``GetControl``, ``SetVar``, ``GetVar``;
- an I/O device (:class:`mom.iotune.IoTuneDevice`, in ``guest.io_tune``):
  ``name``, ``path``, ``guaranteed``, ``maximum``, ``current`` and the six
  setters ``setTotalBytesSec`` ...;
- a limit record (``dev.maximum`` ...): the six limits of
  :data:`mom.hypervisor.base.IOTUNE_KEYS`.

Every other value (numbers, strings, lists, nil, functions) has no
attributes at all, and no name starting with ``_`` is ever looked up (the
compiler refuses those before a policy loads).  An entity's statistics are
read from the instance's own ``__dict__``, never through the class, so a
statistic (whose name comes from data) can neither be shadowed by nor
stand in for a Python attribute: they are read from the entity's
``_stats`` dict, which holds exactly its declared statistics.  The fixed
fields of the other types are plain instance attributes of those classes.

The compiler specialises each dotted name for the types that offer it
(:func:`field_types`, :func:`method_table`), so that the usual reads cost
no more than a ``getattr``; everything else goes through
:func:`get_attribute`, which decides from the table alone.
"""
from __future__ import annotations

import types
from collections.abc import Callable, Collection, Mapping
from functools import cache
from typing import Any, NamedTuple

from mom.entity import Entity
from mom.hypervisor.base import IOTUNE_KEYS
from mom.iotune import IoTuneDevice
from mom.policy.errors import PolicyError
from mom.policy.runtime import UserFunction, suggest

#: The entity methods a policy may call (docs/policy-language.md, "Host and Guests").
ENTITY_METHODS = ("Stat", "StatAvg", "Prop", "Control", "GetControl", "SetVar", "GetVar")
#: What a policy may read of one disk in ``guest.io_tune``.
DEVICE_FIELDS = ("name", "path", "guaranteed", "maximum", "current")
#: The limit setters of a disk (names as in upstream MOM policies).
DEVICE_SETTERS = ("setTotalBytesSec", "setReadBytesSec", "setWriteBytesSec",
                  "setTotalIopsSec", "setReadIopsSec", "setWriteIopsSec")


class Exposed(NamedTuple):
    """What a policy may use of one Python type."""
    noun: str                                      # for messages: "I/O device"
    fields: frozenset[str]                         # data attributes every instance has
    methods: Mapping[str, Callable[..., Any]]      # name -> function(obj, *args)
    statistics: bool = False                       # also its declared statistics (entities)


def _methods(cls: type, names: Collection[str]) -> dict[str, Callable[..., Any]]:
    return {name: getattr(cls, name) for name in names}


#: The whole surface a policy can reach, by exact type.  Limit records are
#: SimpleNamespaces: mom.iotune builds them, and the IoTune controller
#: replaces ``device.current`` with one after applying new limits.
EXPOSED: dict[type, Exposed] = {
    Entity: Exposed("entity", frozenset(), _methods(Entity, ENTITY_METHODS), statistics=True),
    IoTuneDevice: Exposed("I/O device", frozenset(DEVICE_FIELDS),
                          _methods(IoTuneDevice, DEVICE_SETTERS)),
    types.SimpleNamespace: Exposed("I/O limit record", frozenset(IOTUNE_KEYS), {}),
}

#: Scalar types a policy value may have (bool is an int, listed for clarity).
SCALARS = (type(None), bool, int, float, str)


def kind_of(value: Any) -> str:
    """A value's kind as a policy author would name it, for messages."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    exposed = EXPOSED.get(type(value))
    if exposed is not None:
        return ("an " if exposed.noun[0] in "aeiouAEIOU" else "a ") + exposed.noun
    if callable(value):
        return "a function"
    return f"a {type(value).__name__}"


def _entity_name(entity: Entity) -> str:
    return str(entity.properties.get("name") or "this entity")


def get_attribute(obj: Any, parts: tuple[str, ...], depth: int, line: int, col: int) -> Any:
    """``obj.attr`` as the table allows it, where ``attr`` is ``parts[depth]``.

    ``parts`` is the whole dotted name, split (for messages).  A declared
    statistic missing from this cycle's sample reads as nil; anything the
    table does not list is a PolicyError.
    """
    attr = parts[depth]
    exposed = EXPOSED.get(type(obj))
    if exposed is None:
        path = ".".join(parts[:depth + 1])
        raise PolicyError(f"'{path}': {kind_of(obj)} has no attributes", line, col)
    if attr in exposed.fields:
        return getattr(obj, attr)
    statistics = obj._stats if exposed.statistics else {}
    if attr in statistics:           # before methods, as the compiler's fast path reads
        return statistics[attr]
    if attr in exposed.methods:
        return types.MethodType(exposed.methods[attr], obj)
    path = ".".join(parts[:depth + 1])
    hint = suggest(attr, [*exposed.fields, *statistics, *exposed.methods])
    if type(obj) is Entity:
        raise PolicyError(f"'{path}': no statistic '{attr}' is declared for "
                          f"{_entity_name(obj)}", line, col, hint=hint)
    raise PolicyError(f"'{path}': {kind_of(obj)} has no attribute '{attr}'", line, col,
                      hint=hint)


def get_method(obj: Any, parts: tuple[str, ...], line: int, col: int) -> Callable[..., Any]:
    """The function behind ``(obj.name ...)``, ``name`` being ``parts[-1]``.

    It takes ``obj`` as its first argument.
    """
    exposed = EXPOSED.get(type(obj))
    if exposed is not None:
        method = exposed.methods.get(parts[-1])
        if method is not None:
            return method
    value = get_attribute(obj, parts, len(parts) - 1, line, col)   # raises for unknown names
    what = "nil" if value is None else f"{kind_of(value)}, not a function"
    raise PolicyError(f"'{'.'.join(parts)}' is {what}; it cannot be called", line, col)


@cache
def field_types(attr: str) -> frozenset[type]:
    """The types of which ``attr`` is a fixed field (read with ``getattr``)."""
    return frozenset(t for t, exposed in EXPOSED.items() if attr in exposed.fields)


@cache
def method_table(name: str) -> Mapping[type, Callable[..., Any]]:
    """For each type offering method ``name``: its function."""
    return types.MappingProxyType({t: exposed.methods[name] for t, exposed in EXPOSED.items()
                                   if name in exposed.methods})


def is_exposed_method(value: Any) -> bool:
    """A method of the table, bound to an object of its type (``Host.Stat``)."""
    if type(value) is not types.MethodType:
        return False
    exposed = EXPOSED.get(type(value.__self__))
    return exposed is not None and \
        exposed.methods.get(value.__func__.__name__) is value.__func__


def is_policy_value(value: Any, depth: int = 0) -> bool:
    """Whether evaluation may produce ``value``: the kinds the language documents.

    Numbers, strings, booleans, nil, lists of such values, entities, I/O
    devices and their limit records, user functions and the table's
    methods bound to their objects.  Used to check what an embedder binds.
    """
    kind = type(value)
    if kind in SCALARS or kind in EXPOSED or kind is UserFunction:
        return True
    if kind is list:
        return depth < 100 and all(is_policy_value(v, depth + 1) for v in value)
    return is_exposed_method(value)
