"""The built-in functions and operators, with their arities.

Each entry builds the closure for one call site from the closures of the
call's operands, so ``(+ guest.balloon_cur 10)`` becomes one closure that
evaluates its two operands and adds them, with no lookup of ``+`` at run
time.  Every operand is evaluated, left to right, before the operation.  A
Python error in the operation (adding a number to a string, comparing nil
with a number) becomes a PolicyError naming the call and its place.

The operations that can build big values check the size first (see
:mod:`mom.policy.budget`): ``+`` and ``*`` on strings and lists, ``*`` and
``<<`` on integers.  Comparing lists, which Python does element by element
and which could take forever on lists that share parts, is done here, one
step of the budget per pair of elements.
"""
from __future__ import annotations

import logging
import operator
from collections.abc import Callable
from typing import Any, NamedTuple

from mom.policy.budget import MAX_INT_BITS, Budget
from mom.policy.errors import PolicyError
from mom.policy.reader import Node
from mom.policy.runtime import BUDGET, Code, Env, failure, is_empty, show

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


# -- operations that can build big values ------------------------------------
_SIZED = frozenset({str, list})
_NUMBERS = frozenset({bool, int, float})


def _add(x: Any, y: Any, budget: Budget, line: int, col: int) -> Any:
    """``x + y`` where ``x`` is a string or list: the size is checked first."""
    if type(y) is type(x):
        budget.allocate(len(x) + len(y), "(+ ...)", line, col)
    return x + y


def _multiply(x: Any, y: Any, budget: Budget, line: int, col: int) -> Any:
    """``x * y`` for anything but floats: repetition and integers are checked first."""
    if type(x) in _SIZED and type(y) in _NUMBERS:
        seq, times = x, y
    elif type(y) in _SIZED and type(x) in _NUMBERS:
        seq, times = y, x
    else:
        if type(x) is int and type(y) is int and \
                x.bit_length() + y.bit_length() > MAX_INT_BITS:
            raise PolicyError(f"(* ...) would build an integer of more than {MAX_INT_BITS} "
                              "bits", line, col)
        return x * y
    if type(times) is not float and times > 0 and len(seq):
        budget.allocate(len(seq) * times, "(* ...)", line, col)
    return x * y


def _lshift(x: Any, y: Any, line: int, col: int) -> Any:
    if type(x) in _NUMBERS and type(y) in _NUMBERS and x and y > 0 \
            and abs(x).bit_length() + y > MAX_INT_BITS:
        raise PolicyError(f"(<< ...) would build an integer of more than {MAX_INT_BITS} bits",
                          line, col)
    return x << y


def _plus_build(codes: list[Code], node: Node) -> Code:
    a, b = codes
    line, col = node.line, node.col

    def plus(env):
        x = a(env)
        y = b(env)
        try:
            if type(x) in _SIZED:
                return _add(x, y, env[BUDGET], line, col)
            return x + y
        except PolicyError:
            raise
        except Exception as exc:
            raise failure("+", (x, y), exc, line, col) from exc
    return plus


def _times_build(codes: list[Code], node: Node) -> Code:
    a, b = codes
    line, col = node.line, node.col

    def times(env):
        x = a(env)
        y = b(env)
        try:
            if type(x) is float or type(y) is float or (
                    type(x) is int and type(y) is int
                    and x.bit_length() + y.bit_length() <= MAX_INT_BITS):
                return x * y
            return _multiply(x, y, env[BUDGET], line, col)
        except PolicyError:
            raise
        except Exception as exc:
            raise failure("*", (x, y), exc, line, col) from exc
    return times


def _lshift_build(codes: list[Code], node: Node) -> Code:
    a, b = codes
    line, col = node.line, node.col

    def lshift(env):
        x = a(env)
        y = b(env)
        try:
            return _lshift(x, y, line, col)
        except PolicyError:
            raise
        except Exception as exc:
            raise failure("<<", (x, y), exc, line, col) from exc
    return lshift


# -- comparisons --------------------------------------------------------------
def _equal(x: Any, y: Any, budget: Budget, line: int, col: int) -> bool:
    """Python's ``x == y`` as list comparison uses it (identity first)."""
    if x is y:
        return True
    if type(x) is list and type(y) is list:
        return compare_lists(operator.eq, x, y, budget, line, col)
    return bool(x == y)


