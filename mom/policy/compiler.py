"""Compiling the node tree into Python closures, once.

Each node becomes a closure ``code(env) -> value``, in the manner of
Norvig's lis.py: a constant becomes a closure returning it, a call a
closure that calls its operands' closures and then the operation, and each
special form reads like the language page (``if`` picks a branch, ``let``
opens a scope, and so on).  After compilation nothing looks at text or
nodes again; evaluating a policy is calling its closures with an
environment (see :mod:`mom.policy.runtime` for the scope rules).

A mistake that the original engine only noticed when the code ran (a wrong
number of arguments, ``set`` on a dotted name, an ``if`` without an else)
still fails only when that code runs, so every policy the original engine
accepted still loads.  The compiler records these mistakes as ``warnings``
so ``mom-policy check`` can point them out early.  A dotted name reaching
for a name that starts with ``_`` is different: it can only be an attempt
to leave the sandbox (:mod:`mom.policy.sandbox`), so the text is refused.

Steps are counted (:mod:`mom.policy.budget`) at each top-level
expression, each user-function call and each round of a ``with`` loop.
"""
from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable
from typing import Any

from mom.entity import Entity
from mom.policy.budget import check_text_size
from mom.policy.builtins import BUILTINS, COMPARISONS, arguments, compare_lists
from mom.policy.errors import PolicyError
from mom.policy.reader import Form, Literal, Node, Symbol, read
from mom.policy.runtime import (BUDGET, FRAME, FUNCS, MISSING, Code, Env, UserFunction,
                                arity_text, close_frame, failure, restore, suggest,
                                variables)
from mom.policy.sandbox import field_types, get_attribute, get_method, kind_of, method_table

SPECIAL_FORMS = frozenset({"defvar", "set", "setq", "def", "defun", "let", "if", "with"})
_BINDERS = frozenset({"defvar", "set", "setq"})


class Program:
    """A compiled policy: run it as often as needed, it is never re-read."""

    def __init__(self, name: str | None, text: str, code: list[Code],
                 nodes: list[Node], warnings: list[PolicyError],
                 binds: frozenset[str] = frozenset(),
                 shadowed: frozenset[str] = frozenset()) -> None:
        self.name = name
        self.text = text
        # Only the closures and where each top-level expression starts are
        # kept, not the node tree: memory stays a few bytes per expression.
        self._codes = code
        self._places = array("q", [n for node in nodes for n in (node.line, node.col)])
        self.warnings = warnings
        #: Names of built-ins/special forms this text binds as variables.
        self.binds = binds
        #: Names of built-ins/special forms compiled to check the scope first.
        self.shadowed = shadowed

    def run(self, env: Env) -> list[Any]:
        """Evaluate every top-level expression in order; their values."""
        results = []
        append = results.append
        budget = env[BUDGET]
        places = self._places
        try:
            for i, code in enumerate(self._codes):
                budget.countdown -= 1
                if budget.countdown < 0:
                    budget.checkpoint(places[2 * i], places[2 * i + 1])
                try:
                    append(code(env))
                except PolicyError:
                    raise
                except RecursionError:
                    raise PolicyError("too much recursion", places[2 * i],
                                      places[2 * i + 1]) from None
                except Exception as exc:  # a bug of ours; still reported as the policy's error
                    raise PolicyError(f"internal error: {exc!r}", places[2 * i],
                                      places[2 * i + 1]) from exc
        except PolicyError as error:
            if error.policy is None:
                error.policy = self.name
            raise
        return results

    def __repr__(self) -> str:
        return f"<Program {self.name or '?'}: {len(self._codes)} expressions>"


def compile_policy(text: str, name: str | None = None,
                   bound: Iterable[str] = ()) -> Program:
    """Read and compile a policy text; PolicyError (naming ``name``) if it does not parse.

    ``bound`` lists names the caller binds before running (``Host``...):
    a built-in's name bound to a callable must win over the built-in.
    A text over 1 MiB is refused before it is read.
    """
    try:
        check_text_size(text)
        nodes = read(text)
        binds = _shadowed(nodes, ())
        shadowed = binds | _shadowed((), bound)
        compiler = _Compiler(shadowed)
        code = [compiler.compile(node) for node in nodes]
    except PolicyError as error:
        error.policy = name
        raise
    except RecursionError:
        raise PolicyError("policy nested too deeply to compile", policy=name) from None
    warnings = list({(w.line, w.column, w.reason): w for w in compiler.warnings}.values())
    for warning in warnings:
        warning.policy = name
    return Program(name, text, code, nodes, warnings, binds, shadowed)


