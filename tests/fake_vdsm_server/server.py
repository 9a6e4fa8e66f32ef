"""A fake VDSM listening on a real socket: JSON-RPC over STOMP 1.2 and
XML-RPC over HTTP, on one port as VDSM serves them, with mutual TLS or
plain TCP.

STOMP as VDSM's server does it: the first frame must be ``CONNECT`` with
``accept-version:1.2`` exactly (``STOMP`` and other versions get an
``ERROR`` frame and the connection is closed); ``SUBSCRIBE`` registers a
destination; a ``SEND`` to ``jms.topic.vdsm_requests`` carries one JSON-RPC
request whose response goes as a ``MESSAGE`` to the subscription named by
``reply-to`` (no ``reply-to``: no answer; a batch of two or more: ignored).
Every ``notify_every``-th request is preceded by an unsolicited event
notification (``|virt|VM_status|<id>``), as VDSM pushes them, so a client
has to ignore it.

The frame parser here is written independently of MOM's codec, so a bug
in one is not mirrored in the other.
"""
from __future__ import annotations

import json
import socket
import ssl
import threading
import time
import uuid
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import bridge
from .certs import Pki

REQUESTS_DESTINATION = "jms.topic.vdsm_requests"
_READ = 65536


@dataclass
class Call:
    """One request the server received."""
    protocol: str                   # "jsonrpc" or "xmlrpc"
    method: str
    params: Any                     # dict (JSON-RPC) or tuple (XML-RPC)
    answered: bool = True           # False: no reply-to, or dropped


@dataclass
class _Injection:
    fail: tuple[int, str] | None = None
    override: Any = None
    has_override: bool = False
    hang: threading.Event | None = None
    drop: bool = False


class _Closed(Exception):
    pass


class _Reader:
    """Buffered reads from a socket."""

    def __init__(self, sock: socket.socket, initial: bytes = b"") -> None:
        self.sock = sock
        self.buf = bytearray(initial)

    def more(self) -> None:
        data = self.sock.recv(_READ)
        if not data:
            raise _Closed()
        self.buf += data

    def until(self, sep: bytes, limit: int = 1 << 20) -> bytes:
        while True:
            index = self.buf.find(sep)
            if index >= 0:
                out = bytes(self.buf[:index])
                del self.buf[:index + len(sep)]
                return out
            if len(self.buf) > limit:
                raise _Closed()
            self.more()

    def exact(self, count: int) -> bytes:
        while len(self.buf) < count:
            self.more()
        out = bytes(self.buf[:count])
        del self.buf[:count]
        return out


# -- STOMP, the fake's own minimal codec ------------------------------------

def _unescape(text: str) -> str:
    return (text.replace("\\n", "\n").replace("\\r", "\r").replace("\\c", ":")
            .replace("\\\\", "\\"))


def _escape(text: str) -> str:
    return (text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
            .replace(":", "\\c"))


def read_stomp_frame(reader: _Reader) -> tuple[str, dict[str, str], bytes]:
    while reader.buf[:1] in (b"\n", b"\r") or not reader.buf:
        if reader.buf[:1] in (b"\n", b"\r"):
            del reader.buf[:1]
        else:
            reader.more()
    head = reader.until(b"\n\n").decode("utf-8").replace("\r\n", "\n")
    lines = head.split("\n")
    command = lines[0].strip("\r")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        key, _, value = line.rstrip("\r").partition(":")
        if command != "CONNECT":
            key, value = _unescape(key), _unescape(value)
        headers.setdefault(key, value)
    if "content-length" in headers:
        body = reader.exact(int(headers["content-length"]))
        if reader.exact(1) != b"\0":
            raise _Closed()
    else:
        body = reader.until(b"\0")
    return command, headers, body


