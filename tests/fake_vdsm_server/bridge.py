"""VDSM's two RPC bindings over the fake's state (``fakevdsm.FakeVdsm``).

The state speaks VDSM's in-process API (``API.Global()``, ``API.VM(id)``,
``supervdsm``), whose replies carry ``status``.  As VDSM's own bridge
does, the JSON-RPC binding turns a non-zero status into a JSON-RPC
``error`` and otherwise returns the verb's value as the schema types it
(``Host.getAllVmStats`` -> list of VmStats, setters -> TaskStatus or
nothing); the XML-RPC binding hands the status-carrying dicts over as they
are.  Verb names, parameter names and shapes follow
``shared/reference/vdsm-api.yml`` and VDSM's XML-RPC names.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

#: JSON-RPC 2.0 error codes VDSM's server uses for bad requests
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

DONE = {"code": 0, "message": "Done"}


class RpcError(Exception):
    """Becomes a JSON-RPC ``error`` (or an XML-RPC status / fault)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _checked(reply: Any) -> Mapping[str, Any]:
    status = reply.get("status", DONE) if isinstance(reply, Mapping) else DONE
    if status.get("code", 0):
        raise RpcError(int(status["code"]), str(status.get("message", "")))
    return reply


def _io_policies(state: Any) -> dict[str, Any]:
    """Host.getAllVmIoTunePolicies: VM id -> BulkIoTunePolicy (policy and
    current values, lists of VmDiskDeviceTuneLimits / VmDiskDeviceTuneParams)."""
    with state.lock:
        failed = state._enter("getAllVmIoTunePolicies", None)
        if failed:
            _checked(failed)
        return {vm.vm_id: {"policy": vm.io_tune_policy(), "current_values": vm.io_tune()}
                for vm in state.vms.values() if vm.status == "Up"}


def _ksm_tune(state: Any, params: Any) -> None:
    if not isinstance(params, Mapping):
        raise RpcError(INVALID_PARAMS, "tuningParams must be a KsmTuneParams object")
    try:
        state.supervdsm.getProxy().ksmTune(dict(params))
    except Exception as err:        # supervdsm raises; VDSM reports it
        raise RpcError(INTERNAL_ERROR, f"{type(err).__name__}: {err}") from None


# name -> (parameter names, handler(state, *args) -> result)
JSON_METHODS: dict[str, tuple[tuple[str, ...], Callable[..., Any]]] = {
    "Host.ping2": ((), lambda s: _checked(s.api.Global().ping()) and True),
    "Host.getAllVmStats": ((), lambda s: _checked(s.api.Global().getAllVmStats())["statsList"]),
    "Host.getAllVmIoTunePolicies": ((), _io_policies),
    "Host.setKsmTune": (("tuningParams",), lambda s, p: _ksm_tune(s, p) or {}),
    "VM.setBalloonTarget": (("vmID", "target"),
                            lambda s, vm, t: _checked(s.api.VM(vm).setBalloonTarget(t))
                            and True),
    "VM.setCpuTuneQuota": (("vmID", "quota"),
                           lambda s, vm, q: _checked(s.api.VM(vm).setCpuTuneQuota(q))
                           and dict(DONE)),
    "VM.setCpuTunePeriod": (("vmID", "period"),
                            lambda s, vm, p: _checked(s.api.VM(vm).setCpuTunePeriod(p))
                            and dict(DONE)),
    "VM.setIoTune": (("vmID", "tunables"),
                     lambda s, vm, t: _checked(s.api.VM(vm).setIoTune(t)) and dict(DONE)),
    "VM.getIoTunePolicy": (("vmID",),
                           lambda s, vm: _checked(s.api.VM(vm).getIoTunePolicy())
                           ["ioTunePolicyList"]),
    "VM.getIoTune": (("vmID",), lambda s, vm: _checked(s.api.VM(vm).getIoTune())["ioTuneList"]),
}


def call_json(state: Any, method: str, params: Any) -> Any:
    """The JSON-RPC ``result`` of one request, or RpcError."""
    entry = JSON_METHODS.get(method)
    if entry is None:
        raise RpcError(METHOD_NOT_FOUND, f"The method does not exist: {method}")
    names, handler = entry
    if params is None:
        params = {}
    if not isinstance(params, Mapping) or set(params) != set(names):
        raise RpcError(INVALID_PARAMS, f"{method} takes params {list(names)}, got {params!r}")
    return handler(state, *(params[name] for name in names))


def _xml_ksm(state: Any, params: Any) -> dict[str, Any]:
    try:
        _ksm_tune(state, params)
    except RpcError as err:
        return {"status": {"code": err.code, "message": err.message}}
    return {"status": dict(DONE)}


# name -> handler(state, *positional args) -> status-carrying dict
XML_METHODS: dict[str, Callable[..., Any]] = {
    "ping": lambda s: s.api.Global().ping(),
    "list": lambda s, full=False, vms=(): s.api.Global().getVMList(fullStatus=full, vmList=vms),
    "getAllVmStats": lambda s: s.api.Global().getAllVmStats(),
    "setBalloonTarget": lambda s, vm, target: s.api.VM(vm).setBalloonTarget(target),
    "vmSetCpuTuneQuota": lambda s, vm, quota: s.api.VM(vm).setCpuTuneQuota(quota),
    "vmSetCpuTunePeriod": lambda s, vm, period: s.api.VM(vm).setCpuTunePeriod(period),
    "getIoTunePolicy": lambda s, vm: s.api.VM(vm).getIoTunePolicy(),
    "setIoTune": lambda s, vm, tunables: s.api.VM(vm).setIoTune(tunables),
    "setKsmTune": _xml_ksm,
}
