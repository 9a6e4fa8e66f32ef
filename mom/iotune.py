"""Per-disk I/O limits as a policy sees them in ``guest.io_tune``.

Each device carries the limits its VM's QoS policy allows (``guaranteed``,
``maximum``) and the limits in force (``current``).  A policy calls the
setters (``setTotalBytesSec`` ...) to choose new limits; the IoTune
controller sends the devices whose chosen limits differ from the current
ones.
"""
from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from mom.hypervisor.base import IOTUNE_KEYS


def _limits(values: Mapping[str, Any] | None) -> SimpleNamespace:
    values = values or {}
    return SimpleNamespace(**{k: int(values.get(k, 0) or 0) for k in IOTUNE_KEYS})


class IoTuneDevice:
    """One disk: ``name``, ``path``, ``guaranteed``, ``maximum``, ``current``."""

    def __init__(self, name: str, path: str,
                 guaranteed: Mapping[str, Any] | None = None,
                 maximum: Mapping[str, Any] | None = None,
                 current: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.path = path
        self.guaranteed = _limits(guaranteed)
        self.maximum = _limits(maximum)
        self.current = _limits(current)
        self.tune = dict(vars(self.current))     # what the policy chose

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "IoTuneDevice":
        """Build from a hypervisor ``iotune`` section entry."""
        return cls(data.get("name", ""), data.get("path", ""),
                   data.get("guaranteed"), data.get("maximum"), data.get("current"))

    def changed(self) -> bool:
        return self.tune != vars(self.current)

    def discard(self) -> None:
        """Forget the limits chosen since ``current`` (an evaluation failed)."""
        self.tune = dict(vars(self.current))

    def as_tunable(self) -> dict[str, Any]:
        """The shape VDSM's setIoTune takes for one device."""
        return {"name": self.name, "path": self.path, "ioTune": dict(self.tune)}

    def _set(self, key: str, value: Any) -> Any:
        self.tune[key] = int(value)
        return value

    # The setters policies call (names as in upstream MOM policies).
    def setTotalBytesSec(self, value: Any) -> Any:
        return self._set("total_bytes_sec", value)

    def setReadBytesSec(self, value: Any) -> Any:
        return self._set("read_bytes_sec", value)

    def setWriteBytesSec(self, value: Any) -> Any:
        return self._set("write_bytes_sec", value)

    def setTotalIopsSec(self, value: Any) -> Any:
        return self._set("total_iops_sec", value)

    def setReadIopsSec(self, value: Any) -> Any:
        return self._set("read_iops_sec", value)

    def setWriteIopsSec(self, value: Any) -> Any:
        return self._set("write_iops_sec", value)

    def __repr__(self) -> str:
        return f"<IoTuneDevice {self.name} {self.tune}>"
