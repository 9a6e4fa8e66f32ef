"""MOM's RPC server as VDSM's only way in: who may connect, what a misbehaving
client can do to the others, what a bad call can do to MOM (nothing)."""
from __future__ import annotations

import http.client
import os
import socket
import stat
import threading
import time
import xmlrpc.client

import pytest

from mom import rpc
from mom.rpc_api import EXPORTED, FAULT_BAD_PARAMS, FAULT_NO_METHOD, FAULT_PARSE


class Target:
    """The exported methods of a MOM, recording every call that reaches it."""

    def __init__(self) -> None:
        self.policies: dict[str, str] = {"00-base": "(defvar x 1)"}
        self.calls: list[tuple] = []

    def ping(self):
        return True

    def getStatistics(self):
        return {"host": self.getHostStatistics(), "guests": {}}

    def getHostStatistics(self):
        return {"mem_available": 2 ** 36, "ksm_run": 1}

    def getActiveGuests(self):
        return []

    def setPolicy(self, text):
        self.calls.append(("setPolicy", text))
        return self.setNamedPolicy("50_main_", text)

    def setNamedPolicy(self, name, text):
        self.calls.append(("setNamedPolicy", name, text))
        if text is None:
            self.policies.pop(name, None)
        else:
            self.policies[name] = text
        return True

    def getPolicy(self):
        return "\n".join(self.policies[k] for k in sorted(self.policies))

    def getNamedPolicies(self):
        return dict(self.policies)

    def resetPolicies(self):
        self.calls.append(("resetPolicies",))
        return True

    def setVerbosity(self, level):
        self.calls.append(("setVerbosity", level))
        return True


@pytest.fixture
def served(tmp_path):
    """(target, socket path, server), serving."""
    target = Target()
    path = str(tmp_path / "mom.sock")
    server = rpc.RpcServer(target, path)
    server.start()
    yield target, path, server
    server.stop()


def raw_connect(path: str, timeout: float = 5.0) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(path)
    return sock


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=5)
        self._path = path

    def connect(self) -> None:
        self.sock = raw_connect(self._path)


def post(path: str, url: str, body: bytes, method: str = "POST",
         headers: dict | None = None) -> tuple[int, bytes]:
    conn = UnixHTTPConnection(path)
    try:
        conn.request(method, url, body=body, headers=headers or {})
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


# -- the socket file ----------------------------------------------------------

@pytest.fixture
def umask_000():
    old = os.umask(0)
    yield
    os.umask(old)


def test_socket_is_0600_even_under_umask_000(tmp_path, umask_000):
    path = str(tmp_path / "mom.sock")
    server = rpc.RpcServer(Target(), path)
    try:
        mode = os.lstat(path).st_mode
        assert stat.S_ISSOCK(mode)
        assert stat.S_IMODE(mode) == 0o600
        assert os.listdir(tmp_path) == ["mom.sock"]       # no private dir left behind
    finally:
        server.stop()


def test_socket_with_a_group_is_0660_and_that_groups(tmp_path, umask_000):
    path = str(tmp_path / "mom.sock")
    gid = os.getgroups()[-1] if os.getgroups() else os.getgid()
    server = rpc.RpcServer(Target(), path, socket_group=gid)
    try:
        st = os.lstat(path)
        assert stat.S_IMODE(st.st_mode) == 0o660
        assert st.st_gid == gid
    finally:
        server.stop()


def test_unknown_socket_group_is_a_bind_error_and_creates_nothing(tmp_path):
    path = str(tmp_path / "mom.sock")
    with pytest.raises(rpc.RpcBindError, match="no-such-group-here"):
        rpc.RpcServer(Target(), path, socket_group="no-such-group-here")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("kind", ["file", "directory", "symlink"])
