"""Fake of VDSM's ``supervdsm`` module: forwards to ``fakevdsm.current()``."""
from __future__ import annotations

from typing import Any

import fakevdsm


def getProxy() -> Any:
    return fakevdsm.current().supervdsm.getProxy()
