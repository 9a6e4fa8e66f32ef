"""The run-time state of one evaluation, and the scope rules.

Scopes are dynamic (a function sees its caller's variables), which allows
*shallow binding*: one dict, the environment, maps every visible name to its
current value, so reading a variable is a single dict lookup however deep
the call chain is.  Opening a scope starts a *frame*, a dict remembering
what each name bound in the scope meant before; closing the scope puts
those values back.  The frame also answers "does the current scope already
have this name?", which ``defvar`` needs.  A scope whose body holds no
``defvar`` can never be asked, so function calls and ``with`` loops skip
the frame there and only put back the names they bound themselves.

Three keys in the environment are not variables (a space can never appear
in a symbol): ``FRAME`` holds the innermost frame (None at global scope),
``FUNCS`` the user functions defined with ``def`` and ``BUDGET`` what the
evaluation may still spend (:mod:`mom.policy.budget`).
"""
from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sized
from typing import Any

from mom.policy.budget import Budget
from mom.policy.errors import PolicyError

FRAME = " frame"
FUNCS = " funcs"
BUDGET = " budget"
_HIDDEN = (FRAME, FUNCS, BUDGET)

#: Saved in a frame for a name that was not visible before the scope.
MISSING: Any = object()

Env = dict[str, Any]
Code = Callable[[Env], Any]     # a compiled expression


def new_env(budget: Budget | None = None) -> Env:
    """A fresh global scope: no variables, no user functions, a full budget."""
    return {FRAME: None, FUNCS: {}, BUDGET: budget or Budget()}


def restore(env: Env, saved: dict[str, Any]) -> None:
    """Leaving a scope: give each name in ``saved`` the value it had outside."""
    for name, old in saved.items():
        if old is MISSING:
            env.pop(name, None)
        else:
            env[name] = old


def close_frame(env: Env, frame: dict[str, Any], outer: dict[str, Any] | None) -> None:
    """Leave a scope that has a frame: restore what its names meant outside it."""
    restore(env, frame)
    env[FRAME] = outer


def variables(env: Env) -> Iterable[str]:
    return (k for k in env if k not in _HIDDEN)


class UserFunction:
    """A function defined by ``def``: its parameters and compiled body.

    ``run(env, *values)`` runs the body in a new scope, with the parameters
    bound to ``values``.  ``needs_frame`` is false when the body holds no
    ``defvar``.  ``param`` is the parameter of a one-parameter function
    without a frame (else None): a call may bind it itself and run ``body``,
    as ``run`` would.
    """
    __slots__ = ("name", "params", "arity", "run", "body", "param", "line", "col")

    def __init__(self, name: str, params: tuple[str, ...], body: Code,
                 line: int, col: int, needs_frame: bool = True) -> None:
        self.name, self.params, self.arity = name, params, len(params)
        self.line, self.col = line, col
        needs_frame = needs_frame or len(set(params)) < len(params)
        self.run = _scope(params, body, needs_frame)
        self.body = body
        self.param = params[0] if len(params) == 1 and not needs_frame else None

    def __repr__(self) -> str:
        return f"<function {self.name} ({' '.join(self.params)})>"


