"""PolicyError: the one exception the policy language lets out.

Policy authors read these messages in logs and in ``mom-policy check``, so an
error always says what was wrong and where: the policy's name (when known),
the 1-based line and column in that policy's text, and a plain reason.
"""
from __future__ import annotations


class PolicyError(Exception):
    """A syntax or evaluation error in a policy.

    ``reason`` is the bare explanation; ``str(error)`` adds the place:
    ``"02-balloon: undefined symbol 'x' at line 3 col 10"``.  ``policy`` is
    filled in by whoever knows the name (a policy set, ``compile_policy``)
    and may be set after the error was raised.
    """

    def __init__(self, reason: str, line: int | None = None,
                 column: int | None = None, policy: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line
        self.column = column
        self.policy = policy
        self.hint = hint

    def __str__(self) -> str:
        text = self.reason
        if self.line is not None:
            text += f" at line {self.line}"
            if self.column is not None:
                text += f" col {self.column}"
        if self.hint:
            text += f" ({self.hint})"
        if self.policy:
            text = f"{self.policy}: {text}"
        return text

    def __reduce__(self):  # keep the fields when pickled (multiprocessing, RPC)
        return (type(self), (self.reason, self.line, self.column, self.policy, self.hint))
