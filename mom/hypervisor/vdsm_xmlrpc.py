"""``hypervisor-interface = vdsmxmlrpc`` (also ``vdsmxmlrpcbulk``): VDSM's
XML-RPC API over HTTPS, for VDSM versions that still serve it.

Verbs (positional): ``ping``, ``getAllVmStats`` (``statsList``),
``getIoTunePolicy(vmId)`` (``ioTunePolicyList``; per VM, each cached
``iotune_refresh`` seconds), ``setBalloonTarget(vmId, target)``,
``vmSetCpuTuneQuota(vmId, quota)``, ``vmSetCpuTunePeriod(vmId, period)``,
``setIoTune(vmId, tunables)``, ``setKsmTune(params)``.  Every reply is a
dict with ``status: {code, message}``; a non-zero code is an error.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mom.hypervisor.base import GuestGoneError, HypervisorError
from mom.hypervisor.vdsm import reply_list, reply_status
from mom.hypervisor.vdsm_link import VDSM_CONF, RemoteError
from mom.hypervisor.vdsm_rpc import (
    IOTUNE_RETRY, IoTuneInfo, VdsmRpcHypervisor, VdsmUnreachable, backoff,
    endpoint_from_settings, wants_iotune)
from mom.hypervisor.xmlrpc_client import XmlRpcClient

if TYPE_CHECKING:
    from mom.config import Settings

log = logging.getLogger(__name__)

#: action -> XML-RPC method
METHODS: dict[str, str] = {
    "ping": "ping",
    "all_stats": "getAllVmStats",
    "iotune_policy": "getIoTunePolicy",
    "balloon": "setBalloonTarget",
    "quota": "vmSetCpuTuneQuota",
    "period": "vmSetCpuTunePeriod",
    "io_tune": "setIoTune",
    "ksm": "setKsmTune",
}


class VdsmXmlRpcHypervisor(VdsmRpcHypervisor):
    """VDSM over XML-RPC/HTTPS; see :mod:`mom.hypervisor.vdsm_rpc`."""

    name = "vdsmxmlrpc"
    protocol = "XML-RPC"
    VERBS = METHODS

    def _open(self) -> XmlRpcClient:
        return XmlRpcClient.connect(self.endpoint)

    def _send(self, client: XmlRpcClient, action: str, args: tuple[Any, ...]) -> Any:
        reply = client.call(METHODS[action], *args)
        code, message = reply_status(reply)
        if code:
            raise RemoteError(code, message)
        return reply

    def _all_vm_stats(self) -> Any:
        reply = self._invoke("all_stats", None)
        return reply.get("statsList") if isinstance(reply, Mapping) else reply

    def _refresh_iotune(self, vm_ids: list[str]) -> None:
        now = self._clock()
        for vm_id in vm_ids:
            with self._io_lock:
                known = self._io.get(vm_id)
            if known is not None and now < known.next_fetch:
                continue
            try:
                reply = self._invoke("iotune_policy", vm_id, vm_id)
            except VdsmUnreachable:
                return          # logged once already; the rest is tried next cycle
            except HypervisorError as err:
                level = logging.INFO if isinstance(err, GuestGoneError) else logging.WARNING
                self._once.fail((vm_id, "iotune"), f"{err}; its disks keep the I/O "
                                "policy known before (none if new) until the next try",
                                level=level, summary="iotune")
                retry = now + min(self.iotune_refresh, IOTUNE_RETRY)
                with self._io_lock:
                    if known is None:
                        self._io[vm_id] = IoTuneInfo([], None, retry)
                    else:
                        known.next_fetch = retry
                continue
            self._once.ok((vm_id, "iotune"))
            policy = reply_list(reply, "ioTunePolicyList")
            with self._io_lock:
                current = known.current if known is not None else None
                self._io[vm_id] = IoTuneInfo(policy, current, now + self.iotune_refresh)


def create(settings: Settings, *,
           vdsm_conf: str = VDSM_CONF) -> VdsmXmlRpcHypervisor:
    """Build the back-end from mom.conf (``[vdsm]``, ``[guest] collectors``)."""
    return VdsmXmlRpcHypervisor(endpoint_from_settings(settings, vdsm_conf),
                                iotune=wants_iotune(settings),
                                **backoff(settings))
