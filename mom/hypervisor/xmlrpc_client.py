"""XML-RPC to VDSM over HTTPS (older VDSM), with stdlib ``xmlrpc.client``.

Same TLS as the JSON-RPC link (VDSM's key and certificate presented, VDSM's
certificate checked against VDSM's CA, host name not checked) and the same
failure classes: a transport failure is a :class:`LinkError` (the HTTP
connection is closed), a timeout a :class:`CallTimeout`, an XML-RPC fault
a :class:`RemoteError`.  The reply is VDSM's status-carrying dict, checked
by the back-end.
"""
from __future__ import annotations

import http.client
import socket
import ssl
import threading
import xmlrpc.client
from typing import Any
from xml.parsers.expat import ExpatError

from mom.hypervisor.vdsm_link import (
    CallTimeout, Endpoint, LinkError, RemoteError, explain, tls_context)

_NOT_XMLRPC_HINT = ("; does this VDSM still serve XML-RPC? VDSM 4.x speaks only "
                    "JSON-RPC: use hypervisor-interface = vdsmjsonrpcclient")


class _Transport(xmlrpc.client.Transport):
    """Plain HTTP with the request timeout on the socket."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        conn = super().make_connection(host)
        conn.timeout = self._timeout
        return conn


class _SafeTransport(xmlrpc.client.SafeTransport):
    """HTTPS with VDSM's TLS context and the request timeout."""

    def __init__(self, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(context=context)
        self._timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPSConnection:
        conn = super().make_connection(host)
        conn.timeout = self._timeout
        return conn


class XmlRpcClient:
    """VDSM's XML-RPC binding; one keep-alive HTTP(S) connection, one call
    at a time.  The TLS files are read when it is built (:meth:`connect`),
    so a key MOM cannot read is reported before any call."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        if endpoint.tls:
            transport: xmlrpc.client.Transport = _SafeTransport(
                tls_context(endpoint), endpoint.timeout)
            scheme = "https"
        else:
            transport = _Transport(endpoint.timeout)
            scheme = "http"
        self._transport = transport
        self._proxy: xmlrpc.client.ServerProxy | None = xmlrpc.client.ServerProxy(
            f"{scheme}://{endpoint.address()}/RPC2", transport=transport, allow_none=True)
        self._lock = threading.Lock()

    @classmethod
    def connect(cls, endpoint: Endpoint) -> XmlRpcClient:
        return cls(endpoint)

    def call(self, method: str, *args: Any) -> Any:
        with self._lock:
            if self._proxy is None:
                raise LinkError("the connection to VDSM is closed")
            try:
                return getattr(self._proxy, method)(*args)
            except xmlrpc.client.Fault as fault:
                raise RemoteError(fault.faultCode if isinstance(fault.faultCode, int) else -1,
                                  str(fault.faultString)) from None
            except (socket.timeout, TimeoutError):
                self._transport.close()         # HTTP cannot skip a late reply
                raise CallTimeout(f"no reply to {method} within "
                                  f"{self.endpoint.timeout:g} s") from None
            except xmlrpc.client.ProtocolError as err:
                self._transport.close()
                raise LinkError(f"VDSM answered {method} with HTTP {err.errcode} "
                                f"{err.errmsg}{_NOT_XMLRPC_HINT}") from None
            except (http.client.RemoteDisconnected, http.client.BadStatusLine) as err:
                self._transport.close()
                raise LinkError(f"VDSM closed the connection ({method}: {err})"
                                + _NOT_XMLRPC_HINT) from None
            except (http.client.HTTPException, xmlrpc.client.ResponseError,
                    ExpatError) as err:
                self._transport.close()
                raise LinkError(f"bad HTTP reply to {method}: {err}") from None
            except OSError as err:
                self._transport.close()
                raise LinkError(explain(err, self.endpoint)) from None
            except (OverflowError, TypeError) as err:
                # Arguments XML-RPC cannot carry: this call only.
                raise RemoteError(-1, f"cannot send {method}{args!r}: {err}") from None

    @property
    def closed(self) -> bool:
        return self._proxy is None

    def close(self) -> None:
        self._proxy = None
        self._transport.close()
