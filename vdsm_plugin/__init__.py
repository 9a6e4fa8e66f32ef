"""VDSM's side of MOM: the front object VDSM holds and the files it ships.

``create_mom(vdsm_config)`` (see :mod:`vdsm_plugin.momif`) returns the
front object for the mode vdsm.conf's ``[mom] mode`` names.  The shipped
files live in this package: ``mom-thread.conf`` and ``mom-process.conf``
(VDSM's mom.conf for each mode), ``mom.d/*.policy`` (the stock policies),
``mom-vdsm.service`` (the process-mode systemd unit) and, beside it,
``momd.service`` (standalone MOM's unit); :func:`data_path` finds them for
packaging scripts and tests.
"""
from __future__ import annotations

import os

from vdsm_plugin.momif import (
    MomFront, PolicyParameterError, ProcessMomFront, ThreadMomFront, create_mom)

THREAD_CONF = "mom-thread.conf"
PROCESS_CONF = "mom-process.conf"
POLICY_DIR = "mom.d"
SERVICE_UNIT = "mom-vdsm.service"
STANDALONE_UNIT = "momd.service"


def data_path(name: str = "") -> str:
    """Path of a file shipped in this package (``''``: the package directory)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), name)


__all__ = ["MomFront", "PolicyParameterError", "ProcessMomFront", "ThreadMomFront",
           "create_mom", "data_path", "THREAD_CONF", "PROCESS_CONF", "POLICY_DIR",
           "SERVICE_UNIT", "STANDALONE_UNIT"]
