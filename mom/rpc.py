"""MOM's XML-RPC server: the exported API over loopback TCP or a unix socket.

``rpc-port`` is a TCP port (served on 127.0.0.1 only) or the path of a unix
socket (process mode: VDSM's only way in is ``/var/run/vdsm/mom-vdsm.sock``).

The server has a fixed set of threads whatever the load: one that accepts
connections and waits until each has sent something, and a pool of
``workers`` that read, answer and close one request each.  A client that
connects and sends nothing costs an open file until ``read_timeout``, never
a thread, so it cannot hold up anybody's call.  A request must arrive in
full within ``read_timeout`` seconds of connecting and be at most
``max_request_bytes`` long (413 otherwise, with nothing called).  One
request per connection (the reply says ``Connection: close``), as Python's
xmlrpc client expects.

Bind errors (directory missing, port in use, a live MOM on the socket, a
non-socket file at the path) are raised by the constructor as
:class:`RpcBindError`; calls are served only once ``ready`` says MOM can
answer them (until then connections wait in the listen backlog).
"""
from __future__ import annotations

import http.client
import logging
import queue
import selectors
import socket
import threading
import time
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mom.rpc_api import EXPORTED, Dispatcher
from mom.rpc_unix import RpcBindError, bind_unix, remove_own

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_WORKERS",
    "EXPORTED",
    "MAX_REQUEST_BYTES",
    "READ_TIMEOUT",
    "RpcBindError",
    "RpcServer",
    "connect",
]

#: Threads answering requests (besides the one accepting connections).
DEFAULT_WORKERS = 4
#: Largest request accepted: a 1 MiB policy text, XML-escaped, fits.
MAX_REQUEST_BYTES = 2 * 1024 * 1024
#: Seconds a client has, from connecting, to send its whole request.
READ_TIMEOUT = 5.0
#: Seconds a client has to take its reply.
WRITE_TIMEOUT = 5.0
#: Connections held at once (waiting for their request, or for a worker);
#: beyond this, new ones wait in the listen backlog.
MAX_HELD = 64
#: Request line and headers.
MAX_HEAD_BYTES = 16 * 1024
RPC_PATHS = ("/", "/RPC2")


class _HttpError(Exception):
    """A request answered with an HTTP error status, nothing called."""

    def __init__(self, status: int, detail: str, drain: int = 0) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.drain = drain              # body bytes to read and discard first


class _ClientGone(Exception):
    """The client closed the connection or did not send in time."""


@dataclass(frozen=True)
class RequestHead:
    method: str
    path: str
    headers: dict[str, str]


def parse_head(data: bytes) -> RequestHead:
    """The request line and headers (without the blank line); _HttpError(400)."""
    try:
        lines = data.decode("latin-1").split("\r\n")
        method, path, version = lines[0].split(" ")
    except ValueError:
        raise _HttpError(400, "malformed request line") from None
    if not version.startswith("HTTP/1.") or not method.isalpha():
        raise _HttpError(400, "malformed request line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise _HttpError(400, "malformed header line")
        key = name.lower()
        value = value.strip()
        if key in headers and headers[key] != value:
            raise _HttpError(400, f"conflicting {name} headers")
        headers[key] = value
    return RequestHead(method, path, headers)


def body_length(head: RequestHead, limit: int) -> int:
    """The body size the request declares; _HttpError if it cannot be served
    (with the body to read and discard first, so the client gets the reply)."""
    value = head.headers.get("content-length")
    declared = int(value) if value is not None and value.isdigit() else 0
    if head.path not in RPC_PATHS:
        raise _HttpError(404, f"no XML-RPC service at {head.path[:100]}", drain=declared)
    if head.method != "POST":
        raise _HttpError(405, "XML-RPC requests are POSTs", drain=declared)
    if "transfer-encoding" in head.headers or value is None:
        raise _HttpError(411, "send the request with a Content-Length")
    if not value.isdigit():
        raise _HttpError(400, "bad Content-Length")
    if declared > limit:
        raise _HttpError(413, f"request of {declared} bytes; the limit is {limit}",
                         drain=declared)
    return declared


def _response(status: int, body: bytes, content_type: str, extra: str = "") -> bytes:
    reason = http.client.responses.get(status, "Error")
    head = (f"HTTP/1.1 {status} {reason}\r\nServer: MOM\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            f"{extra}Connection: close\r\n\r\n")
    return head.encode("latin-1") + body


class RpcServer:
    """Serves ``target``'s exported methods (see :mod:`mom.rpc_api`).

    ``port_or_path``: a TCP port on 127.0.0.1 (0 picks a free one) or a unix
    socket path.  ``ready(timeout) -> bool`` (e.g. ``MOM.wait_ready``) says
    whether MOM can answer calls yet; until it returns True connections are
    accepted by the kernel but not served.  ``socket_group`` makes the unix
    socket 0660 and that group's (else 0600).  Raises RpcBindError.
    """

    def __init__(self, target: Any, port_or_path: int | str, *,
                 ready: Callable[[float], bool] | None = None,
                 socket_group: str | int | None = None,
                 workers: int = DEFAULT_WORKERS,
                 max_request_bytes: int = MAX_REQUEST_BYTES,
                 read_timeout: float = READ_TIMEOUT) -> None:
        self.dispatcher = Dispatcher(target)
        self.address = port_or_path
        self.max_request_bytes = max_request_bytes
        self.read_timeout = read_timeout
        self._ready = ready
        self._inode: tuple[int, int] | None = None
        backlog = 4 * workers
        if isinstance(port_or_path, int):
            self._listener = _bind_tcp(port_or_path, backlog)
        else:
            self._listener, self._inode = bind_unix(port_or_path, backlog, socket_group)
        self.server_address = self._listener.getsockname()
        self._listener.setblocking(False)
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        # Unbounded, but never holds more than MAX_HELD connections.
        self._work: queue.Queue[tuple[socket.socket, float] | None] = queue.Queue()
        self._held = 0
        self._held_lock = threading.Lock()
        self._notified: set[str] = set()
        self._started = False
        self._closed = False
        self.thread = threading.Thread(target=self._accept_loop, name="RPCServer", daemon=True)
        self._workers = [threading.Thread(target=self._work_loop, name=f"RPCWorker-{i}",
                                          daemon=True) for i in range(workers)]

    # -- life cycle -------------------------------------------------------
    def start(self) -> None:
        if self._started or self._closed:
            return
        self._started = True
        for worker in self._workers:
            worker.start()
        self.thread.start()
        log.info("RPC server listening on %s", self.address)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving, close every connection and remove the socket file."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        self._wake()
        deadline = time.monotonic() + timeout
        if self._started:
            self.thread.join(max(0.0, deadline - time.monotonic()))
            while True:                   # connections never handed to a worker
                try:
                    item = self._work.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    self._release(item[0])
            for _ in self._workers:
                self._work.put(None)
            for worker in self._workers:
                worker.join(max(0.0, deadline - time.monotonic()))
            stuck = [w.name for w in self.threads()]
            if stuck:
                log.warning("RPC threads %s still busy in a call; left as daemon threads",
                            stuck)
        self._listener.close()
        if self._inode is not None:
            remove_own(str(self.address), self._inode)
        self._wake_r.close()
        self._wake_w.close()

    def threads(self) -> list[threading.Thread]:
        """The server's live threads: the acceptor and the workers."""
        return [t for t in (self.thread, *self._workers) if t.is_alive()]

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _note(self, condition: str, message: str, *args: Any) -> None:
        """A client's misbehaviour: a warning the first time, then debug."""
        if condition in self._notified:
            log.debug(message, *args)
        else:
            self._notified.add(condition)
            log.warning(message + " (further cases are logged at debug level)", *args)

    # -- accepting --------------------------------------------------------
    def _wait_ready(self) -> bool:
        if self._ready is None:
            return True
        while not self._stopping.is_set():
            try:
                if self._ready(0.25):
                    log.debug("MOM is ready; RPC calls are served")
                    return True
            except Exception as err:
                self._note("ready", "RPC readiness check failed: %s: %s",
                           type(err).__name__, err)
                self._stopping.wait(0.25)
        return False

    def _accept_loop(self) -> None:
        if not self._wait_ready():
            return
        selector = selectors.DefaultSelector()
        selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        selector.register(self._listener, selectors.EVENT_READ, "listen")
        listening = True
        waiting: dict[socket.socket, float] = {}       # connection -> deadline
        try:
            while not self._stopping.is_set():
                timeout = (max(0.0, min(waiting.values()) - time.monotonic())
                           if waiting else None)
                for key, _ in selector.select(timeout):
                    if key.data == "listen":
                        self._accept(selector, waiting)
                    elif key.data == "wake":
                        self._drain_wake()
                    else:
                        conn = key.fileobj
                        selector.unregister(conn)
                        self._work.put((conn, waiting.pop(conn)))
                now = time.monotonic()
                for conn, deadline in list(waiting.items()):
                    if deadline <= now:
                        selector.unregister(conn)
                        del waiting[conn]
                        self._release(conn)
                        self._note("idle", "RPC client connected and sent nothing for "
                                   "%.0f s; connection closed", self.read_timeout)
                full = self._held >= MAX_HELD
                if listening and full:
                    selector.unregister(self._listener)
                elif not listening and not full:
                    selector.register(self._listener, selectors.EVENT_READ, "listen")
                listening = not full
        except Exception:
            log.exception("RPC server stopped accepting connections")
        finally:
            for conn in waiting:
                self._release(conn)
            selector.close()

    def _accept(self, selector: selectors.BaseSelector,
                waiting: dict[socket.socket, float]) -> None:
        while self._held < MAX_HELD:
            try:
                conn, _ = self._listener.accept()
            except BlockingIOError:
                return
            except OSError as err:        # out of file descriptors, most likely
                self._note("accept", "RPC server cannot accept a connection: %s", err)
                self._stopping.wait(0.1)
                return
            with self._held_lock:
                self._held += 1
            conn.setblocking(False)
            waiting[conn] = time.monotonic() + self.read_timeout
            selector.register(conn, selectors.EVENT_READ, "conn")

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(64):
                pass
        except OSError:
            pass

    def _release(self, conn: socket.socket) -> None:
        """Close a held connection; wake the acceptor if it stopped accepting."""
        conn.close()
        with self._held_lock:
            self._held -= 1
            was_full = self._held == MAX_HELD - 1
        if was_full:
            self._wake()

    # -- answering --------------------------------------------------------
    def _work_loop(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            conn, deadline = item
            try:
                self._serve(conn, deadline)
            except Exception:
                log.exception("RPC request handling failed")
            finally:
                self._release(conn)

    def _serve(self, conn: socket.socket, deadline: float) -> None:
        conn.setblocking(True)
        try:
            try:
                body = self._read_request(conn, deadline)
            except _HttpError as err:
                if err.status == 413:
                    self._note("413", "RPC request refused: %s", err.detail)
                self._send(conn, _response(err.status, (err.detail + "\n").encode(),
                                           "text/plain",
                                           "Allow: POST\r\n" if err.status == 405 else ""))
                if err.drain:
                    self._discard(conn, err.drain, deadline)
                return
        except _ClientGone:
            return
        self._send(conn, _response(200, self.dispatcher.handle(body), "text/xml"))

    def _recv(self, conn: socket.socket, deadline: float) -> bytes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            self._note("slow", "RPC client did not send its request within %.0f s; "
                       "connection closed", self.read_timeout)
            raise _ClientGone()
        conn.settimeout(remaining)
        try:
            return conn.recv(65536)
        except TimeoutError:
            return self._recv(conn, deadline)      # now past the deadline: gone
        except OSError:
            raise _ClientGone() from None

    def _read_request(self, conn: socket.socket, deadline: float) -> bytes:
        data = bytearray()
        while (end := data.find(b"\r\n\r\n")) < 0:
            if len(data) > MAX_HEAD_BYTES:
                raise _HttpError(431, "request headers too long")
            chunk = self._recv(conn, deadline)
            if not chunk:
                raise _ClientGone()
            data += chunk
        head = parse_head(bytes(data[:end]))
        expects_continue = head.headers.get("expect", "").lower() == "100-continue"
        try:
            length = body_length(head, self.max_request_bytes)
        except _HttpError as err:
            # A client waiting for "100 Continue" never sends the body.
            err.drain = 0 if expects_continue else max(0, err.drain - (len(data) - end - 4))
            raise
        if expects_continue:
            self._send(conn, b"HTTP/1.1 100 Continue\r\n\r\n")
        body = data[end + 4:]
        while len(body) < length:
            chunk = self._recv(conn, deadline)
            if not chunk:
                raise _ClientGone()
            body += chunk
        return bytes(body[:length])

    def _discard(self, conn: socket.socket, count: int, deadline: float) -> None:
        """Read what the client still sends so it can read our reply before EOF."""
        try:
            while count > 0:
                chunk = self._recv(conn, deadline)
                if not chunk:
                    return
                count -= len(chunk)
        except _ClientGone:
            return

    @staticmethod
    def _send(conn: socket.socket, data: bytes) -> None:
        conn.settimeout(WRITE_TIMEOUT)
        try:
            conn.sendall(data)
        except OSError as err:
            log.debug("RPC reply not delivered: %s", err)


def _bind_tcp(port: int, backlog: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(backlog)
    except OSError as err:
        sock.close()
        raise RpcBindError(f"cannot listen on 127.0.0.1:{port}: {err.strerror or err}") from None
    return sock


class _UnixTransport(xmlrpc.client.Transport):
    """HTTP over a unix socket, for ServerProxy."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__()
        self._path = path
        self._timeout = timeout

    def make_connection(self, host: Any) -> Any:
        path, timeout = self._path, self._timeout

        class Connection(http.client.HTTPConnection):
            def connect(self) -> None:
                self.sock = _connect_unix(path, timeout)

        return Connection("localhost", timeout=timeout)


def _connect_unix(path: str, timeout: float) -> socket.socket:
    """A connected unix socket.  A connect with a timeout does not wait for
    room in a full listen backlog (EAGAIN at once), so wait here, up to
    ``timeout``, as a blocking connect would."""
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(path)
            return sock
        except BlockingIOError:
            sock.close()
            if time.monotonic() + pause > deadline:
                raise TimeoutError(f"timed out waiting to connect to {path}") from None
            time.sleep(pause)
            pause = min(pause * 2, 0.1)
        except BaseException:
            sock.close()
            raise


def connect(port_or_path: int | str, timeout: float = 10.0) -> xmlrpc.client.ServerProxy:
    """A client of a MOM RPC server (TCP port on loopback, or unix socket path)."""
    if isinstance(port_or_path, int):
        return xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port_or_path}/",
                                         allow_none=True, use_builtin_types=True)
    return xmlrpc.client.ServerProxy("http://localhost/", allow_none=True,
                                     use_builtin_types=True,
                                     transport=_UnixTransport(port_or_path, timeout))
