"""``hypervisor-interface = vdsmjsonrpcclient`` (also ``vdsmjsonrpc``,
``vdsmjsonrpcbulk``): VDSM's JSON-RPC API over STOMP, as VDSM's own
mom.conf asks for in process mode.

Verbs (params by name, as VDSM's schema names them): ``Host.ping2``,
``Host.getAllVmStats`` (a list of VmStats), ``Host.getAllVmIoTunePolicies``
(VM id -> ``{'policy': [...], 'current_values': [...]}``, fetched at most
once per ``iotune_refresh`` seconds for all VMs), ``VM.setBalloonTarget``
(vmID, target), ``VM.setCpuTuneQuota`` (vmID, quota),
``VM.setCpuTunePeriod`` (vmID, period), ``VM.setIoTune`` (vmID, tunables),
``Host.setKsmTune`` (tuningParams).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mom.hypervisor.stomp_jsonrpc import StompJsonRpcClient
from mom.hypervisor.vdsm_link import VDSM_CONF
from mom.hypervisor.base import HypervisorError
from mom.hypervisor.vdsm_rpc import (
    IOTUNE_RETRY, IoTuneInfo, VdsmRpcHypervisor, VdsmUnreachable, as_list,
    backoff, endpoint_from_settings, wants_iotune)

if TYPE_CHECKING:
    from mom.config import Settings

log = logging.getLogger(__name__)

#: action -> (JSON-RPC method, parameter names in order)
METHODS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ping": ("Host.ping2", ()),
    "all_stats": ("Host.getAllVmStats", ()),
    "all_iotune": ("Host.getAllVmIoTunePolicies", ()),
    "balloon": ("VM.setBalloonTarget", ("vmID", "target")),
    "quota": ("VM.setCpuTuneQuota", ("vmID", "quota")),
    "period": ("VM.setCpuTunePeriod", ("vmID", "period")),
    "io_tune": ("VM.setIoTune", ("vmID", "tunables")),
    "ksm": ("Host.setKsmTune", ("tuningParams",)),
}


class VdsmJsonRpcHypervisor(VdsmRpcHypervisor):
    """VDSM over JSON-RPC/STOMP; see :mod:`mom.hypervisor.vdsm_rpc`."""

    name = "vdsmjsonrpcclient"
    protocol = "JSON-RPC/STOMP"
    VERBS = {action: method for action, (method, _) in METHODS.items()}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._io_next = 0.0         # when the policies may be fetched again
        self._io_fetched = False

    def _open(self) -> StompJsonRpcClient:
        return StompJsonRpcClient.connect(self.endpoint)

    def _send(self, client: StompJsonRpcClient, action: str, args: tuple[Any, ...]) -> Any:
        method, names = METHODS[action]
        return client.call(method, dict(zip(names, args)))

    def _refresh_iotune(self, vm_ids: list[str]) -> None:
        now = self._clock()
        if self._io_fetched and now < self._io_next:
            return
        self._io_fetched = True
        try:
            reply = self._invoke("all_iotune", None)
        except HypervisorError as err:
            self._io_next = now + min(self.iotune_refresh, IOTUNE_RETRY)
            if isinstance(err, VdsmUnreachable):
                return          # logged once already
            self._once.fail(("", "iotune"), f"{err}; disks keep the I/O policies "
                            "known before (none for new VMs) until the next try",
                            summary="iotune")
            return
        self._io_next = now + self.iotune_refresh
        if not isinstance(reply, Mapping):
            self._once.fail(("", "iotune"), "VDSM's Host.getAllVmIoTunePolicies reply "
                            f"is not a map of VMs ({type(reply).__name__}); ignored",
                            summary="iotune")
            return
        self._once.ok(("", "iotune"))
        fresh = {}
        for vm_id, item in reply.items():
            if isinstance(item, Mapping):
                fresh[str(vm_id)] = IoTuneInfo(as_list(item.get("policy")),
                                               as_list(item.get("current_values")),
                                               self._io_next)
        with self._io_lock:
            self._io = fresh


def create(settings: Settings, *,
           vdsm_conf: str = VDSM_CONF) -> VdsmJsonRpcHypervisor:
    """Build the back-end from mom.conf (``[vdsm]``, ``[guest] collectors``)."""
    return VdsmJsonRpcHypervisor(endpoint_from_settings(settings, vdsm_conf),
                                 iotune=wants_iotune(settings),
                                 **backoff(settings))