def _scope(params: tuple[str, ...], body: Code, needs_frame: bool) -> Callable[..., Any]:
    """``run(env, *values)`` for a function: bind the parameters, run, put back.

    Without a frame, the old values of the parameters are kept in local
    variables (written out for one to three parameters, the usual calls):
    cheaper than a frame, and most functions are like that.
    """
    if needs_frame:
        def run(env, *values):
            outer = env[FRAME]
            env[FRAME] = frame = {}
            for param, value in zip(params, values):
                if param not in frame:          # (def f (a a) ...) keeps the outer a
                    frame[param] = env.get(param, MISSING)
                env[param] = value
            try:
                return body(env)
            finally:
                close_frame(env, frame, outer)
        return run
    if not params:
        return body
    if len(params) == 1:
        (param,) = params

        def run1(env, value):
            old = env.get(param, MISSING)
            env[param] = value
            try:
                return body(env)
            finally:
                if old is MISSING:
                    env.pop(param, None)
                else:
                    env[param] = old
        return run1
    if len(params) == 2:
        p, q = params

        def run2(env, x, y):
            old_p = env.get(p, MISSING)
            old_q = env.get(q, MISSING)
            env[p] = x
            env[q] = y
            try:
                return body(env)
            finally:
                if old_p is MISSING:
                    env.pop(p, None)
                else:
                    env[p] = old_p
                if old_q is MISSING:
                    env.pop(q, None)
                else:
                    env[q] = old_q
        return run2
    if len(params) == 3:
        p, q, r = params

        def run3(env, x, y, z):
            old_p = env.get(p, MISSING)
            old_q = env.get(q, MISSING)
            old_r = env.get(r, MISSING)
            env[p] = x
            env[q] = y
            env[r] = z
            try:
                return body(env)
            finally:
                if old_p is MISSING:
                    env.pop(p, None)
                else:
                    env[p] = old_p
                if old_q is MISSING:
                    env.pop(q, None)
                else:
                    env[q] = old_q
                if old_r is MISSING:
                    env.pop(r, None)
                else:
                    env[r] = old_r
        return run3

    def run_n(env, *values):
        olds = []
        for param, value in zip(params, values):
            olds.append(env.get(param, MISSING))
            env[param] = value
        try:
            return body(env)
        finally:
            for param, old in zip(params, olds):
                if old is MISSING:
                    env.pop(param, None)
                else:
                    env[param] = old
    return run_n


def show(value: Any, limit: int = 40) -> str:
    """A value as a policy author would write it, shortened for messages.

    Never costs more than ``limit``: a list is written only as far as it is
    shown (a policy can build lists that are huge, deep, or share parts so
    that writing them out in full would never end).
    """
    parts: list[str] = []
    _write(value, parts, limit + 1)
    text = "".join(parts)
    return text if len(text) <= limit else text[:limit] + "..."


def _write(value: Any, parts: list[str], room: int) -> int:
    """Append ``value``'s text to ``parts``, stopping past ``room`` characters; room left."""
    if type(value) is list:
        parts.append("[")
        room -= 1
        for i, item in enumerate(value):
            if room <= 0:
                return room
            if i:
                parts.append(", ")
                room -= 2
            room = _write(item, parts, room)
        parts.append("]")
        return room - 1
    if value is None:
        text = "nil"
    elif isinstance(value, str):
        text = '"' + value[:max(room, 0)] + '"'
    else:
        try:
            text = repr(value)
        except Exception:  # a broken __repr__, or an int too long to print
            text = f"<{type(value).__name__}>"
    parts.append(text)
    return room - len(text)


def is_empty(value: Any) -> bool:
    """nil, or a string/list/dict of length 0 (what ``null`` tests)."""
    return value is None or (isinstance(value, Sized) and len(value) == 0)


def arity_text(name: str, low: int, high: int | None, got: int,
               what: str | None = None) -> str:
    if high == low:
        wanted = f"{low} argument" + ("" if low == 1 else "s")
    elif high is None:
        wanted = f"{low} or more arguments"
    else:
        wanted = f"{low} to {high} arguments"
    if what:
        wanted += f" ({what})"
    return f"'{name}' takes {wanted}, got {got}"


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    """A "did you mean" hint for a misspelt name, or None."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.75)
    return f"did you mean '{close[0]}'?" if close else None


def failure(what: str, args: Iterable[Any], exc: BaseException, line: int,
            col: int) -> PolicyError:
    """Turn a Python exception from an operation into a PolicyError."""
    if isinstance(exc, PolicyError):
        return exc
    shown = " ".join(show(a) for a in args)
    call = f"({what} {shown})" if shown else f"({what})"
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, RecursionError):
        detail = "too much recursion"
    return PolicyError(f"{call} failed: {detail}", line, col)
