"""JSON-RPC 2.0 requests to VDSM carried in STOMP 1.2 frames.

Why not a STOMP library: stomp.py (the well-kept one) can send ``CONNECT``
with ``accept-version:1.2``, but it runs a receiver thread per connection,
retries connections itself with real sleeps inside ``connect()``, swallows
the reason a connection failed (the "Permission denied" on VDSM's key is
what users need to see), and cannot verify VDSM's certificate without also
checking the host name unless given a deprecated protocol constant.  MOM
needs far less: one connection, one request at a time, answered
synchronously.  So this module opens the socket itself and uses the pure
codec of :mod:`mom.hypervisor.stomp_frames`: no thread at all, and every
failure closes the socket.

Session: ``CONNECT`` (``accept-version:1.2``, ``host``, ``heart-beat:0,0``,
so VDSM sends no heart-beats) -> ``CONNECTED``; ``SUBSCRIBE`` to a response
queue named by a random UUID (``ack:auto``); then per request a ``SEND`` to
``jms.topic.vdsm_requests`` with ``reply-to`` the response queue and a body
of one JSON-RPC request whose ``id`` is a fresh UUID.  The reply is the
``MESSAGE`` whose JSON body carries that ``id``; anything else arriving on
the connection (VDSM's event notifications, a late reply to a request that
timed out) is dropped.
"""
from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from mom.hypervisor.stomp_frames import Frame, FrameDecoder, FrameError, encode_frame
from mom.hypervisor.vdsm_link import (
    CallTimeout, Endpoint, LinkError, RemoteError, certificate_refused, explain,
    is_certificate_refusal, open_socket)

log = logging.getLogger(__name__)

REQUEST_DESTINATION = "jms.topic.vdsm_requests"
_RECV_BYTES = 256 * 1024


def request_body(method: str, params: Mapping[str, Any], request_id: str) -> bytes:
    """One JSON-RPC 2.0 request object, params by name."""
    return json.dumps({"jsonrpc": "2.0", "method": method, "params": dict(params),
                       "id": request_id}, separators=(",", ":")).encode("utf-8")


def connect_frame(host: str) -> bytes:
    return encode_frame("CONNECT", [("accept-version", "1.2"), ("host", host),
                                    ("heart-beat", "0,0")])


def subscribe_frame(queue: str, subscription_id: str) -> bytes:
    return encode_frame("SUBSCRIBE", [("destination", queue), ("id", subscription_id),
                                      ("ack", "auto")])


def send_frame(queue: str, body: bytes) -> bytes:
    return encode_frame("SEND", [("destination", REQUEST_DESTINATION),
                                 ("content-type", "application/json"),
                                 ("reply-to", queue),
                                 ("content-length", str(len(body)))], body)


def reply_for(frame: Frame, request_id: str) -> tuple[bool, Any]:
    """(True, result) when ``frame`` answers ``request_id``; (False, None)
    for any other frame.  Raises RemoteError for a JSON-RPC ``error``."""
    if frame.command != "MESSAGE":
        return False, None
    try:
        message = json.loads(frame.body)
    except ValueError:
        return False, None
    if not isinstance(message, dict) or message.get("id") != request_id:
        return False, None
    error = message.get("error")
    if error is not None:
        if isinstance(error, Mapping):
            code = error.get("code")
            raise RemoteError(code if isinstance(code, int) else -1,
                              str(error.get("message", "")))
        raise RemoteError(-1, str(error))
    return True, message.get("result")


