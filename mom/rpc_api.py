"""What MOM's RPC server exports: each method's argument types, checked at
the boundary, and the XML-RPC encoding of calls and replies.

VDSM and scripts reach MOM only through this table.  A call with an unknown
name, the wrong number of arguments or an argument of the wrong type (for
example ``setNamedPolicy(None, "1")``) is answered with an XML-RPC fault
and never reaches MOM, so it changes nothing.  ``system.listMethods``,
``system.methodHelp`` and ``system.methodSignature`` describe the table.

Pure logic: no sockets here (see :mod:`mom.rpc`).
"""
from __future__ import annotations

import itertools
import logging
import threading
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mom.reporting import Conditions

log = logging.getLogger("mom.rpc")

# Fault codes of the XML-RPC interoperability convention.
FAULT_PARSE = -32700
FAULT_INVALID_REQUEST = -32600
FAULT_NO_METHOD = -32601
FAULT_BAD_PARAMS = -32602
FAULT_INTERNAL = -32603
FAULT_APPLICATION = -32500

#: Longest policy name accepted (policy names are file names in policy-dir).
MAX_NAME_LENGTH = 255

_INT32 = 2 ** 31


def _is_string(value: Any) -> bool:
    return isinstance(value, str)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_nil(value: Any) -> bool:
    return value is None


_KINDS: dict[str, Callable[[Any], bool]] = {
    "string": _is_string, "int": _is_int, "nil": _is_nil}