def _head(node: Node) -> str | None:
    if isinstance(node, Form) and not node.is_block and node.items \
            and isinstance(node.items[0], Symbol):
        return node.items[0].name
    return None


def _shadowed(nodes: list[Node], bound: Iterable[str]) -> frozenset[str]:
    """Names of built-ins/special forms that this text (or the caller) binds.

    Only calls of these names must check the scope for a callable first;
    every other built-in call is compiled straight to the built-in.
    """
    names = set(bound)
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if not isinstance(node, Form):
            continue
        items = node.items
        stack.extend(items)
        head = _head(node)
        if head in _BINDERS and len(items) > 1:
            targets = [items[1]]
        elif head == "with" and len(items) > 2:
            targets = [items[2]]
        elif head in ("def", "defun") and len(items) > 2 and isinstance(items[2], Form):
            targets = list(items[2].items)
        elif head == "let" and len(items) > 1 and isinstance(items[1], Form):
            targets = [b.items[0] for b in items[1].items if isinstance(b, Form) and b.items]
        else:
            continue
        names.update(t.name for t in targets if isinstance(t, Symbol))
    return frozenset(names & (SPECIAL_FORMS | BUILTINS.keys()))


def _has_defvar(nodes: Iterable[Node]) -> bool:
    """Whether a ``defvar`` appears anywhere in these nodes.

    Only a scope whose body has one needs a frame (a record of what the
    scope defined); counting nested scopes' ``defvar`` too errs on the
    safe side.  Each form remembers its answer, so nested scopes cost
    one walk of the text in all, not one per scope.
    """
    return any(_node_has_defvar(node) for node in nodes)


def _node_has_defvar(node: Node) -> bool:
    if isinstance(node, Form):           # nesting depth is bounded by the reader
        if node.defvar is None:
            node.defvar = any(_node_has_defvar(item) for item in node.items)
        return node.defvar
    return isinstance(node, Symbol) and node.name == "defvar"


def _sequence(codes: list[Code]) -> Code:
    """Run each in order, yield the last (nil when there are none)."""
    if not codes:
        return lambda env: None
    *init, last = codes
    if not init:
        return last

    def sequence(env):
        for code in init:
            code(env)
        return last(env)
    return sequence


def check_attributes(node: Symbol) -> None:
    """Refuse a dotted name reaching for a name that starts with ``_``.

    No attribute a policy may use starts with ``_`` (see
    mom.policy.sandbox), so such a name is refused when the text is
    compiled, wherever it appears, even in code that never runs.
    """
    for part in node.parts[1:]:
        if part.startswith("_"):
            raise PolicyError(f"'{node.name}': '{part}' cannot be used in a policy", node.line,
                              node.col, hint="names starting with '_' are not accessible")


def _undefined(name: str, env: Env, line: int, col: int) -> PolicyError:
    return PolicyError(f"undefined symbol '{name}'", line, col,
                       hint=suggest(name, variables(env)))


def _call_python(fn: Callable[..., Any], name: str, args: tuple[Any, ...],
                 line: int, col: int) -> Any:
    try:
        return fn(*args)
    except PolicyError:
        raise
    except Exception as exc:
        raise failure(name, args, exc, line, col) from exc