class StompJsonRpcClient:
    """One STOMP connection to VDSM; :meth:`call` sends one request and
    waits for its reply.  Calls are serialised by a lock.  Build it with
    :meth:`connect`."""

    def __init__(self, sock: socket.socket, endpoint: Endpoint,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._sock: socket.socket | None = sock
        self.endpoint = endpoint
        self._clock = clock
        self._decoder = FrameDecoder()
        self._lock = threading.Lock()
        self.queue = str(uuid.uuid4())
        self.ignored = 0        # frames dropped: notifications, late replies
        self._subscribed = False

    @classmethod
    def connect(cls, endpoint: Endpoint) -> StompJsonRpcClient:
        """Open the socket, CONNECT and SUBSCRIBE; raises LinkError."""
        client = cls(open_socket(endpoint), endpoint)
        try:
            client._handshake()
        except BaseException:
            client.close()
            raise
        return client

    def _handshake(self) -> None:
        self._send(connect_frame(self.endpoint.host), "STOMP CONNECT")
        deadline = self._clock() + self.endpoint.timeout
        while True:
            try:
                frames = self._receive(deadline, "STOMP CONNECT")
            except CallTimeout:
                raise LinkError(f"VDSM accepted the connection but did not answer STOMP "
                                f"CONNECT within {self.endpoint.timeout:g} s "
                                "([vdsm] request-timeout)") from None
            for frame in frames:
                if frame.command == "CONNECTED":
                    version = frame.headers.get("version", "")
                    if version != "1.2":
                        raise LinkError(f"VDSM answered CONNECT with STOMP version "
                                        f"{version!r}, not 1.2")
                    self._send(subscribe_frame(self.queue, str(uuid.uuid4())),
                               "STOMP SUBSCRIBE")
                    self._subscribed = True
                    return
                self._check_error(frame)

    def call(self, method: str, params: Mapping[str, Any] | None = None,
             timeout: float | None = None) -> Any:
        """The ``result`` of ``method``.  Raises RemoteError for a JSON-RPC
        error, CallTimeout when no reply came in time (the connection stays
        usable) and LinkError when the connection broke (it is closed)."""
        with self._lock:
            if self._sock is None:
                raise LinkError("the connection to VDSM is closed")
            request_id = str(uuid.uuid4())
            body = request_body(method, params or {}, request_id)
            self._send(send_frame(self.queue, body), f"sending {method}")
            deadline = self._clock() + (self.endpoint.timeout if timeout is None else timeout)
            while True:
                for frame in self._receive(deadline, method):
                    self._check_error(frame)
                    matched, result = reply_for(frame, request_id)
                    if matched:
                        return result
                    self.ignored += 1
                    log.debug("ignoring a %s frame from VDSM that does not answer %s",
                              frame.command, method)

    def _check_error(self, frame: Frame) -> None:
        if frame.command == "ERROR":
            message = frame.headers.get("message", "")
            detail = frame.body.decode("utf-8", "replace").strip()
            raise self._fail(f"VDSM sent a STOMP ERROR: {message or detail or 'no message'}"
                             + (f" ({detail})" if message and detail else ""))

    def _send(self, data: bytes, what: str) -> None:
        assert self._sock is not None
        try:
            self._sock.sendall(data)
        except OSError as err:
            raise self._fail(self._explain(err, what)) from None

    def _explain(self, err: OSError, what: str) -> str:
        """Why the session broke.  Before CONNECTED, a closed connection is
        VDSM refusing us: with TLS 1.3, VDSM checks MOM's certificate after
        MOM's side of the handshake is over, so its refusal shows on the
        first read or write, as an alert or as the connection closing;
        without TLS, a VDSM that expects TLS hangs up on the plain CONNECT.
        The words do not depend on which way it showed (logged once)."""
        log.debug("%s: %s: %r", self.endpoint.address(), what, err)
        if self._subscribed:
            return f"connection lost ({what}): {explain(err, self.endpoint)}"
        closed = isinstance(err, (ssl.SSLEOFError, ConnectionResetError, BrokenPipeError))
        if self.endpoint.tls and (closed or is_certificate_refusal(err)):
            return certificate_refused(self.endpoint)
        if closed:
            return ("VDSM closed the connection before answering CONNECT: if VDSM "
                    "expects TLS, leave [vdsm] ssl unset or set it to true")
        return explain(err, self.endpoint)

    def _receive(self, deadline: float, what: str) -> list[Frame]:
        """At least one read's worth of frames (possibly none) before ``deadline``."""
        sock = self._sock
        if sock is None:
            raise LinkError("the connection to VDSM is closed")
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise CallTimeout(f"no reply to {what} within {self.endpoint.timeout:g} s")
        try:
            sock.settimeout(remaining)
            data = sock.recv(_RECV_BYTES)
        except (socket.timeout, TimeoutError):
            raise CallTimeout(
                f"no reply to {what} within {self.endpoint.timeout:g} s") from None
        except OSError as err:          # ssl.SSLError included
            raise self._fail(self._explain(err, what)) from None
        if not data:
            if not self._subscribed:
                raise self._fail(self._explain(ConnectionResetError(), what))
            raise self._fail(f"VDSM closed the connection ({what})")
        try:
            return self._decoder.feed(data)
        except FrameError as err:
            raise self._fail(f"VDSM sent bytes that are not STOMP ({err})") from None

    def _fail(self, reason: str) -> LinkError:
        self.close()
        return LinkError(reason)

    @property
    def closed(self) -> bool:
        return self._sock is None

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass
