"""Reaching VDSM over the network: where, with which TLS files, and what
to say when it does not work.

Both RPC back-ends (JSON-RPC over STOMP, XML-RPC over HTTPS) connect to the
same port with the same files, and their users hit the same problems: VDSM
not started yet, momd not running as VDSM's user and so unable to read
VDSM's key, a CA that does not match.  :func:`explain` turns each into one
sentence with a hint; :class:`Backoff` spaces the retries.
"""
from __future__ import annotations

import configparser
import errno
import os
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

#: VDSM's own configuration, read for ``[vars] ssl`` when mom.conf does not say.
VDSM_CONF = "/etc/vdsm/vdsm.conf"


class LinkError(Exception):
    """The connection to VDSM cannot be made or was lost; the message is
    the reason, with a hint when there is one."""


class CallTimeout(Exception):
    """VDSM did not answer one request in time (the connection is kept)."""


class RemoteError(Exception):
    """VDSM answered with an error: a JSON-RPC ``error``, a non-zero
    ``status`` code or an XML-RPC fault."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"code {code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Endpoint:
    """VDSM's address and the TLS files MOM presents (``[vdsm]`` section)."""
    host: str = "127.0.0.1"
    port: int = 54321
    tls: bool = True
    key_file: str = ""
    cert_file: str = ""
    ca_file: str = ""
    timeout: float = 10.0

    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def describe(self) -> str:
        """'VDSM at 127.0.0.1:54321 (TLS: key K, cert C, CA A)'."""
        if not self.tls:
            return f"VDSM at {self.address()} (plain TCP, [vdsm] ssl off)"
        return (f"VDSM at {self.address()} (TLS: key {self.key_file}, "
                f"cert {self.cert_file}, CA {self.ca_file})")


# ---------------------------------------------------------------------------
# Whether to use TLS
# ---------------------------------------------------------------------------

def parse_bool(value: str) -> bool:
    """configparser's booleans (true/false, yes/no, on/off, 1/0)."""
    lowered = value.strip().lower()
    if lowered not in configparser.ConfigParser.BOOLEAN_STATES:
        raise ValueError(f"{value!r} is not true or false")
    return configparser.ConfigParser.BOOLEAN_STATES[lowered]


