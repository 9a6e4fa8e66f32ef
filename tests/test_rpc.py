"""MOM's RPC server over real sockets: unix socket and loopback TCP."""
import os
import socket
import xmlrpc.client

import pytest

from mom import rpc


class Target:
    """Stands in for a MOM object: the exported methods, recording calls."""

    def __init__(self):
        self.policies = {}

    def ping(self):
        return True

    def getStatistics(self):
        return {"host": self.getHostStatistics(),
                "guests": {"vm1": {"balloon_cur": 3 * 2 ** 31}}}

    def getHostStatistics(self):
        return {"mem_available": 64 * 2 ** 30, "ksm_run": 1, "x": None}

    def getActiveGuests(self):
        return ["vm1"]

    def setPolicy(self, text):
        return self.setNamedPolicy("50_main_", text)

    def setNamedPolicy(self, name, text):
        if text is None:
            self.policies.pop(name, None)
        else:
            self.policies[name] = text
        return True

    def getPolicy(self):
        return "".join(self.policies[k] for k in sorted(self.policies))

    def getNamedPolicies(self):
        return dict(self.policies)

    def resetPolicies(self):
        self.policies.clear()
        return True

    def setVerbosity(self, level):
        raise ValueError("bad level")


@pytest.fixture
def unix_server(tmp_path):
    path = str(tmp_path / "mom.sock")
    server = rpc.RpcServer(Target(), path)
    server.start()
    yield path
    server.stop()


def test_unix_socket_round_trip_with_big_numbers_and_none(unix_server):
    client = rpc.connect(unix_server)
    assert client.ping() is True
    stats = client.getStatistics()
    assert stats["host"]["mem_available"] == 64 * 2 ** 30
    assert stats["host"]["x"] is None
    assert stats["guests"]["vm1"]["balloon_cur"] == 3 * 2 ** 31
    assert client.getActiveGuests() == ["vm1"]
    assert client.getHostStatistics() == stats["host"]


def test_policy_calls_over_rpc(unix_server):
    client = rpc.connect(unix_server)
    assert client.setNamedPolicy("10_a", "(+ 1 1)") is True
    assert client.setPolicy("(+ 2 2)") is True
    assert client.getNamedPolicies() == {"10_a": "(+ 1 1)", "50_main_": "(+ 2 2)"}
    assert client.getPolicy() == "(+ 1 1)(+ 2 2)"
    assert client.setNamedPolicy("10_a", None) is True
    assert client.getNamedPolicies() == {"50_main_": "(+ 2 2)"}


def test_an_exception_becomes_a_fault_and_the_server_goes_on(unix_server):
    client = rpc.connect(unix_server)
    with pytest.raises(xmlrpc.client.Fault, match="bad level"):
        client.setVerbosity("x")
    assert client.ping() is True


def test_socket_file_removed_on_stop(tmp_path):
    path = str(tmp_path / "mom.sock")
    server = rpc.RpcServer(Target(), path)
    server.start()
    assert os.path.exists(path)
    server.stop()
    assert not os.path.exists(path)


def test_stale_socket_file_is_replaced(tmp_path):
    path = str(tmp_path / "mom.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()           # the file stays, nobody listens: a crashed MOM's leftover
    server = rpc.RpcServer(Target(), path)
    server.start()
    try:
        assert rpc.connect(path).ping() is True
    finally:
        server.stop()


def test_loopback_tcp():
    server = rpc.RpcServer(Target(), 0)
    host, port = server.server_address
    server.start()
    try:
        assert host == "127.0.0.1"
        assert rpc.connect(port).getActiveGuests() == ["vm1"]
    finally:
        server.stop()