def stomp_frame(command: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    raw = command == "CONNECTED"
    lines = [command] + [f"{k}:{v}" if raw else f"{_escape(k)}:{_escape(v)}"
                         for k, v in headers.items()]
    if body:
        lines.append(f"content-length:{len(body)}")
    return ("\n".join(lines) + "\n\n").encode() + body + b"\0"


class FakeVdsmServer:
    """VDSM's RPC port over a ``FakeVdsm`` state.

    ``pki`` (from :func:`certs.make_pki`) turns on mutual TLS with the
    PKI's server certificate, requiring a client certificate signed by its
    CA; ``None`` serves plain TCP.  ``port=0`` picks a free port at the
    first :meth:`start`; :meth:`stop` then :meth:`start` reuse it.
    """

    def __init__(self, state: Any = None, *, pki: Pki | None = None,
                 host: str = "127.0.0.1", port: int = 0, notify_every: int = 3) -> None:
        if state is None:
            from . import new_state
            state = new_state()
        self.state = state
        self.pki = pki
        self.host = host
        self.port = port
        self.notify_every = notify_every
        self.calls: list[Call] = []
        self.connect_headers: list[dict[str, str]] = []
        self.refused: list[str] = []        # why connections were refused
        self.events_sent = 0
        self.accepted = 0
        self._inject: dict[str, _Injection] = {}
        self._lock = threading.RLock()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._conns: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._request_count = 0
        self._context = self._tls_context() if pki else None

    # -- life -----------------------------------------------------------------
    def _tls_context(self) -> ssl.SSLContext:
        assert self.pki is not None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.pki.server_cert, self.pki.server_key)
        context.load_verify_locations(self.pki.ca_cert)
        context.verify_mode = ssl.CERT_REQUIRED
        return context

    @property
    def running(self) -> bool:
        return self._listener is not None

    def start(self) -> FakeVdsmServer:
        """Listen (on the same port as before after a :meth:`stop`)."""
        if self._listener is not None:
            return self
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._stopping.clear()
        self._listener = listener
        self._spawn(self._accept_loop, listener)
        return self

    def stop(self) -> None:
        """Stop listening and cut every connection, as a VDSM that dies."""
        listener, self._listener = self._listener, None
        self._stopping.set()
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(5)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> FakeVdsmServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def vdsm_section(self) -> dict[str, str]:
        """The ``[vdsm]`` keys of a mom.conf that reaches this server."""
        section = {"host": self.host, "port": str(self.port),
                   "ssl": "true" if self.pki else "false", "request-timeout": "5"}
        if self.pki:
            section.update({"pki-dir": self.pki.pki_dir, "key-file": self.pki.key_file,
                            "cert-file": self.pki.cert_file,
                            "ca-cert-file": self.pki.ca_cert_file})
        return section

    def open_connections(self) -> int:
        with self._lock:
            return len(self._conns)

    def idle(self) -> bool:
        """No connection open and no thread but the accept loop alive."""
        with self._lock:
            alive = [t for t in self._threads if t.is_alive()]
            return not self._conns and len(alive) <= (1 if self.running else 0)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True,
                                  name=f"fake-vdsm-{target.__name__}")
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            if self._stopping.is_set():
                conn.close()
                return
            self.accepted += 1
            self._spawn(self._serve, conn)

    # -- recording and injection ----------------------------------------------
    def calls_of(self, method: str) -> list[Any]:
        """Params of every request for ``method`` (wire name), in order."""
        with self._lock:
            return [c.params for c in self.calls if c.method == method]

    def count(self, method: str) -> int:
        return len(self.calls_of(method))

    def methods(self) -> list[str]:
        with self._lock:
            return [c.method for c in self.calls]

    def clear_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    def _injection(self, method: str) -> _Injection:
        return self._inject.setdefault(method, _Injection())

    def fail(self, method: str, code: int = 99, message: str = "Injected failure") -> None:
        """Answer ``method`` with an error (JSON-RPC error / XML-RPC status)."""
        with self._lock:
            self._injection(method).fail = (code, message)

    def override(self, method: str, result: Any) -> None:
        """Answer ``method`` with ``result`` as it is (malformed replies)."""
        with self._lock:
            injection = self._injection(method)
            injection.override, injection.has_override = result, True

    def hang(self, method: str) -> threading.Event:
        """Hold replies to ``method`` until the returned event is set (or
        the server stops); other requests are still answered."""
        release = threading.Event()
        with self._lock:
            self._injection(method).hang = release
        return release

    def drop(self, method: str) -> None:
        """Close the connection when a ``method`` request arrives."""
        with self._lock:
            self._injection(method).drop = True

    def heal(self, method: str | None = None) -> None:
        with self._lock:
            if method is None:
                for injection in self._inject.values():
                    if injection.hang is not None:
                        injection.hang.set()
                self._inject.clear()
            else:
                injection = self._inject.pop(method, None)
                if injection is not None and injection.hang is not None:
                    injection.hang.set()

    # -- connections ----------------------------------------------------------
    def _serve(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.add(conn)
        sock: socket.socket = conn
        try:
            conn.settimeout(10)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._context is not None:
                try:
                    sock = self._context.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError) as err:
                    self.refused.append(f"TLS: {err}")
                    return
                with self._lock:
                    self._conns.discard(conn)
                    self._conns.add(sock)
            sock.settimeout(None)
            reader = _Reader(sock)
            while len(reader.buf) < 4:
                reader.more()
            start = bytes(reader.buf[:4])
            if start in (b"POST", b"GET ", b"PUT ", b"HEAD"):
                self._serve_http(sock, reader)
            elif start.lstrip(b"\r\n")[:1].isupper() or not start.strip(b"\r\n"):
                self._serve_stomp(sock, reader)
            else:           # a TLS hello to a plain VDSM, or noise: hang up
                self.refused.append(f"unknown protocol {start!r}")
        except (_Closed, OSError, ValueError, UnicodeDecodeError):
            pass
        finally:
            with self._lock:
                self._conns.discard(sock)
                self._conns.discard(conn)
            try:
                sock.close()
            except OSError:
                pass

    def _wait_hang(self, injection: _Injection | None) -> bool:
        """Block while ``method`` is held; False if the server stopped."""
        release = injection.hang if injection else None
        while release is not None and not release.is_set():
            if self._stopping.wait(0.02):
                return False
        return True

    # -- STOMP / JSON-RPC -----------------------------------------------------
    def _serve_stomp(self, sock: socket.socket, reader: _Reader) -> None:
        send_lock = threading.Lock()
        subscriptions: dict[str, str] = {}      # destination -> subscription id

        def send(data: bytes) -> None:
            with send_lock:
                sock.sendall(data)

        command, headers, _ = read_stomp_frame(reader)
        if command != "CONNECT":
            self.refused.append(f"first frame {command}")
            send(stomp_frame("ERROR", {"message": f"Unsupported command {command}"}))
            return
        with self._lock:
            self.connect_headers.append(dict(headers))
        if headers.get("accept-version") != "1.2":
            self.refused.append(f"accept-version {headers.get('accept-version')!r}")
            send(stomp_frame("ERROR", {"message": "Version unsupported"}))
            return
        send(stomp_frame("CONNECTED", {"version": "1.2", "heart-beat": "0,0",
                                       "session": str(uuid.uuid4())}))
        while not self._stopping.is_set():
            command, headers, body = read_stomp_frame(reader)
            if command == "SUBSCRIBE":
                subscriptions[headers.get("destination", "")] = headers.get("id", "")
            elif command == "UNSUBSCRIBE":
                for dest, sub in list(subscriptions.items()):
                    if sub == headers.get("id"):
                        del subscriptions[dest]
            elif command == "DISCONNECT":
                if "receipt" in headers:
                    send(stomp_frame("RECEIPT", {"receipt-id": headers["receipt"]}))
                return
            elif command == "SEND":
                if not self._stomp_request(headers, body, subscriptions, send):
                    return
            else:
                send(stomp_frame("ERROR", {"message": f"Unknown command {command}"}))
                return

    def _stomp_request(self, headers: dict[str, str], body: bytes,
                       subscriptions: dict[str, str], send: Callable[[bytes], None]) -> bool:
        """Handle one SEND; False when the connection must close."""
        if headers.get("destination") != REQUESTS_DESTINATION:
            return True
        try:
            request = json.loads(body)
        except ValueError:
            return True
        if isinstance(request, list):
            if len(request) != 1:
                with self._lock:
                    self.calls.append(Call("jsonrpc", "<batch>", request, answered=False))
                return True
            request = request[0]
        if not isinstance(request, dict):
            return True
        method = str(request.get("method", ""))
        reply_to = headers.get("reply-to")
        with self._lock:
            self.calls.append(Call("jsonrpc", method, request.get("params"),
                                   answered=bool(reply_to)))
            injection = self._inject.get(method)
            self._request_count += 1
            notify = self.notify_every > 0 and self._request_count % self.notify_every == 0
        if injection is not None and injection.drop:
            return False

        def answer() -> None:
            if not self._wait_hang(injection):
                return
            response = self._json_response(request, method, injection)
            if "id" not in request or not reply_to or reply_to not in subscriptions:
                return
            message = json.dumps(response).encode()
            try:
                send(stomp_frame("MESSAGE", {
                    "destination": reply_to, "subscription": subscriptions[reply_to],
                    "message-id": str(uuid.uuid4()), "content-type": "application/json"},
                    message))
            except OSError:
                pass

        if notify:
            self.push_event(send, subscriptions)
        if injection is not None and injection.hang is not None:
            self._spawn(answer)
        else:
            answer()
        return True

    def push_event(self, send: Callable[[bytes], None], subscriptions: dict[str, str]) -> None:
        """An unsolicited notification, as VDSM sends on VM status changes."""
        with self.state.lock:
            vm_id = next(iter(self.state.vms), str(uuid.uuid4()))
        event = {"jsonrpc": "2.0", "method": f"|virt|VM_status|{vm_id}",
                 "params": {vm_id: {"status": "Up"}, "notify_time": int(time.time() * 1000)}}
        body = json.dumps(event).encode()
        for dest, sub in list(subscriptions.items()):
            send(stomp_frame("MESSAGE", {"destination": dest, "subscription": sub,
                                         "message-id": str(uuid.uuid4()),
                                         "content-type": "application/json"}, body))
            self.events_sent += 1

    def _json_response(self, request: dict[str, Any], method: str,
                       injection: _Injection | None) -> dict[str, Any]:
        response: dict[str, Any] = {"jsonrpc": "2.0", "id": request.get("id")}
        try:
            if injection is not None and injection.fail is not None:
                raise bridge.RpcError(*injection.fail)
            if injection is not None and injection.has_override:
                response["result"] = injection.override
            else:
                response["result"] = bridge.call_json(self.state, method, request.get("params"))
        except bridge.RpcError as err:
            response.pop("result", None)
            response["error"] = {"code": err.code, "message": err.message}
        except Exception as err:        # a bug in the fake: say so to the client
            response["error"] = {"code": bridge.INTERNAL_ERROR,
                                 "message": f"{type(err).__name__}: {err}"}
        return response

    # -- HTTP / XML-RPC -------------------------------------------------------
    def _serve_http(self, sock: socket.socket, reader: _Reader) -> None:
        while not self._stopping.is_set():
            head = reader.until(b"\r\n\r\n").decode("latin-1").split("\r\n")
            verb, path, _ = head[0].split(" ", 2)
            headers = {}
            for line in head[1:]:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
            body = reader.exact(int(headers.get("content-length", "0")))
            if verb != "POST" or path not in ("/", "/RPC2"):
                status = "405 Method Not Allowed" if verb != "POST" else "404 Not Found"
                sock.sendall(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n".encode())
                continue
            params, method = xmlrpc.client.loads(body)
            with self._lock:
                self.calls.append(Call("xmlrpc", str(method), params))
                injection = self._inject.get(str(method))
            if injection is not None and injection.drop:
                return
            if not self._wait_hang(injection):
                return
            payload = self._xml_response(str(method), params, injection)
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n"
                         + f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
            if headers.get("connection", "").lower() == "close":
                return

    def _xml_response(self, method: str, params: tuple[Any, ...],
                      injection: _Injection | None) -> bytes:
        try:
            if injection is not None and injection.fail is not None:
                code, message = injection.fail
                result: Any = {"status": {"code": code, "message": message}}
            elif injection is not None and injection.has_override:
                result = injection.override
            else:
                handler = bridge.XML_METHODS.get(method)
                if handler is None:
                    raise xmlrpc.client.Fault(1, f'method "{method}" is not supported')
                result = handler(self.state, *params)
            text = xmlrpc.client.dumps((result,), methodresponse=True, allow_none=True)
        except xmlrpc.client.Fault as fault:
            text = xmlrpc.client.dumps(fault, methodresponse=True)
        except Exception as err:
            text = xmlrpc.client.dumps(xmlrpc.client.Fault(1, f"{type(err).__name__}: {err}"),
                                       methodresponse=True)
        return text.encode("utf-8")
