"""The MOM policy language: read once, compile to closures, evaluate often.

Public names (other parts of MOM and outside tools rely on them):

- ``PolicyError``: every syntax and evaluation error; carries ``line``,
  ``column`` and ``policy``.
- ``compile_policy(text, name)``: a ``Program`` that runs many times.
- ``Evaluator``: a global scope for running texts (tests, tools, REPL).
- ``PolicySet``: the named policies the engine evaluates each cycle.
- ``dry_run(policies, host, guests)``: the controls a set would choose.

The language itself is described in docs/policy-language.md.
"""
from mom.policy.compiler import Program, compile_policy
from mom.policy.dry_run import dry_run
from mom.policy.errors import PolicyError
from mom.policy.evaluator import Evaluator
from mom.policy.policy_set import DEFAULT_POLICY_NAME, PolicySet

__all__ = ["DEFAULT_POLICY_NAME", "Evaluator", "PolicyError", "PolicySet", "Program",
           "compile_policy", "dry_run"]