def compare_lists(op: Callable[[Any, Any], Any], x: list[Any], y: list[Any],
                   budget: Budget, line: int, col: int) -> Any:
    """``op(x, y)`` for two lists exactly as Python compares them, on the budget.

    Python finds the first index where the elements differ and compares
    those (or the lengths when there is none); here each pair of elements
    looked at costs one step, so lists sharing parts cannot make one
    comparison run forever.
    """
    if (op is operator.eq or op is operator.ne) and len(x) != len(y):
        return op is operator.ne
    for i in range(min(len(x), len(y))):
        budget.countdown -= 1
        if budget.countdown < 0:
            budget.checkpoint(line, col)
        if not _equal(x[i], y[i], budget, line, col):
            break
    else:
        return op(len(x), len(y))
    if op is operator.eq:
        return False
    if op is operator.ne:
        return True
    a, b = x[i], y[i]
    if type(a) is list and type(b) is list:
        return compare_lists(op, a, b, budget, line, col)
    return op(a, b)


def _comparison(symbol: str, op: Callable[[Any, Any], Any]) -> Build:
    def build(codes: list[Code], node: Node) -> Code:
        a, b = codes
        line, col = node.line, node.col

        def compare(env):
            x = a(env)
            y = b(env)
            try:
                if type(x) is list and type(y) is list:
                    return compare_lists(op, x, y, env[BUDGET], line, col)
                return op(x, y)
            except PolicyError:
                raise
            except Exception as exc:
                raise failure(symbol, (x, y), exc, line, col) from exc
        return compare
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


def _and_build(codes: list[Code], node: Node) -> Code:
    if len(codes) != 2:
        return _on_values(_and)(codes, node)
    a, b = codes

    def and2(env):
        x = a(env)
        y = b(env)
        return x and y
    return and2


def _or_build(codes: list[Code], node: Node) -> Code:
    if len(codes) != 2:
        return _on_values(_or)(codes, node)
    a, b = codes

    def or2(env):
        x = a(env)
        y = b(env)
        return x or y
    return or2


def _valid_build(codes: list[Code], node: Node) -> Code:
    def valid(env):
        result = True
        for code in codes:           # every operand is evaluated
            if code(env) is None:
                result = False
        return result
    return valid


def _extreme(name: str, fn: Callable[..., Any]) -> Build:
    """``min``/``max``: Python's, but lists are compared on the budget."""
    better = operator.lt if name == "min" else operator.gt

    def build(codes: list[Code], node: Node) -> Code:
        line, col = node.line, node.col

        def pick(env, args):
            if len(args) == 1:           # (max x) is x, whatever x is
                return args[0]
            try:
                for value in args:
                    if type(value) is list:
                        break
                else:
                    return fn(args)
                best = args[0]           # as Python: the first of equal ones wins
                for value in args[1:]:
                    if type(value) is list and type(best) is list:
                        wins = compare_lists(better, value, best, env[BUDGET], line, col)
                    else:
                        wins = better(value, best)
                    if wins:
                        best = value
                return best
            except PolicyError:
                raise
            except Exception as exc:
                raise failure(name, args, exc, line, col) from exc

        if len(codes) == 2:              # the usual case, numbers: Python's
            a, b = codes

            def extreme2(env):
                x = a(env)
                y = b(env)
                if type(x) is list or type(y) is list:
                    return pick(env, (x, y))
                try:
                    return fn(x, y)
                except Exception as exc:
                    raise failure(name, (x, y), exc, line, col) from exc
            return extreme2

        values = arguments(codes)
        return lambda env: pick(env, values(env))
    return build


def _null(values: tuple[Any, ...], node: Node) -> bool:
    for value in values:
        if not is_empty(value):
            return False
    return True


def _debug(values: tuple[Any, ...], node: Node) -> Any:
    if log.isEnabledFor(logging.DEBUG):
        log.debug("debug (line %d): %s", node.line, " ".join(show(v, 200) for v in values))
    return values[-1]


_ARITHMETIC = {"-": operator.sub, "/": operator.truediv, ">>": operator.rshift}
COMPARISONS = {
    "<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge,
    "==": operator.eq, "!=": operator.ne,
}
BUILTINS: dict[str, Builtin] = {
    "+": Builtin("+", 2, 2, _plus_build),
    "*": Builtin("*", 2, 2, _times_build),
    "<<": Builtin("<<", 2, 2, _lshift_build),
}
BUILTINS.update({s: Builtin(s, 2, 2, _binary(s, op)) for s, op in _ARITHMETIC.items()})
BUILTINS.update({s: Builtin(s, 2, 2, _comparison(s, op)) for s, op in COMPARISONS.items()})
BUILTINS.update({
    "and": Builtin("and", 1, None, _and_build),
    "or": Builtin("or", 1, None, _or_build),
    "not": Builtin("not", 1, 1, _unary("not", operator.not_)),
    "min": Builtin("min", 1, None, _extreme("min", min)),
    "max": Builtin("max", 1, None, _extreme("max", max)),
    "null": Builtin("null", 0, None, _on_values(_null)),
    "valid": Builtin("valid", 0, None, _valid_build),
    "abs": Builtin("abs", 1, 1, _unary("abs", abs)),
    "debug": Builtin("debug", 1, None, _on_values(_debug)),
})
