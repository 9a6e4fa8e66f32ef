"""Test helpers around the fake: a hand-moved clock, MOM's Endpoint for a
server, and the back-ends' log lines."""
from __future__ import annotations

import logging
from typing import Any

from mom.hypervisor.vdsm_link import Endpoint

from .server import FakeVdsmServer


class Clock:
    """An injectable monotonic clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def endpoint(server: FakeVdsmServer, **changes: Any) -> Endpoint:
    """How MOM reaches ``server`` (its PKI's client files when TLS is on)."""
    pki = server.pki
    fields: dict[str, Any] = {"host": server.host, "port": server.port,
                              "tls": pki is not None, "timeout": 5.0}
    if pki is not None:
        fields.update(key_file=pki.client_key, cert_file=pki.client_cert,
                      ca_file=pki.ca_cert)
    fields.update(changes)
    return Endpoint(**fields)


def log_lines(records: list[logging.LogRecord], level: int) -> list[str]:
    """Messages the hypervisor back-ends logged at exactly ``level``
    (WARNING: WARNING and above)."""
    return [r.getMessage() for r in records if r.name.startswith("mom.hypervisor")
            and (r.levelno >= level if level >= logging.WARNING else r.levelno == level)]
