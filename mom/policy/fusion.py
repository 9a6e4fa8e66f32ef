"""Fused closures: one closure for a call together with its simple operands.

Most operands in real policies are constants, variables (``guest``) or one
attribute of a variable (``guest.balloon_cur``).  Calling a separate closure
for each of them would cost more than the reads themselves, so a call whose
operands are like that is compiled into a single closure that reads them
inline.  The closure is made from a small Python template, specialised for
the kinds of its operands; each distinct shape is generated once per
process and cached, so compiling a policy only looks the shape up.

A template is the body of ``def node(env):`` in which ``$0``, ``$1``, ...
stand for the operands' values.  Any other name it uses is passed in as a
keyword of :func:`specialize`.
"""
from __future__ import annotations

import keyword
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from mom.policy.errors import PolicyError
from mom.policy.reader import Literal, Node, Symbol
from mom.policy.runtime import Code, failure, suggest, variables


class Operand(NamedTuple):
    """An argument of a call, classified for inlining."""
    kind: str             # "const", "var", "attr" (name.attr) or "code"
    value: Any            # the constant, the variable name, or the closure
    attr: str | None      # the attribute name for "attr"
    node: Node

    @property
    def is_leaf(self) -> bool:
        return self.kind != "code"


#: Read simple operands inline.  Only tests turn this off, to check that
#: fused and unfused closures give the same results.
INLINE = True


def operand(node: Node, compile_node: Callable[[Node], Code]) -> Operand:
    if not INLINE:
        return Operand("code", compile_node(node), None, node)
    if isinstance(node, Literal):
        return Operand("const", node.value, None, node)
    if isinstance(node, Symbol):
        if not node.dotted:
            return Operand("var", node.name, None, node)
        if len(node.parts) == 2:
            return Operand("attr", node.parts[0], node.parts[1], node)
    return Operand("code", compile_node(node), None, node)


def is_identifier(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


_PLACEHOLDER = re.compile(r"\$(\d+)")
_EXPRESSIONS = {
    "const": "_o{i}",
    "var": "env[_o{i}]",
    "attr": "getattr(env[_o{i}], _a{i}, None)",
    "code": "_o{i}(env)",
}
_FACTORIES: dict[tuple[str, tuple[str, ...], tuple[str, ...]], Callable[..., Code]] = {}
#: Real policy sets need well under a hundred shapes; the bound only keeps
#: a stream of odd method names from growing the cache for ever.
_MAX_FACTORIES = 4096


def _factory(template: str, kinds: tuple[str, ...], extra: tuple[str, ...]) -> Callable[..., Code]:
    key = (template, kinds, extra)
    factory = _FACTORIES.get(key)
    if factory is not None:
        return factory
    body = _PLACEHOLDER.sub(lambda m: _EXPRESSIONS[kinds[int(m.group(1))]].format(i=m.group(1)),
                            template)
    body = "\n".join("        " + line for line in body.strip("\n").splitlines())
    if any(k in ("var", "attr") for k in kinds):
        # A variable read that fails is an undefined symbol.
        body = ("        try:\n"
                + "\n".join("    " + line for line in body.splitlines())
                + "\n        except KeyError as _exc:\n"
                  "            raise _undefined(env, _exc) from None")
    params = [f"_o{i}, _a{i}" for i in range(len(kinds))] + list(extra) + ["_undefined"]
    source = (f"def _factory({', '.join(params)}):\n"
              f"    def node(env):\n{body}\n"
              f"    return node\n")
    namespace: dict[str, Any] = {}
    exec(compile(source, "<policy fusion>", "exec"), namespace)  # noqa: S102 - our own template
    if len(_FACTORIES) >= _MAX_FACTORIES:
        _FACTORIES.clear()
    factory = _FACTORIES[key] = namespace["_factory"]
    return factory


def specialize(template: str, operands: list[Operand], node: Node, **extra: Any) -> Code:
    """The closure for ``template`` with ``operands`` read inline."""
    names = tuple(sorted(extra))
    factory = _factory(template, tuple(o.kind for o in operands), names)
    args: list[Any] = []
    for o in operands:
        args += [o.value, o.attr]
    args += [extra[n] for n in names]
    leaves = [o for o in operands if o.kind in ("var", "attr")]

    def undefined(env: dict[str, Any], exc: KeyError) -> PolicyError:
        missing = exc.args[0] if exc.args else None
        for leaf in leaves:
            if leaf.value == missing and missing not in env:
                return PolicyError(f"undefined symbol '{missing}'", leaf.node.line,
                                   leaf.node.col, hint=suggest(missing, variables(env)))
        return failure(node.source(), (), exc, node.line, node.col)
    return factory(*args, undefined)
