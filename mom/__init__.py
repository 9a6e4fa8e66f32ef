"""MOM, the Memory Overcommitment Manager: a policy engine for KVM hosts.

``mom.MOM(conf_file)`` is the public API (see :mod:`mom.app`).  It is
imported on first use, so that ``import mom.collectors`` and friends stay
light.
"""
from typing import Any

__all__ = ["MOM", "ConfigError"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "MOM":
        from mom.app import MOM
        return MOM
    if name == "ConfigError":
        from mom.config import ConfigError
        return ConfigError
    raise AttributeError(f"module 'mom' has no attribute {name!r}")
