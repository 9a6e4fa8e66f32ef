"""Static checks of policy texts, for ``mom-policy check --strict``.

A misspelt statistic (``Host.mem_fre``) stops the evaluation when it runs;
this finds the ones visible in the text before the policy is installed.
An entity is recognised by name: ``Host``, and the item name of any
``(with Guests NAME ...)`` loop in the texts checked together (policies
usually hand that name on to their functions as a parameter of the same
name).  The statistics known are those of MOM's built-in collectors
(:func:`mom.policy.known.known_fields`); a plugin collector's fields are
not, which is why these are warnings.
"""
from __future__ import annotations

from collections.abc import Iterable

from mom.policy.errors import PolicyError
from mom.policy.known import known_fields
from mom.policy.reader import Form, Literal, Node, Symbol
from mom.policy.runtime import suggest
from mom.policy.sandbox import ENTITY_METHODS

_STAT_METHODS = ("Stat", "StatAvg")


def _walk(nodes: Iterable[Node]) -> Iterable[Node]:
    stack = list(nodes)
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, Form):
            stack.extend(reversed(node.items))


def guest_names(nodes: Iterable[Node]) -> set[str]:
    """Item names of ``(with Guests NAME ...)`` loops."""
    names = set()
    for node in _walk(nodes):
        if isinstance(node, Form) and not node.is_block and len(node.items) > 2:
            head, seq, item = node.items[:3]
            if isinstance(head, Symbol) and head.name == "with" \
                    and isinstance(seq, Symbol) and seq.name == "Guests" \
                    and isinstance(item, Symbol) and not item.dotted:
                names.add(item.name)
    return names


def undeclared_fields(nodes: Iterable[Node], guests: set[str]) -> list[PolicyError]:
    """Warnings for entity statistics no built-in collector declares.

    Checks ``Host.x`` and ``NAME.x`` for NAME in ``guests``, and the
    literal names given to ``Stat``/``StatAvg`` of those.
    """
    warnings = []

    def check(root: str, field: str, node: Node, shown: str) -> None:
        kind = "host" if root == "Host" else "guest" if root in guests else None
        if kind is None:
            return
        fields = known_fields(kind)
        if field not in fields:
            warnings.append(PolicyError(
                f"{shown}: no built-in collector declares the {kind} statistic '{field}'",
                node.line, node.col, hint=suggest(field, fields)))

    for node in _walk(nodes):
        if isinstance(node, Symbol) and node.dotted:
            root, attr = node.parts[:2]
            if attr not in ENTITY_METHODS:
                check(root, attr, node, f"'{node.name}'")
        elif isinstance(node, Form) and not node.is_block and len(node.items) == 2:
            head, arg = node.items
            if isinstance(head, Symbol) and len(head.parts) == 2 \
                    and head.parts[1] in _STAT_METHODS \
                    and isinstance(arg, Literal) and isinstance(arg.value, str):
                check(head.parts[0], arg.value, arg, f"({head.name} \"{arg.value}\")")
    warnings.sort(key=lambda w: (w.line, w.column))
    return warnings
