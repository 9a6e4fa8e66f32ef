"""Fake of VDSM's ``API`` module: forwards to ``fakevdsm.current()``.

Put this directory on ``sys.path`` and ``import API``, as VDSM's own
directory is on ``sys.path`` when MOM runs inside VDSM.
"""
from __future__ import annotations

from typing import Any

import fakevdsm


def Global() -> Any:
    return fakevdsm.current().api.Global()


def VM(vm_id: str) -> Any:
    return fakevdsm.current().api.VM(vm_id)