@dataclass(frozen=True)
class Param:
    """One argument: its name and the XML-RPC types it may have."""

    name: str
    kinds: tuple[str, ...]
    is_name: bool = False        # a policy name: non-empty, printable, bounded

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable, or None."""
        if not any(_KINDS[kind](value) for kind in self.kinds):
            return (f"{self.name} must be {' or '.join(self.kinds)}, "
                    f"not {_kind_of(value)}")
        if self.is_name and not (0 < len(value) <= MAX_NAME_LENGTH and value.isprintable()):
            return (f"{self.name} must be 1-{MAX_NAME_LENGTH} printable characters, "
                    f"not {value[:40]!r}")
        return None


@dataclass(frozen=True)
class Method:
    """One exported method as the RPC boundary knows it."""

    name: str
    params: tuple[Param, ...]
    returns: str
    help: str
    mutates: bool = False        # changes MOM's state: such calls run one at a time

    def signature(self) -> str:
        args = ", ".join(f"{p.name}: {'|'.join(p.kinds)}" for p in self.params)
        return f"{self.name}({args}) -> {self.returns}"

    def signatures(self) -> list[list[str]]:
        """XML-RPC ``methodSignature``: one [return, arg...] list per type combination."""
        return [[self.returns, *combo]
                for combo in itertools.product(*(p.kinds for p in self.params))]


_TEXT = Param("text", ("string", "nil"))
_NAME = Param("name", ("string",), is_name=True)

METHODS: tuple[Method, ...] = (
    Method("ping", (), "boolean", "True when MOM answers."),
    Method("getStatistics", (), "struct",
           "The latest samples: {'host': {field: value}, 'guests': {name: {field: value}}}."),
    Method("getHostStatistics", (), "struct",
           "The host's latest sample only ({field: value}): what VDSM's host "
           "statistics need, without every guest's samples."),
    Method("getActiveGuests", (), "array", "Names of the guests MOM manages now."),
    Method("setPolicy", (_TEXT,), "boolean",
           "Replace the default policy (50_main_) with text; nil removes it. "
           "False (and no change) if the text does not parse.", mutates=True),
    Method("setNamedPolicy", (_NAME, _TEXT), "boolean",
           "Set the policy called name to text; nil removes it. "
           "False (and no change) if the text does not parse.", mutates=True),
    Method("getPolicy", (), "string", "Every policy's text, joined in evaluation order."),
    Method("getNamedPolicies", (), "struct", "{name: text} of every policy in force."),
    Method("resetPolicies", (), "boolean",
           "Reload the policies from [main] policy / policy-dir; False if a file "
           "was refused.", mutates=True),
    Method("setVerbosity", (Param("level", ("string", "int")),), "boolean",
           "Set MOM's log level: debug, info, warn, error, critical or 0-5. "
           "False if the level is unknown.", mutates=True),
)

#: Names of MOM's exported methods, in the table's order.
EXPORTED: tuple[str, ...] = tuple(m.name for m in METHODS)

_SYSTEM: tuple[Method, ...] = (
    Method("system.listMethods", (), "array", "Names of every method this server answers."),
    Method("system.methodHelp", (Param("method", ("string",)),), "string",
           "What a method does, with its argument types."),
    Method("system.methodSignature", (Param("method", ("string",)),), "array",
           "A method's XML-RPC signatures: [[return type, argument types...], ...]."),
)

_TABLE: dict[str, Method] = {m.name: m for m in (*METHODS, *_SYSTEM)}


def _kind_of(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int"
    if isinstance(value, str):
        return "string"
    return {bytes: "base64", float: "double", list: "array", dict: "struct"}.get(
        type(value), type(value).__name__)


def check_call(method: str, params: tuple[Any, ...]) -> Method:
    """The table entry for a call; xmlrpc Fault if the call is not acceptable."""
    spec = _TABLE.get(method) if isinstance(method, str) else None
    if spec is None:
        raise xmlrpc.client.Fault(FAULT_NO_METHOD, f"method {method!r} is not supported "
                                                   "(system.listMethods lists them)")
    if len(params) != len(spec.params):
        raise xmlrpc.client.Fault(
            FAULT_BAD_PARAMS, f"{spec.signature()}: takes {len(spec.params)} "
                              f"argument(s), {len(params)} given")
    for param, value in zip(spec.params, params):
        problem = param.problem(value)
        if problem is not None:
            raise xmlrpc.client.Fault(FAULT_BAD_PARAMS, f"{spec.signature()}: {problem}")
    return spec


class _Marshaller(xmlrpc.client.Marshaller):
    """Counters beyond 32 bits are sent as ``<i8>`` (Python's client reads them)."""

    dispatch = dict(xmlrpc.client.Marshaller.dispatch)

    def dump_int(self, value: int, write: Any) -> None:
        tag = "int" if -_INT32 <= value < _INT32 else "i8"
        write(f"<value><{tag}>{int(value)}</{tag}></value>\n")

    dispatch[int] = dump_int


def encode_result(result: Any) -> bytes:
    """An XML-RPC methodResponse carrying ``result`` (nil and i8 allowed)."""
    body = _Marshaller("utf-8", allow_none=True).dumps((result,))
    text = f"<?xml version='1.0'?>\n<methodResponse>\n{body}</methodResponse>\n"
    return text.encode("utf-8", "xmlcharrefreplace")


def encode_fault(code: int, message: str) -> bytes:
    return xmlrpc.client.dumps(xmlrpc.client.Fault(code, message), methodresponse=True,
                               allow_none=True).encode("utf-8", "xmlcharrefreplace")


class Dispatcher:
    """Decodes an XML-RPC request, checks it against the table, calls the
    target and encodes the reply.

    Calls that change MOM's state (``mutates``) run one at a time, as they
    did when the server had a single thread; reads run concurrently.
    """

    def __init__(self, target: Any) -> None:
        missing = [name for name in EXPORTED if not callable(getattr(target, name, None))]
        if missing:
            raise TypeError(f"RPC target lacks the exported methods {missing}")
        self._functions = {name: getattr(target, name) for name in EXPORTED}
        self._write_lock = threading.Lock()
        self._failures = Conditions(log)

    def handle(self, body: bytes) -> bytes:
        """One request body in, one response body out; never raises."""
        try:
            params, method = xmlrpc.client.loads(body, use_builtin_types=True)
        except Exception as err:        # expat, bad values: nothing is called
            return encode_fault(FAULT_PARSE, f"not an XML-RPC request: {err}")
        if method is None:
            return encode_fault(FAULT_INVALID_REQUEST, "not an XML-RPC methodCall")
        try:
            result = self.call(method, params)
        except xmlrpc.client.Fault as fault:
            return encode_fault(fault.faultCode, fault.faultString)
        try:
            return encode_result(result)
        except Exception as err:
            log.error("RPC %s: the reply cannot be sent over XML-RPC: %s", method, err)
            return encode_fault(FAULT_INTERNAL, f"{method}: reply not encodable: {err}")

    def call(self, method: str, params: tuple[Any, ...]) -> Any:
        """Check and run one call; xmlrpc Fault for a refused or failed call."""
        spec = check_call(method, params)
        if spec.name.startswith("system."):
            return self._system(spec.name, params)
        function = self._functions[spec.name]
        try:
            if spec.mutates:
                with self._write_lock:
                    return function(*params)
            return function(*params)
        except Exception as err:
            self._report(spec.name, err)
            raise xmlrpc.client.Fault(FAULT_APPLICATION,
                                      f"{type(err).__name__}: {err}") from None

    def _report(self, method: str, err: Exception) -> None:
        # A traceback the first time a method fails this way; later ones briefly.
        self._failures.fail((method, type(err).__name__), f"RPC {method} failed: "
                            f"{type(err).__name__}: {err}", level=logging.ERROR,
                            exc_info=err, summary="failed")

    @staticmethod
    def _system(name: str, params: tuple[Any, ...]) -> Any:
        if name == "system.listMethods":
            return sorted(_TABLE)
        spec = _TABLE.get(params[0])
        if spec is None:
            raise xmlrpc.client.Fault(FAULT_NO_METHOD, f"method {params[0]!r} is not supported")
        if name == "system.methodHelp":
            return f"{spec.signature()}\n{spec.help}"
        return spec.signatures()