def vdsm_uses_ssl(vdsm_conf: str = VDSM_CONF) -> bool:
    """VDSM's own ``[vars] ssl``: true when the file, the section or the key
    is missing (VDSM's default), or when the value is not a boolean."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(vdsm_conf, encoding="utf-8") as handle:
            parser.read_file(handle, source=vdsm_conf)
        value = parser.get("vars", "ssl", fallback="true")
        return parse_bool(value)
    except (OSError, UnicodeDecodeError, configparser.Error, ValueError):
        return True


# ---------------------------------------------------------------------------
# TLS and sockets
# ---------------------------------------------------------------------------

def _whoami() -> str:
    try:
        import pwd
        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return f"uid {os.geteuid()}"


def _check_readable(path: str, what: str) -> None:
    """Open the file once so that the error names it (ssl's does not)."""
    try:
        with open(path, "rb"):
            pass
    except OSError as err:
        reason = err.strerror or str(err)
        hint = ""
        if err.errno in (errno.EACCES, errno.EPERM):
            hint = (f"; momd runs as {_whoami()}: run it as VDSM's user (vdsm, "
                    "as mom-vdsm.service does) or make the file readable by it")
        elif err.errno == errno.ENOENT:
            hint = "; check [vdsm] pki-dir and the *-file keys"
        raise LinkError(f"cannot read the {what} file {path}: {reason}{hint}") from None


def tls_context(endpoint: Endpoint) -> ssl.SSLContext:
    """Mutual TLS as VDSM expects: MOM presents VDSM's key and certificate
    and checks VDSM's certificate against VDSM's CA, not its host name (the
    certificate names the host's FQDN, MOM connects to 127.0.0.1)."""
    for path, what in ((endpoint.key_file, "key"), (endpoint.cert_file, "certificate"),
                       (endpoint.ca_file, "CA certificate")):
        _check_readable(path, what)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_verify_locations(cafile=endpoint.ca_file)
    except (ssl.SSLError, OSError) as err:
        raise LinkError(f"the CA file {endpoint.ca_file} does not load: {err}") from None
    try:
        context.load_cert_chain(endpoint.cert_file, endpoint.key_file)
    except (ssl.SSLError, OSError) as err:
        raise LinkError(f"the certificate {endpoint.cert_file} and key "
                        f"{endpoint.key_file} do not load together: {err}") from None
    return context


_REFUSAL_ALERTS = ("UNKNOWN_CA", "BAD_CERTIFICATE", "CERTIFICATE_REQUIRED",
                   "CERTIFICATE_UNKNOWN", "HANDSHAKE_FAILURE", "ACCESS_DENIED")


def is_certificate_refusal(err: BaseException) -> bool:
    """A TLS alert by which VDSM says it does not accept MOM's certificate."""
    reason = (getattr(err, "reason", None) or "").upper()
    return isinstance(err, ssl.SSLError) and any(a in reason for a in _REFUSAL_ALERTS)


def certificate_refused(endpoint: Endpoint) -> str:
    """The same words however the refusal shows (an alert, or the
    connection closed), so that it is logged once."""
    return (f"VDSM refused MOM's certificate {endpoint.cert_file}; it must be VDSM's "
            "own, signed by the CA VDSM trusts")


def explain(err: BaseException, endpoint: Endpoint) -> str:
    """One sentence for a failure to talk to VDSM, with a hint."""
    if isinstance(err, LinkError):
        return str(err)
    if isinstance(err, ssl.SSLCertVerificationError):
        return (f"VDSM's certificate is not accepted with the CA file "
                f"{endpoint.ca_file} ({err.verify_message or err.reason}); "
                "[vdsm] ca-cert-file must be the CA that signed VDSM's certificate")
    if isinstance(err, ssl.SSLError):
        reason = (err.reason or str(err)).upper()
        if "WRONG_VERSION_NUMBER" in reason or "RECORD_LAYER" in reason:
            return (f"TLS handshake failed ({err.reason}): VDSM does not speak TLS "
                    "on this port; if VDSM's ssl is off, set [vdsm] ssl = false")
        if is_certificate_refusal(err):
            return certificate_refused(endpoint)
        return f"TLS error: {err.reason or err}"
    if isinstance(err, ConnectionRefusedError):
        return "connection refused (is VDSM running and listening on this port?)"
    if isinstance(err, (socket.timeout, TimeoutError)):
        return f"no answer within {endpoint.timeout:g} s ([vdsm] request-timeout)"
    if isinstance(err, socket.gaierror):
        return f"cannot resolve host {endpoint.host!r}: {err.strerror or err}"
    if isinstance(err, OSError):
        return err.strerror or str(err) or type(err).__name__
    return f"{type(err).__name__}: {err}"


def open_socket(endpoint: Endpoint) -> socket.socket:
    """A connected socket (TLS handshake done when TLS is on), with the
    request timeout set; raises LinkError and leaves no socket open."""
    context = tls_context(endpoint) if endpoint.tls else None
    try:
        sock = socket.create_connection((endpoint.host, endpoint.port),
                                        timeout=endpoint.timeout)
    except OSError as err:
        raise LinkError(explain(err, endpoint)) from None
    # Small requests answered at once: no Nagle delay.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if context is None:
        return sock
    try:
        return context.wrap_socket(sock, server_hostname=None)
    except OSError as err:          # ssl.SSLError is an OSError
        sock.close()
        if isinstance(err, (ssl.SSLEOFError, ConnectionResetError, BrokenPipeError)):
            raise LinkError(
                "VDSM closed the connection during the TLS handshake: either VDSM "
                "does not use TLS on this port (then set [vdsm] ssl = false) or "
                + certificate_refused(endpoint)) from None
        raise LinkError(explain(err, endpoint)) from None


# ---------------------------------------------------------------------------
# Retries
# ---------------------------------------------------------------------------

class Backoff:
    """Delays between connection attempts: ``initial`` seconds doubling up
    to ``maximum``; :meth:`due` says whether an attempt may be made now."""

    def __init__(self, initial: float = 1.0, maximum: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.initial = initial
        self.maximum = maximum
        self._clock = clock
        self._delay = initial
        self._next: float | None = None
        self.failures = 0

    def due(self) -> bool:
        return self._next is None or self._clock() >= self._next

    def remaining(self) -> float:
        return 0.0 if self._next is None else max(0.0, self._next - self._clock())

    def failed(self) -> float:
        """Record a failed attempt; the delay until the next one."""
        delay = self._delay
        self._next = self._clock() + delay
        self._delay = min(self.maximum, delay * 2)
        self.failures += 1
        return delay

    def reset(self) -> None:
        self._delay = self.initial
        self._next = None
        self.failures = 0
