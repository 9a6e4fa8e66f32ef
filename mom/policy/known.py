"""The statistic names MOM declares for the host and for guests.

Policies are checked against these outside a running MOM: ``mom-policy
check --strict`` warns about other entity attributes, and ``dry_run`` (and
``mom-policy eval``) declares them on the entities it builds, as a MOM
with every built-in collector would.  :func:`known_fields` is the one place
that knows where the names come from.
"""
from __future__ import annotations

from functools import cache


@cache
def known_fields(kind: str) -> frozenset[str]:
    """Every field a built-in collector of ``kind`` ("host" or "guest") declares."""
    from mom.collectors import BUILTIN_COLLECTORS   # imported late: heavier than the language
    return frozenset().union(*(cls.fields for cls in BUILTIN_COLLECTORS.values()
                               if getattr(cls, "kind", None) == kind))
