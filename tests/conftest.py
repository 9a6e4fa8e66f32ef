"""Fixtures shared by the tests that talk to the fake VDSM over a socket."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fake_vdsm_server import FakeVdsmServer, make_pki
from fake_vdsm_server.helpers import Clock


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A CA with VDSM's server and client certificates (made once a run)."""
    return make_pki(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture
def server(pki: Any) -> Iterator[FakeVdsmServer]:
    """The fake VDSM on a loopback port, mutual TLS (an event every 3rd request)."""
    srv = FakeVdsmServer(pki=pki).start()
    yield srv
    srv.stop()


@pytest.fixture
def clock() -> Clock:
    """A monotonic clock the test moves by hand."""
    return Clock()
