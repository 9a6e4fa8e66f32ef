"""The host's monitor: the [host] collectors over /proc and /sys."""
from __future__ import annotations

from collections.abc import Callable

from mom import collectors
from mom.collectors.base import CollectorContext
from mom.config import ConfigError, Settings
from mom.hypervisor.base import Hypervisor
from mom.monitor import Monitor
from mom.plotter import Plotter


def build_host_monitor(settings: Settings, hypervisor: Hypervisor,
                       plot_run_dir: str | None = None,
                       clock: Callable[[], float] | None = None) -> Monitor:
    """One Monitor for the host; the cycle calls its collect()."""
    ctx = CollectorContext(settings, hypervisor, None,
                           proc_root=settings.proc_root, sys_root=settings.sys_root)
    if clock is not None:
        ctx.clock = clock
    instances = [make_collector(name, ctx) for name in settings.host_collectors]
    plotter = Plotter(plot_run_dir, "host") if plot_run_dir else None
    return Monitor("host", {"name": "host"}, instances,
                   settings.sample_history_length, plotter)


def make_collector(name: str, ctx: CollectorContext) -> collectors.Collector:
    """Instantiate a collector; a failing constructor is a start-up error."""
    cls = collectors.get_collector(name)
    try:
        return cls(ctx)
    except Exception as err:
        raise ConfigError(f"cannot set up collector {name}: {err}") from err
