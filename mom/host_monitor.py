"""The host's monitor: the [host] collectors over /proc and /sys."""
from __future__ import annotations

import configparser

from mom import collectors
from mom.collectors.base import CollectorContext
from mom.config import ConfigError, split_list
from mom.hypervisor.base import Hypervisor
from mom.monitor import Monitor
from mom.plotter import Plotter


def build_host_monitor(config: configparser.ConfigParser, hypervisor: Hypervisor,
                       plot_run_dir: str | None = None) -> Monitor:
    """One Monitor for the host; the host-monitor loop calls its collect()."""
    ctx = CollectorContext(config, hypervisor, None,
                           proc_root=config.get("host", "proc-root"),
                           sys_root=config.get("host", "sys-root"))
    instances = [make_collector(name, ctx) for name in split_list(config.get("host", "collectors"))]
    plotter = Plotter(plot_run_dir, "host") if plot_run_dir else None
    return Monitor("host", {"name": "host"}, instances,
                   config.getint("main", "sample-history-length"), plotter)


def make_collector(name: str, ctx: CollectorContext) -> collectors.Collector:
    """Instantiate a collector; a failing constructor is a start-up error."""
    cls = collectors.get_collector(name)
    try:
        return cls(ctx)
    except Exception as err:
        raise ConfigError(f"cannot set up collector {name}: {err}") from err
