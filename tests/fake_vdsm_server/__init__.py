"""A fake VDSM on a real socket, for testing MOM's process-mode back-ends.

``FakeVdsmServer(state, pki=..., port=0)`` serves VDSM's JSON-RPC over
STOMP and its XML-RPC on one port, with mutual TLS (``pki`` from
:func:`make_pki`) or plain TCP.  Its state is a ``FakeVdsm`` from
``tests/fake_vdsm/fakevdsm.py`` (VMs with schema-shaped VmStats, KSM
settings, calls per verb, injected failures), the same object thread-mode
tests hand to ``VdsmHypervisor``, so both modes can be run on one scene.
"""
from __future__ import annotations

import os
import sys
from typing import Any

_FAKE_VDSM_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                              "fake_vdsm")
if _FAKE_VDSM_DIR not in sys.path:
    sys.path.insert(0, _FAKE_VDSM_DIR)

import fakevdsm  # noqa: E402

from .certs import Pki, make_pki  # noqa: E402
from .server import Call, FakeVdsmServer  # noqa: E402


def new_state() -> Any:
    """An empty ``fakevdsm.FakeVdsm``."""
    return fakevdsm.FakeVdsm()


__all__ = ["Call", "FakeVdsmServer", "Pki", "fakevdsm", "make_pki", "new_state"]
