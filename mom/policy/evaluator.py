"""Evaluator: one global scope that runs policy texts (tests, tools, the REPL)."""
from __future__ import annotations

import re
import types
from typing import Any

from mom.policy.budget import DEFAULT_MAX_SECONDS, DEFAULT_MAX_STEPS, Budget, check_limits
from mom.policy.compiler import Program, compile_policy
from mom.policy.errors import PolicyError
from mom.policy.runtime import BUDGET, FRAME, FUNCS, new_env, variables
from mom.policy.sandbox import is_policy_value

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*\Z")


class Evaluator:
    """A global scope with the built-ins; state persists across ``run`` calls.

    The engine does not use this class for its cycles (it uses a PolicySet,
    which starts each cycle from a fresh scope); it exists for tests, the
    ``mom-policy`` tool and anyone embedding the language.  Each ``run``
    or ``execute`` is one evaluation with its own budget of ``max_steps``
    steps and ``max_seconds`` seconds.
    """

    def __init__(self, name: str | None = None, *, max_steps: int = DEFAULT_MAX_STEPS,
                 max_seconds: float = DEFAULT_MAX_SECONDS) -> None:
        self.name = name
        self.max_steps, self.max_seconds = check_limits(max_steps, max_seconds)
        self._env = new_env()

    def bind(self, name: str, value: Any) -> None:
        """Make a value visible to policies as ``name``.

        ``value`` must be something a policy could hold (a number, string,
        nil, a list of such values, an entity, an I/O device), or a Python
        function: the caller trusts it; a policy can call it, not look
        inside it.  Anything else is a ValueError.
        """
        if not isinstance(name, str) or not _NAME.match(name) or name == "nil":
            raise ValueError(f"not a policy variable name: {name!r}")
        if not (is_policy_value(value)
                or isinstance(value, (types.FunctionType, types.BuiltinFunctionType))):
            raise ValueError(f"a policy cannot use a {type(value).__name__} (bound as {name})")
        self._env[name] = value

    def run(self, text: str, name: str | None = None) -> list[Any]:
        """Read, compile and evaluate ``text``; the values of its top-level expressions."""
        return self.execute(compile_policy(text, name or self.name, bound=variables(self._env)))

    def execute(self, program: Program) -> list[Any]:
        """Evaluate an already compiled program in this scope."""
        self._env[BUDGET] = Budget(self.max_steps, self.max_seconds)
        try:
            return program.run(self._env)
        except PolicyError:
            # Scopes close themselves on errors; only when Python's stack ran
            # out can one stay open.  Go back to the global scope regardless.
            self._env[FRAME] = None
            raise

    def get(self, name: str, default: Any = None) -> Any:
        """The current global value of a variable."""
        return self._env.get(name, default) if _NAME.match(name) else default

    @property
    def variables(self) -> dict[str, Any]:
        return {k: self._env[k] for k in variables(self._env)}

    @property
    def functions(self) -> list[str]:
        return sorted(self._env[FUNCS])
