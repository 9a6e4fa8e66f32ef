"""Evaluator: one global scope that runs policy texts (tests, tools, the REPL)."""
from __future__ import annotations

import re
from typing import Any

from mom.policy.compiler import Program, compile_policy
from mom.policy.errors import PolicyError
from mom.policy.runtime import FRAME, FUNCS, new_env, variables

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*\Z")


class Evaluator:
    """A global scope with the built-ins; state persists across ``run`` calls.

    The engine does not use this class for its cycles (it uses a PolicySet,
    which starts each cycle from a fresh scope); it exists for tests, the
    ``mom-policy`` tool and anyone embedding the language.
    """

    def __init__(self, name: str | None = None) -> None:
        self.name = name
        self._env = new_env()

    def bind(self, name: str, value: Any) -> None:
        """Make a Python object (an entity, a list, a function) visible as ``name``."""
        if not isinstance(name, str) or not _NAME.match(name) or name == "nil":
            raise ValueError(f"not a policy variable name: {name!r}")
        self._env[name] = value

    def run(self, text: str, name: str | None = None) -> list[Any]:
        """Read, compile and evaluate ``text``; the values of its top-level expressions."""
        return self.execute(compile_policy(text, name or self.name, bound=variables(self._env)))

    def execute(self, program: Program) -> list[Any]:
        """Evaluate an already compiled program in this scope."""
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
