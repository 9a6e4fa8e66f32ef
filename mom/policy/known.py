"""The statistic names MOM declares for the host and for guests
(:mod:`mom.facts`, which the built-in collectors take theirs from).

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
    """Every statistic MOM declares for ``kind`` ("host" or "guest")."""
    from mom import facts
    return facts.fields(kind)
