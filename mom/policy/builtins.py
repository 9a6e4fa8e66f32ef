"""The built-in functions and operators, with their arities.

Each entry builds the closure for one call site from the call's operands
(see :mod:`mom.policy.fusion`), so ``(+ guest.balloon_cur 10)`` becomes one
closure doing one attribute read and one addition, with no lookup of ``+``
at run time.  A Python error in the operation (adding a number to a string,
comparing nil with a number) becomes a PolicyError naming the call and its
place.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, NamedTuple

from mom.policy.fusion import Operand, specialize
from mom.policy.reader import Node
from mom.policy.runtime import Code, failure, is_empty, show

log = logging.getLogger("mom.policy")

Build = Callable[[list[Operand], Node], Code]


class Builtin(NamedTuple):
    name: str
    min_args: int
    max_args: int | None      # None: no upper limit
    build: Build


def _fail(name: str, node: Node) -> Callable[[tuple[Any, ...], BaseException], Exception]:
    return lambda values, exc: failure(name, values, exc, node.line, node.col)


def _evaluate_all(count: int) -> str:
    """Template lines that evaluate every operand, in order, into v0, v1, ..."""
    return "".join(f"v{i} = ${i}\n" for i in range(count))


def _values(count: int) -> str:
    return ", ".join(f"v{i}" for i in range(count))


def _binary(symbol: str) -> Build:
    template = (f"x = $0\ny = $1\n"
                f"try:\n    return x {symbol} y\n"
                f"except Exception as exc:\n    raise fail((x, y), exc) from exc\n")

    def build(operands: list[Operand], node: Node) -> Code:
        return specialize(template, operands, node, fail=_fail(symbol, node))
    return build


def _logic(word: str) -> Build:
    # Every operand is evaluated before the deciding one is picked, as in
    # the original engine (no short circuit); the pick is Python's.
    def build(operands: list[Operand], node: Node) -> Code:
        n = len(operands)
        template = _evaluate_all(n) + "return " + f" {word} ".join(f"v{i}" for i in range(n))
        return specialize(template, operands, node)
    return build


def _not(operands: list[Operand], node: Node) -> Code:
    return specialize("return not $0", operands, node)


def _extreme(name: str) -> Build:
    def build(operands: list[Operand], node: Node) -> Code:
        n = len(operands)
        if n == 1:                     # (max x) is x, whatever x is
            return specialize("return $0", operands, node)
        template = (_evaluate_all(n) + f"try:\n    return {name}({_values(n)})\n"
                    f"except Exception as exc:\n    raise fail(({_values(n)},), exc) from exc\n")
        return specialize(template, operands, node, fail=_fail(name, node))
    return build


def _null(operands: list[Operand], node: Node) -> Code:
    n = len(operands)
    test = " and ".join(f"is_empty(v{i})" for i in range(n)) or "True"
    return specialize(_evaluate_all(n) + f"return {test}", operands, node, is_empty=is_empty)


def _valid(operands: list[Operand], node: Node) -> Code:
    n = len(operands)
    test = " and ".join(f"v{i} is not None" for i in range(n)) or "True"
    return specialize(_evaluate_all(n) + f"return {test}", operands, node)


def _abs(operands: list[Operand], node: Node) -> Code:
    template = ("x = $0\ntry:\n    return abs(x)\n"
                "except Exception as exc:\n    raise fail((x,), exc) from exc\n")
    return specialize(template, operands, node, fail=_fail("abs", node))


def _debug(operands: list[Operand], node: Node) -> Code:
    def debug(values: list[Any]) -> Any:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("debug (line %d): %s", node.line, " ".join(show(v, 200) for v in values))
        return values[-1]
    n = len(operands)
    return specialize(_evaluate_all(n) + f"return debug([{_values(n)}])", operands, node,
                      debug=debug)


BUILTINS: dict[str, Builtin] = {
    symbol: Builtin(symbol, 2, 2, _binary(symbol))
    for symbol in ("+", "-", "*", "/", "<", ">", "<=", ">=", "==", "!=", "<<", ">>")
}
BUILTINS.update({
    "and": Builtin("and", 1, None, _logic("and")),
    "or": Builtin("or", 1, None, _logic("or")),
    "not": Builtin("not", 1, 1, _not),
    "min": Builtin("min", 1, None, _extreme("min")),
    "max": Builtin("max", 1, None, _extreme("max")),
    "null": Builtin("null", 0, None, _null),
    "valid": Builtin("valid", 0, None, _valid),
    "abs": Builtin("abs", 1, 1, _abs),
    "debug": Builtin("debug", 1, None, _debug),
})