def test_a_non_socket_at_the_path_is_refused_and_left_untouched(tmp_path, kind):
    path = tmp_path / "mom.sock"
    if kind == "file":
        path.write_text("precious\n")
    elif kind == "directory":
        path.mkdir()
    else:
        path.symlink_to(tmp_path / "elsewhere")
    before = os.lstat(path)
    with pytest.raises(rpc.RpcBindError, match="not a socket"):
        rpc.RpcServer(Target(), str(path))
    after = os.lstat(path)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    if kind == "file":
        assert path.read_text() == "precious\n"
    assert sorted(os.listdir(tmp_path)) == ["mom.sock"]


def test_a_stale_socket_is_replaced(tmp_path, umask_000):
    path = str(tmp_path / "mom.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)            # left by a MOM that was killed: nobody listens
    stale.close()
    server = rpc.RpcServer(Target(), path)
    server.start()
    try:
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
        assert rpc.connect(path).ping() is True
    finally:
        server.stop()
    assert not os.path.exists(path)


def test_a_live_socket_is_refused_and_keeps_serving(served):
    _, path, _ = served
    with pytest.raises(rpc.RpcBindError, match="another process"):
        rpc.RpcServer(Target(), path)
    assert rpc.connect(path).ping() is True


def test_a_missing_directory_is_a_bind_error(tmp_path):
    with pytest.raises(rpc.RpcBindError, match="does not exist"):
        rpc.RpcServer(Target(), str(tmp_path / "no" / "mom.sock"))


def test_a_tcp_port_in_use_is_a_bind_error():
    first = rpc.RpcServer(Target(), 0)
    try:
        port = first.server_address[1]
        with pytest.raises(rpc.RpcBindError, match=f"127.0.0.1:{port}"):
            rpc.RpcServer(Target(), port)
    finally:
        first.stop()


def test_stop_removes_only_its_own_socket(tmp_path):
    path = str(tmp_path / "mom.sock")
    server = rpc.RpcServer(Target(), path)
    os.unlink(path)
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    other.bind(path)             # someone else's socket at the path now
    try:
        server.stop()
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
    finally:
        other.close()


# -- misbehaving clients ------------------------------------------------------

def test_idle_clients_do_not_block_other_calls(served):
    _, path, _ = served
    idle = [raw_connect(path) for _ in range(3 * rpc.DEFAULT_WORKERS)]
    try:
        client = rpc.connect(path, timeout=1.0)     # a blocked call would time out
        for _ in range(3):
            assert client.ping() is True
    finally:
        for sock in idle:
            sock.close()


def test_an_idle_client_is_disconnected_after_the_read_timeout(tmp_path):
    path = str(tmp_path / "mom.sock")
    server = rpc.RpcServer(Target(), path, read_timeout=0.2)
    server.start()
    try:
        idle = raw_connect(path, timeout=5)
        assert idle.recv(100) == b""               # closed by the server
        idle.close()
        partial = raw_connect(path, timeout=5)
        partial.sendall(b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n<?xml")
        assert partial.recv(100) == b""            # request never completed: closed
        partial.close()
        assert rpc.connect(path).ping() is True
    finally:
        server.stop()


def test_an_oversized_request_is_refused_and_changes_nothing(served):
    target, path, _ = served
    client = rpc.connect(path)
    with pytest.raises(xmlrpc.client.ProtocolError) as info:
        client.setNamedPolicy("big", "1" * (rpc.MAX_REQUEST_BYTES + 1))
    assert info.value.errcode == 413
    assert target.calls == []
    assert client.getNamedPolicies() == {"00-base": "(defvar x 1)"}


def test_a_one_mib_policy_fits(served):
    target, path, _ = served
    stock = "(if (< Host.mem_free 1000) (set x (> 1 0)) 0) ; free & used\n"
    text = stock * (2 ** 20 // len(stock))
    assert rpc.connect(path).setNamedPolicy("big", text) is True
    assert target.policies["big"] == text


# -- bad calls ----------------------------------------------------------------

@pytest.mark.parametrize("method, args", [
    ("setNamedPolicy", (None, "1")),
    ("setNamedPolicy", ("a", 5)),
    ("setNamedPolicy", ("a", b"bytes")),
    ("setNamedPolicy", ("", "1")),
    ("setNamedPolicy", ("a\nb", "1")),
    ("setNamedPolicy", ("a",)),
    ("setNamedPolicy", ("a", "1", "2")),
    ("setPolicy", ([1],)),
    ("setVerbosity", (True,)),
    ("setVerbosity", (1.5,)),
    ("resetPolicies", (1,)),
])
def test_a_call_with_wrong_arguments_is_a_fault_and_changes_nothing(served, method, args):
    target, path, _ = served
    client = rpc.connect(path)
    with pytest.raises(xmlrpc.client.Fault) as info:
        getattr(client, method)(*args)
    assert info.value.faultCode == FAULT_BAD_PARAMS
    assert method in info.value.faultString
    assert target.calls == []
    # and policy management still works
    assert client.setNamedPolicy("10-a", "(defvar a 1)") is True
    assert client.getNamedPolicies() == {"00-base": "(defvar x 1)", "10-a": "(defvar a 1)"}


def test_valid_nil_and_int_arguments_pass(served):
    target, path, _ = served
    client = rpc.connect(path)
    assert client.setNamedPolicy("00-base", None) is True
    assert client.setVerbosity(4) is True
    assert target.calls == [("setNamedPolicy", "00-base", None), ("setVerbosity", 4)]


def test_an_unknown_method_is_a_fault(served):
    target, path, _ = served
    with pytest.raises(xmlrpc.client.Fault) as info:
        rpc.connect(path).shutdown()
    assert info.value.faultCode == FAULT_NO_METHOD
    assert target.calls == []


def test_a_body_that_is_not_xml_rpc_is_a_fault(served):
    _, path, _ = served
    status, body = post(path, "/", b"<methodCall><methodName>ping")
    assert status == 200
    with pytest.raises(xmlrpc.client.Fault) as info:
        xmlrpc.client.loads(body)
    assert info.value.faultCode == FAULT_PARSE


@pytest.mark.parametrize("method, url, headers, status", [
    ("POST", "/wrong", {}, 404),
    ("POST", "/RPC2/x", {}, 404),
    ("GET", "/", {}, 405),
    ("GET", "/RPC2", {"Content-Length": "3"}, 405),
])
def test_http_errors(served, method, url, headers, status):
    _, path, _ = served
    request = xmlrpc.client.dumps((), "ping").encode()
    body = request if method == "POST" else b"abc"[:int(headers.get("Content-Length", 0))]
    got, _ = post(path, url, body or None, method, headers)
    assert got == status


def test_rpc2_path_is_served(served):
    _, path, _ = served
    status, body = post(path, "/RPC2", xmlrpc.client.dumps((), "ping").encode())
    assert status == 200
    assert xmlrpc.client.loads(body)[0] == (True,)


def test_a_request_without_length_gets_411(served):
    _, path, _ = served
    sock = raw_connect(path)
    try:
        sock.sendall(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 411 ")
    finally:
        sock.close()


def test_parse_head():
    head = rpc.parse_head(b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: 12")
    assert (head.method, head.path, head.headers["content-length"]) == ("POST", "/RPC2", "12")
    for bad in (b"POST /", b"POST / FTP/1.0", b"POST / HTTP/1.1\r\nno colon",
                b"POST / HTTP/1.1\r\n folded: x",
                b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2"):
        with pytest.raises(rpc._HttpError) as info:
            rpc.parse_head(bad)
        assert info.value.status == 400


# -- introspection ------------------------------------------------------------

def test_introspection_lists_and_describes_the_api(served):
    _, path, _ = served
    client = rpc.connect(path)
    methods = client.system.listMethods()
    assert set(methods) == {*EXPORTED, "system.listMethods", "system.methodHelp",
                            "system.methodSignature"}
    assert set(EXPORTED) == {"ping", "getStatistics", "getHostStatistics",
                             "getActiveGuests", "setPolicy",
                             "setNamedPolicy", "getPolicy", "getNamedPolicies",
                             "resetPolicies", "setVerbosity"}
    help_text = client.system.methodHelp("setNamedPolicy")
    assert help_text.startswith("setNamedPolicy(name: string, text: string|nil) -> boolean")
    assert client.system.methodSignature("setNamedPolicy") == [
        ["boolean", "string", "string"], ["boolean", "string", "nil"]]
    with pytest.raises(xmlrpc.client.Fault):
        client.system.methodHelp("nope")


# -- load and readiness -------------------------------------------------------

def rpc_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("RPC"))


def test_fifty_concurrent_clients_all_answered_with_a_fixed_thread_count(served):
    _, path, _ = served
    expected = ["RPCServer", *(f"RPCWorker-{i}" for i in range(rpc.DEFAULT_WORKERS))]
    assert rpc_threads() == expected
    stop = time.monotonic() + 1.0
    counts: list[int] = []
    failures: list[BaseException] = []
    seen: list[list[str]] = []

    def client() -> None:
        proxy = rpc.connect(path, timeout=10)
        done = 0
        try:
            while time.monotonic() < stop:
                assert proxy.getStatistics()["host"]["mem_available"] == 2 ** 36
                done += 1
                if done % 5 == 0:
                    seen.append(rpc_threads())
        except BaseException as err:        # reported below
            failures.append(err)
        counts.append(done)

    clients = [threading.Thread(target=client) for _ in range(50)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join(30)
    assert failures == []
    assert len(counts) == 50 and all(n > 0 for n in counts)
    assert seen and all(names == expected for names in seen)
    assert rpc_threads() == expected


def test_calls_wait_until_ready_but_bind_errors_come_first(tmp_path):
    path = str(tmp_path / "mom.sock")
    ready = threading.Event()
    server = rpc.RpcServer(Target(), path, ready=ready.wait)
    server.start()
    try:
        with pytest.raises(rpc.RpcBindError):       # bound already, before ready
            rpc.RpcServer(Target(), path)
        results: list = []
        caller = threading.Thread(target=lambda: results.append(rpc.connect(path).ping()))
        caller.start()
        caller.join(0.5)
        assert caller.is_alive() and results == []      # held, not refused
        ready.set()
        caller.join(5)
        assert results == [True]
    finally:
        server.stop()


def test_stop_before_ready_is_prompt_and_removes_the_socket(tmp_path):
    path = str(tmp_path / "mom.sock")
    server = rpc.RpcServer(Target(), path, ready=lambda timeout: time.sleep(timeout))
    server.start()
    waiting = raw_connect(path)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2
    assert server.threads() == []
    assert not os.path.exists(path)
    waiting.close()


def test_the_vdsm_front_object_talks_to_the_server(served):
    from vdsm_plugin import momif

    target, path, _ = served
    front = momif.ProcessMomFront(path)
    assert front.getStatus() == "active"
    assert front.setPolicyParameters({"balloonEnabled": True}) is True
    assert target.policies["01-parameters"] == "(set balloonEnabled True)\n"
    front.stop()


def test_expect_100_continue(served):
    _, path, _ = served
    body = xmlrpc.client.dumps((), "ping").encode()
    sock = raw_connect(path)
    try:
        sock.sendall(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body))
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 200 ") and b"<boolean>1</boolean>" in reply
    finally:
        sock.close()


def test_an_oversized_request_waiting_for_100_continue_is_refused_at_once(tmp_path):
    path = str(tmp_path / "mom.sock")
    server = rpc.RpcServer(Target(), path, workers=1)
    server.start()
    try:
        sock = raw_connect(path)
        sock.sendall(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n"
                     % (rpc.MAX_REQUEST_BYTES + 1))
        assert sock.recv(100).startswith(b"HTTP/1.1 413 ")
        sock.close()
        # the only worker is free again at once, not waiting for a body
        assert rpc.connect(path, timeout=1.0).ping() is True
    finally:
        server.stop()
