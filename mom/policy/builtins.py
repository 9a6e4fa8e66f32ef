"""The built-in functions and operators, with their arities.

Each entry builds the closure for one call site from the closures of the
call's operands, so ``(+ guest.balloon_cur 10)`` becomes one closure that
evaluates its two operands and adds them, with no lookup of ``+`` at run
time.  Every operand is evaluated, left to right, before the operation.  A
Python error in the operation (adding a number to a string, comparing nil
with a number) becomes a PolicyError naming the call and its place.
"""
from __future__ import annotations

import logging
import operator
from collections.abc import Callable
from typing import Any, NamedTuple

from mom.policy.reader import Node
from mom.policy.runtime import Code, Env, failure, is_empty, show

log = logging.getLogger("mom.policy")

Build = Callable[[list[Code], Node], Code]


class Builtin(NamedTuple):
    name: str
    min_args: int
    max_args: int | None      # None: no upper limit
    build: Build


def arguments(codes: list[Code]) -> Callable[[Env], tuple[Any, ...]]:
    """A closure evaluating ``codes`` in order into a tuple of values.

    Written out for the usual small counts: a list comprehension costs
    more than the calls it makes.
    """
    if not codes:
        return lambda env: ()
    if len(codes) == 1:
        (a,) = codes
        return lambda env: (a(env),)
    if len(codes) == 2:
        a, b = codes
        return lambda env: (a(env), b(env))
    if len(codes) == 3:
        a, b, c = codes
        return lambda env: (a(env), b(env), c(env))
    return lambda env: tuple([code(env) for code in codes])


def _binary(symbol: str, op: Callable[[Any, Any], Any]) -> Build:
    def build(codes: list[Code], node: Node) -> Code:
        a, b = codes
        line, col = node.line, node.col

        def binary(env):
            x = a(env)
            y = b(env)
            try:
                return op(x, y)
            except Exception as exc:
                raise failure(symbol, (x, y), exc, line, col) from exc
        return binary
    return build


def _unary(name: str, op: Callable[[Any], Any]) -> Build:
    def build(codes: list[Code], node: Node) -> Code:
        (a,) = codes

        def unary(env):
            x = a(env)
            try:
                return op(x)
            except Exception as exc:
                raise failure(name, (x,), exc, node.line, node.col) from exc
        return unary
    return build


def _on_values(fn: Callable[[tuple[Any, ...], Node], Any]) -> Build:
    """Evaluate every operand, then apply ``fn`` to the tuple of their values."""
    def build(codes: list[Code], node: Node) -> Code:
        values = arguments(codes)
        return lambda env: fn(values(env), node)
    return build


# ``and``/``or`` evaluate every operand before picking the deciding one, as
# the original engine did (no short circuit); the pick is Python's.
def _and(values: tuple[Any, ...], node: Node) -> Any:
    for value in values:
        if not value:
            return value
    return value


def _or(values: tuple[Any, ...], node: Node) -> Any:
    for value in values:
        if value:
            return value
    return value


def _extreme(name: str, fn: Callable[..., Any]) -> Callable[[tuple[Any, ...], Node], Any]:
    def extreme(values: tuple[Any, ...], node: Node) -> Any:
        if len(values) == 1:           # (max x) is x, whatever x is
            return values[0]
        try:
            return fn(values)
        except Exception as exc:
            raise failure(name, values, exc, node.line, node.col) from exc
    return extreme


def _null(values: tuple[Any, ...], node: Node) -> bool:
    for value in values:
        if not is_empty(value):
            return False
    return True


def _valid(values: tuple[Any, ...], node: Node) -> bool:
    for value in values:
        if value is None:
            return False
    return True


def _debug(values: tuple[Any, ...], node: Node) -> Any:
    if log.isEnabledFor(logging.DEBUG):
        log.debug("debug (line %d): %s", node.line, " ".join(show(v, 200) for v in values))
    return values[-1]


_OPERATORS = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne, "<<": operator.lshift, ">>": operator.rshift,
}
BUILTINS: dict[str, Builtin] = {
    symbol: Builtin(symbol, 2, 2, _binary(symbol, op)) for symbol, op in _OPERATORS.items()
}
BUILTINS.update({
    "and": Builtin("and", 1, None, _on_values(_and)),
    "or": Builtin("or", 1, None, _on_values(_or)),
    "not": Builtin("not", 1, 1, _unary("not", operator.not_)),
    "min": Builtin("min", 1, None, _on_values(_extreme("min", min))),
    "max": Builtin("max", 1, None, _on_values(_extreme("max", max))),
    "null": Builtin("null", 0, None, _on_values(_null)),
    "valid": Builtin("valid", 0, None, _on_values(_valid)),
    "abs": Builtin("abs", 1, 1, _unary("abs", abs)),
    "debug": Builtin("debug", 1, None, _on_values(_debug)),
})
