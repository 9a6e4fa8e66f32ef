"""The built-in functions and operators, each compiled to one closure.

Every entry says how many arguments it takes and builds the closure for a
call site from the closures of its arguments, so a call such as
``(+ a b)`` costs two argument evaluations and one Python operation, with
no lookup of ``+`` at run time.  A Python error in the operation (adding a
number to a string, comparing nil with a number) becomes a PolicyError that
names the call and its place.
"""
from __future__ import annotations

import logging
import operator
from collections.abc import Callable
from typing import Any, NamedTuple

from mom.policy.reader import Node
from mom.policy.runtime import Code, failure, is_empty, show

log = logging.getLogger("mom.policy")

Factory = Callable[[list[Code], Node], Code]


class Builtin(NamedTuple):
    name: str
    min_args: int
    max_args: int | None      # None: no upper limit
    factory: Factory


def _binary(name: str, op: Callable[[Any, Any], Any]) -> Factory:
    def factory(args: list[Code], node: Node) -> Code:
        left, right = args
        line, col = node.line, node.col

        def binary(env):
            x = left(env)
            y = right(env)
            try:
                return op(x, y)
            except Exception as exc:
                raise failure(name, (x, y), exc, line, col) from exc
        return binary
    return factory


def _logic(name: str, pick: Callable[[list[Any]], Any]) -> Factory:
    # Every operand is evaluated before the deciding one is chosen, as in
    # the original engine (no short circuit).
    def factory(args: list[Code], node: Node) -> Code:
        if len(args) == 1:
            return args[0]
        if len(args) == 2:
            left, right = args
            if name == "and":
                def and2(env):
                    x = left(env)
                    y = right(env)
                    return x and y
                return and2

            def or2(env):
                x = left(env)
                y = right(env)
                return x or y
            return or2

        def logic(env):
            return pick([a(env) for a in args])
        return logic
    return factory


def _all_and(values: list[Any]) -> Any:
    for v in values:
        if not v:
            return v
    return values[-1]


def _all_or(values: list[Any]) -> Any:
    for v in values:
        if v:
            return v
    return values[-1]


def _not(args: list[Code], node: Node) -> Code:
    (arg,) = args

    def not_(env):
        return not arg(env)
    return not_


def _reduce(name: str, fn: Callable[..., Any]) -> Factory:
    def factory(args: list[Code], node: Node) -> Code:
        line, col = node.line, node.col
        if len(args) == 2:
            left, right = args

            def two(env):
                x = left(env)
                y = right(env)
                try:
                    return fn(x, y)
                except Exception as exc:
                    raise failure(name, (x, y), exc, line, col) from exc
            return two

        def many(env):
            values = [a(env) for a in args]
            try:
                return fn(values)
            except Exception as exc:
                raise failure(name, values, exc, line, col) from exc
        return many
    return factory


def _null(args: list[Code], node: Node) -> Code:
    def null(env):
        values = [a(env) for a in args]
        return all(is_empty(v) for v in values)
    return null


def _valid(args: list[Code], node: Node) -> Code:
    def valid(env):
        values = [a(env) for a in args]
        return all(v is not None for v in values)
    return valid


def _abs(args: list[Code], node: Node) -> Code:
    (arg,) = args
    line, col = node.line, node.col

    def abs_(env):
        x = arg(env)
        try:
            return abs(x)
        except Exception as exc:
            raise failure("abs", (x,), exc, line, col) from exc
    return abs_


def _debug(args: list[Code], node: Node) -> Code:
    line = node.line

    def debug(env):
        values = [a(env) for a in args]
        if log.isEnabledFor(logging.DEBUG):
            log.debug("debug (line %d): %s", line, " ".join(show(v, 200) for v in values))
        return values[-1]
    return debug


_BINARY_OPS = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne, "<<": operator.lshift, ">>": operator.rshift,
}

BUILTINS: dict[str, Builtin] = {
    name: Builtin(name, 2, 2, _binary(name, op)) for name, op in _BINARY_OPS.items()
}
BUILTINS.update({
    "and": Builtin("and", 1, None, _logic("and", _all_and)),
    "or": Builtin("or", 1, None, _logic("or", _all_or)),
    "not": Builtin("not", 1, 1, _not),
    "min": Builtin("min", 1, None, _reduce("min", min)),
    "max": Builtin("max", 1, None, _reduce("max", max)),
    "null": Builtin("null", 0, None, _null),
    "valid": Builtin("valid", 0, None, _valid),
    "abs": Builtin("abs", 1, 1, _abs),
    "debug": Builtin("debug", 1, None, _debug),
})