class _Compiler:
    def __init__(self, shadowed: frozenset[str]) -> None:
        self.shadowed = shadowed
        self.warnings: list[PolicyError] = []
        self.constants: dict[tuple[type, Any], Code] = {}   # one closure per constant
        self.special: dict[str, Callable[[Form], Code]] = {
            "defvar": self.c_defvar, "set": self.c_set, "setq": self.c_set,
            "def": self.c_def, "defun": self.c_def, "let": self.c_let,
            "if": self.c_if, "with": self.c_with,
        }

    # -- helpers ----------------------------------------------------------
    def error(self, node: Node, reason: str, hint: str | None = None) -> Code:
        """Code that fails when run, as the original engine did; noted as a warning."""
        self.warnings.append(PolicyError(reason, node.line, node.col, hint=hint))

        def fail(env):
            raise PolicyError(reason, node.line, node.col, hint=hint)
        return fail

    def arity(self, form: Form, name: str, low: int, high: int | None,
              what: str | None = None) -> Code | None:
        got = len(form.items) - 1
        if got < low or (high is not None and got > high):
            return self.error(form, arity_text(name, low, high, got, what))
        return None

    def compile_all(self, nodes: Iterable[Node]) -> list[Code]:
        return [self.compile(n) for n in nodes]

    def body(self, nodes: Iterable[Node]) -> Code:
        return _sequence(self.compile_all(nodes))

    # -- expressions ------------------------------------------------------
    def compile(self, node: Node) -> Code:
        if isinstance(node, Literal):
            value = node.value
            if type(value) is float:     # 0.0 == -0.0: not a key
                return lambda env: value
            key = (type(value), value)
            code = self.constants.get(key)
            if code is None:
                code = self.constants[key] = lambda env: value
            return code
        if isinstance(node, Symbol):
            return self.c_symbol(node)
        if node.is_block:
            return self.body(node.items)
        return self.c_form(node)

    def c_symbol(self, node: Symbol) -> Code:
        """A variable, or attributes of one, as the sandbox table allows them."""
        check_attributes(node)
        parts, line, col = node.parts, node.line, node.col
        name, attrs = parts[0], parts[1:]

        def variable(env):
            try:
                return env[name]
            except KeyError:
                raise _undefined(name, env, line, col) from None
        if not attrs:
            return variable
        # Each attribute is read inline when the object is an entity and the
        # attribute one of its statistics (the usual case), or when it is a
        # fixed field of the object's type (dev.maximum); the sandbox
        # decides everything else, errors included.
        if len(attrs) == 1:            # guest.balloon_cur: the most common read of all
            (attr,) = attrs
            fixed = field_types(attr)

            def attribute(env):
                try:
                    obj = env[name]
                except KeyError:
                    raise _undefined(name, env, line, col) from None
                if type(obj) is Entity:
                    try:
                        return obj._stats[attr]
                    except KeyError:
                        pass                        # not a statistic: the sandbox says why
                elif type(obj) in fixed:
                    return getattr(obj, attr)
                return get_attribute(obj, parts, 1, line, col)
            return attribute
        if len(attrs) == 2:            # dev.maximum.total_bytes_sec
            first, second = attrs
            fixed1, fixed2 = field_types(first), field_types(second)

            def attribute2(env):
                try:
                    obj = env[name]
                except KeyError:
                    raise _undefined(name, env, line, col) from None
                if type(obj) in fixed1:
                    obj = getattr(obj, first)
                else:
                    obj = get_attribute(obj, parts, 1, line, col)
                if type(obj) in fixed2:
                    return getattr(obj, second)
                return get_attribute(obj, parts, 2, line, col)
            return attribute2
        chain = [(depth, parts[depth], field_types(parts[depth]))
                 for depth in range(1, len(parts))]

        def attributes(env):
            try:
                obj = env[name]
            except KeyError:
                raise _undefined(name, env, line, col) from None
            for depth, attr, fixed in chain:
                if type(obj) in fixed:
                    obj = getattr(obj, attr)
                else:
                    obj = get_attribute(obj, parts, depth, line, col)
            return obj
        return attributes

    def c_form(self, form: Form) -> Code:
        if not form.items:
            return lambda env: None
        head = form.items[0]
        if not isinstance(head, Symbol):
            return self.error(form, f"cannot call {head.source()}",
                              hint="a call starts with a function name")
        if head.dotted:
            return self.c_method_call(form, head)
        name = head.name
        if name in self.special:
            code = self.special[name](form)
        elif name in BUILTINS:
            builtin = BUILTINS[name]
            code = (self.arity(form, name, builtin.min_args, builtin.max_args)
                    or builtin.build(self.compile_all(form.items[1:]), form))
        else:
            return self.c_user_call(form, name)
        if name in self.shadowed:
            return self.c_shadowable(form, name, code)
        return code

    def c_shadowable(self, form: Form, name: str, static: Code) -> Code:
        """A built-in whose name the policy also binds: a bound callable wins."""
        args = arguments(self.compile_all(form.items[1:]))
        line, col = form.line, form.col

        def shadowable(env):
            fn = env.get(name)
            if fn is not None and callable(fn):
                return _call_python(fn, name, args(env), line, col)
            return static(env)
        return shadowable

    def c_method_call(self, form: Form, head: Symbol) -> Code:
        """``(obj.method args...)``: call a method of a bound object."""
        check_attributes(head)
        name, parts, line, col = head.name, head.parts, form.line, form.col
        target = self.compile(Symbol(".".join(head.parts[:-1]), head.line, head.col))
        codes = self.compile_all(form.items[1:])
        offered = method_table(parts[-1]).get     # type -> function, for this name
        if len(codes) == 1:                       # (dev.setTotalBytesSec v), (e.Stat "f")
            (a,) = codes

            def method_call1(env):
                obj = target(env)
                value = a(env)
                fn = offered(type(obj)) or get_method(obj, parts, line, col)
                try:
                    return fn(obj, value)
                except PolicyError:
                    raise
                except Exception as exc:
                    raise failure(name, (value,), exc, line, col) from exc
            return method_call1
        if len(codes) == 2:                       # (guest.Control "k" v)
            a, b = codes

            def method_call2(env):
                obj = target(env)
                x = a(env)
                y = b(env)
                fn = offered(type(obj)) or get_method(obj, parts, line, col)
                try:
                    return fn(obj, x, y)
                except PolicyError:
                    raise
                except Exception as exc:
                    raise failure(name, (x, y), exc, line, col) from exc
            return method_call2
        args = arguments(codes)

        def method_call(env):
            obj = target(env)
            values = args(env)
            fn = offered(type(obj)) or get_method(obj, parts, line, col)
            try:
                return fn(obj, *values)
            except PolicyError:
                raise
            except Exception as exc:
                raise failure(name, values, exc, line, col) from exc
        return method_call

    def c_user_call(self, form: Form, name: str) -> Code:
        """A call of a ``def`` function (or of a callable bound in scope).

        The function is looked up when the call runs (a policy may define
        it later, or redefine it).  Its body runs in a new scope on top of
        the caller's (dynamic scoping), with the parameters bound.  The
        usual call (a ``def`` function, its name not bound as a variable)
        takes the shortest way, written out for one and two operands; any
        other goes through ``general``.
        """
        count, line, col = len(form.items) - 1, form.line, form.col
        codes = self.compile_all(form.items[1:])

        def general(env, values):
            """The call after its step was counted, whatever ``name`` is bound to."""
            fn = env.get(name)
            if fn is not None and callable(fn):
                return _call_python(fn, name, values, line, col)
            function = env[FUNCS].get(name)
            if function is None:
                raise PolicyError(f"undefined function '{name}'", line, col,
                                  hint=suggest(name, [*env[FUNCS], *BUILTINS, *SPECIAL_FORMS]))
            if function.arity != count:
                raise PolicyError(arity_text(name, function.arity, function.arity, count),
                                  line, col)
            try:
                return function.run(env, *values)
            except RecursionError:
                raise PolicyError(f"too much recursion in '{name}'", line, col) from None

        if count == 1:
            # (f guest), the most common call of all: a variable operand is
            # read here, and a one-parameter function without a frame is
            # run here (as its run would: bind, run the body, put back).
            (a,) = codes
            operand = self.plain_name(form.items[1])
            vline, vcol = form.items[1].line, form.items[1].col

            def call1(env):
                if operand is None:
                    x = a(env)
                else:
                    try:
                        x = env[operand]
                    except KeyError:
                        raise _undefined(operand, env, vline, vcol) from None
                budget = env[BUDGET]
                budget.countdown -= 1
                if budget.countdown < 0:
                    budget.checkpoint(line, col)
                function = env[FUNCS].get(name)
                if function is None or function.arity != 1 or name in env:
                    return general(env, (x,))
                param = function.param
                try:
                    if param is None:
                        return function.run(env, x)
                    old = env.get(param, MISSING)
                    env[param] = x
                    try:
                        return function.body(env)
                    finally:
                        if old is MISSING:
                            env.pop(param, None)
                        else:
                            env[param] = old
                except RecursionError:
                    raise PolicyError(f"too much recursion in '{name}'", line, col) from None
            return call1
        if count == 2:
            a, b = codes

            def call2(env):
                x = a(env)
                y = b(env)
                budget = env[BUDGET]
                budget.countdown -= 1
                if budget.countdown < 0:
                    budget.checkpoint(line, col)
                function = env[FUNCS].get(name)
                if function is None or function.arity != 2 or name in env:
                    return general(env, (x, y))
                try:
                    return function.run(env, x, y)
                except RecursionError:
                    raise PolicyError(f"too much recursion in '{name}'", line, col) from None
            return call2
        args = arguments(codes)

        def call(env):
            values = args(env)
            budget = env[BUDGET]
            budget.countdown -= 1
            if budget.countdown < 0:
                budget.checkpoint(line, col)
            function = env[FUNCS].get(name)
            if function is None or function.arity != count or name in env:
                return general(env, values)
            try:
                return function.run(env, *values)
            except RecursionError:
                raise PolicyError(f"too much recursion in '{name}'", line, col) from None
        return call

    # -- special forms ----------------------------------------------------
    def plain_name(self, node: Node) -> str | None:
        """The name of a plain (undotted) symbol, else None."""
        if isinstance(node, Symbol) and not node.dotted:
            return node.name
        return None

    def c_defvar(self, form: Form) -> Code:
        bad = self.arity(form, "defvar", 2, 2, "name value")
        if bad:
            return bad
        name = self.plain_name(form.items[1])
        if name is None:
            return self.error(form, f"'defvar' needs a plain name, got {form.items[1].source()}")
        value = self.compile(form.items[2])

        def defvar(env):
            v = value(env)
            frame = env[FRAME]
            if frame is None:                      # global scope
                if name in env:
                    return env[name]
            elif name in frame:
                return env[name]
            else:
                frame[name] = env.get(name, MISSING)
            env[name] = v
            return v
        return defvar

    def c_set(self, form: Form) -> Code:
        which = form.items[0].name  # set or setq
        bad = self.arity(form, which, 2, 2, "name value")
        if bad:
            return bad
        target = form.items[1]
        name = self.plain_name(target)
        if name is None:
            what = f"attribute '{target.name}'" if isinstance(target, Symbol) else target.source()
            return self.error(form, f"'{which}' cannot assign to {what}")
        value = self.compile(form.items[2])
        line, col = form.line, form.col

        def set_(env):
            v = value(env)
            if name not in env:
                hint = suggest(name, variables(env)) or "define it with defvar first"
                raise PolicyError(f"'{which}' of undefined variable '{name}'", line, col,
                                  hint=hint)
            env[name] = v
            return v
        return set_

    def c_def(self, form: Form) -> Code:
        which = form.items[0].name
        bad = self.arity(form, which, 3, None, "name (params...) body")
        if bad:
            return bad
        name = self.plain_name(form.items[1])
        params_node = form.items[2]
        if name is None:
            return self.error(form, f"'{which}' needs a function name, "
                                    f"got {form.items[1].source()}")
        if not isinstance(params_node, Form) or params_node.is_block:
            return self.error(form, f"'{which} {name}' needs a parameter list like (a b)")
        params = []
        for p in params_node.items:
            pname = self.plain_name(p)
            if pname is None:
                return self.error(p, f"parameter of '{name}' must be a plain name, "
                                     f"got {p.source()}")
            params.append(pname)
        function = UserFunction(name, tuple(params), self.body(form.items[3:]),
                                form.line, form.col, _has_defvar(form.items[3:]))

        def define(env):
            env[FUNCS][name] = function
            return name
        return define

    def c_let(self, form: Form) -> Code:
        bad = self.arity(form, "let", 1, None, "(bindings...) body")
        if bad:
            return bad
        bindings_node = form.items[1]
        if not isinstance(bindings_node, Form) or bindings_node.is_block:
            return self.error(form, "'let' needs a binding list like ((a 1) (b 2))")
        bindings = []
        for b in bindings_node.items:
            if (not isinstance(b, Form) or b.is_block or len(b.items) != 2
                    or self.plain_name(b.items[0]) is None):
                return self.error(b, "a 'let' binding must look like (name value), "
                                     f"got {b.source()}")
            bindings.append((b.items[0].name, self.compile(b.items[1])))
        body = self.body(form.items[2:])
        if _has_defvar(form.items[1:]):
            def let(env):
                outer = env[FRAME]
                env[FRAME] = frame = {}
                try:
                    for name, value in bindings:     # in order: each sees the ones before
                        v = value(env)
                        if name not in frame:
                            frame[name] = env.get(name, MISSING)
                        env[name] = v
                    return body(env)
                finally:
                    close_frame(env, frame, outer)
            return let
        # Nothing in it can ask for a frame: only put the names back after.
        if len(bindings) == 1:
            ((name, value),) = bindings

            def let1(env):
                v = value(env)
                old = env.get(name, MISSING)
                env[name] = v
                try:
                    return body(env)
                finally:
                    if old is MISSING:
                        env.pop(name, None)
                    else:
                        env[name] = old
            return let1

        def let_n(env):
            saved: dict[str, Any] = {}
            try:
                for name, value in bindings:
                    v = value(env)
                    if name not in saved:
                        saved[name] = env.get(name, MISSING)
                    env[name] = v
                return body(env)
            finally:
                restore(env, saved)
        return let_n

    def c_if(self, form: Form) -> Code:
        bad = self.arity(form, "if", 3, 3, "condition then else")
        if bad:
            return bad
        cond, then, other = form.items[1:]
        # (if (not c) a b) is (if c b a): one closure less.
        if _head(cond) == "not" and len(cond.items) == 2 and "not" not in self.shadowed:
            cond, then, other = cond.items[1], other, then
        symbol = _head(cond)
        if symbol in COMPARISONS and len(cond.items) == 3 and symbol not in self.shadowed:
            return self.c_if_compare(cond, symbol, then, other)
        cond, then, other = self.compile_all([cond, then, other])
        return lambda env: then(env) if cond(env) else other(env)

    def c_if_compare(self, cond: Form, symbol: str, then: Node, other: Node) -> Code:
        """``(if (< x y) a b)``, the comparison done in the same closure:
        exactly what the comparison's own closure does (builtins)."""
        op, line, col = COMPARISONS[symbol], cond.line, cond.col
        a, b, then, other = self.compile_all([cond.items[1], cond.items[2], then, other])

        def if_compare(env):
            x = a(env)
            y = b(env)
            try:
                if type(x) is list and type(y) is list:
                    test = compare_lists(op, x, y, env[BUDGET], line, col)
                else:
                    test = op(x, y)
            except PolicyError:
                raise
            except Exception as exc:
                raise failure(symbol, (x, y), exc, line, col) from exc
            return then(env) if test else other(env)
        return if_compare

    def c_with(self, form: Form) -> Code:
        bad = self.arity(form, "with", 3, None, "list item body")
        if bad:
            return bad
        item = self.plain_name(form.items[2])
        if item is None:
            return self.error(form, "'with' needs a plain item name, "
                                    f"got {form.items[2].source()}")
        sequence = self.compile(form.items[1])
        body = self.body(form.items[3:])
        described, line, col = form.items[1].source(), form.line, form.col
        needs_frame = _has_defvar(form.items[3:])

        def with_(env):
            seq = sequence(env)
            if type(seq) is not list and type(seq) is not str:
                raise PolicyError(f"'with' needs a list, but {described} is {kind_of(seq)}",
                                  line, col)
            budget = env[BUDGET]
            outer = env[FRAME]
            old = env.get(item, MISSING)
            results = []
            frame = {item: old}
            try:
                for element in seq:
                    budget.countdown -= 1
                    if budget.countdown < 0:
                        budget.checkpoint(line, col)
                    if needs_frame:
                        env[FRAME] = frame = {item: old}      # a new scope for each element
                    env[item] = element
                    results.append(body(env))
                    if needs_frame:
                        close_frame(env, frame, outer)
            finally:
                close_frame(env, frame, outer)
            return results
        return with_
