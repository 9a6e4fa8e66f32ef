"""MOM's XML-RPC server: the exported API over loopback TCP or a unix socket.

``rpc-port`` is a TCP port (served on 127.0.0.1 only) or the path of a unix
socket (process mode: VDSM talks to ``/var/run/vdsm/mom-vdsm.sock``).
Statistics hold counters beyond XML-RPC's 32-bit ints; those are sent as
``<i8>``, which Python's xmlrpc client reads back as ints.
"""
from __future__ import annotations

import logging
import os
import socket
import socketserver
import threading
import xmlrpc.client
from typing import Any
from xmlrpc.server import SimpleXMLRPCDispatcher, SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

log = logging.getLogger(__name__)

EXPORTED = ("ping", "getStatistics", "getActiveGuests", "setPolicy", "setNamedPolicy",
            "getPolicy", "getNamedPolicies", "resetPolicies", "setVerbosity")

_INT32 = 2 ** 31


class _Marshaller(xmlrpc.client.Marshaller):
    dispatch = dict(xmlrpc.client.Marshaller.dispatch)

    def dump_int(self, value: int, write: Any) -> None:
        tag = "int" if -_INT32 <= value < _INT32 else "i8"
        write(f"<value><{tag}>{int(value)}</{tag}></value>\n")

    dispatch[int] = dump_int


class _Dispatcher(SimpleXMLRPCDispatcher):
    """Marshals replies with 64-bit ints and None allowed."""

    def _marshaled_dispatch(self, data: bytes, dispatch_method: Any = None,
                            path: Any = None) -> bytes:
        try:
            params, method = xmlrpc.client.loads(data, use_builtin_types=True)
            result = self._dispatch(method, params)
            body = _Marshaller("utf-8", allow_none=True).dumps((result,))
            response = ("<?xml version='1.0'?>\n<methodResponse>\n"
                        f"{body}</methodResponse>\n")
        except xmlrpc.client.Fault as fault:
            response = xmlrpc.client.dumps(fault, allow_none=True)
        except Exception as err:
            log.exception("RPC call failed")
            response = xmlrpc.client.dumps(
                xmlrpc.client.Fault(1, f"{type(err).__name__}: {err}"), allow_none=True)
        return response.encode("utf-8", "xmlcharrefreplace")


class _TcpServer(_Dispatcher, SimpleXMLRPCServer):
    allow_reuse_address = True
    daemon_threads = True


class _UnixHandler(SimpleXMLRPCRequestHandler):
    disable_nagle_algorithm = False       # TCP_NODELAY does not exist on unix sockets

    def address_string(self) -> str:      # unix peers have no (host, port)
        return "unix"


class _UnixServer(_Dispatcher, socketserver.UnixStreamServer):
    def __init__(self, path: str) -> None:
        _Dispatcher.__init__(self, allow_none=True, encoding="utf-8")
        self.logRequests = False
        socketserver.UnixStreamServer.__init__(self, path, _UnixHandler)


class RpcServer:
    """Serves ``target``'s exported methods in one thread."""

    def __init__(self, target: Any, port_or_path: int | str) -> None:
        self.address = port_or_path
        if isinstance(port_or_path, int):
            self.server: Any = _TcpServer(("127.0.0.1", port_or_path), logRequests=False,
                                          allow_none=True)
        else:
            _remove_stale_socket(port_or_path)
            self.server = _UnixServer(port_or_path)
        for name in EXPORTED:
            self.server.register_function(getattr(target, name), name)
        self.thread = threading.Thread(target=self.server.serve_forever, name="RPCServer",
                                       kwargs={"poll_interval": 0.2}, daemon=True)

    def start(self) -> None:
        self.thread.start()
        log.info("RPC server listening on %s", self.address)

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
        self.server.server_close()
        if isinstance(self.address, str):
            _remove_stale_socket(self.address)


def _remove_stale_socket(path: str) -> None:
    """A socket file left by a MOM that died is removed; a live one is kept."""
    if not os.path.exists(path):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)
    else:
        raise OSError(f"another process is serving on {path}")
    finally:
        probe.close()


class _UnixTransport(xmlrpc.client.Transport):
    """HTTP over a unix socket, for ServerProxy."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__()
        self._path = path
        self._timeout = timeout

    def make_connection(self, host: Any) -> Any:
        import http.client

        path, timeout = self._path, self._timeout

        class Connection(http.client.HTTPConnection):
            def connect(self) -> None:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(timeout)
                self.sock.connect(path)

        return Connection("localhost", timeout=timeout)


def connect(port_or_path: int | str, timeout: float = 10.0) -> xmlrpc.client.ServerProxy:
    """A client of a MOM RPC server (TCP port on loopback, or unix socket path)."""
    if isinstance(port_or_path, int):
        return xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port_or_path}/",
                                         allow_none=True, use_builtin_types=True)
    return xmlrpc.client.ServerProxy("http://localhost/", allow_none=True,
                                     use_builtin_types=True,
                                     transport=_UnixTransport(port_or_path, timeout))
