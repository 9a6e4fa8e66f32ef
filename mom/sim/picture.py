"""The picture of a run: ``mom-sim`` and ``mom-plot`` draw the same one.

A :class:`Timeline` holds what the picture shows, from a simulation or
from a real MOM's recording; :func:`draw` turns it into a PNG with three
panels sharing the time axis: the host's free memory with the pressure
threshold, each guest's balloon (solid) and working set (dashed), and the
memory KSM saves.

matplotlib is an optional extra (``pip install 'mom-overcommit[plot]'``),
imported only when drawing, and used through its Agg canvas directly so
that drawing never touches the embedding program's matplotlib state.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

KIB_PER_GIB = 1024 * 1024
KIB_PER_MIB = 1024
_DPI = 100


class PictureError(RuntimeError):
    """The picture cannot be drawn (matplotlib missing, nothing to draw)."""


@dataclass
class Timeline:
    title: str
    times: list[float]                     # seconds since start
    host_total_kib: float                  # host mem_available (KiB)
    host_free_kib: list[float | None]      # host mem_free per time (KiB)
    pressure_share: float                  # pressure threshold as a share of total (stock: 0.20)
    ksm_shared_kib: list[float | None]     # KSM pages_sharing * page size (KiB); None when unknown
    guests: dict[str, dict[str, list[float | None]]]
    # per guest name: "balloon_cur" (KiB) always; "working_set" (KiB) when known (the simulator knows it,
    # a real recording does not); "balloon_target" (KiB) when known


def _scaled(values: list[float | None], unit: float) -> list[float]:
    return [math.nan if v is None else v / unit for v in values]


def draw(timeline: Timeline, path: str, width_px: int = 1200, height_px: int = 900) -> None:
    """PNG with 3 panels: host free memory with the pressure line; each guest's balloon (solid) and working set (dashed); KSM sharing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PictureError("drawing needs matplotlib, which is the optional extra 'plot': "
                           "pip install 'mom-overcommit[plot]'") from None
    if not timeline.times:
        raise PictureError("nothing to draw: the timeline has no samples")
    if width_px < 200 or height_px < 200:
        raise PictureError(f"picture size {width_px}x{height_px} is too small (200x200 at least)")

    span = timeline.times[-1] - timeline.times[0]
    if span > 3 * 3600:
        unit, unit_name = 3600.0, "hours"
    else:
        unit, unit_name = 60.0, "minutes"
    x = [t / unit for t in timeline.times]

    fig = Figure(figsize=(width_px / _DPI, height_px / _DPI), dpi=_DPI)
    FigureCanvasAgg(fig)
    top, middle, bottom = fig.subplots(3, 1, sharex=True,
                                       gridspec_kw={"height_ratios": [1, 1.6, 0.8]})
    fig.suptitle(timeline.title)

    total_gib = timeline.host_total_kib / KIB_PER_GIB
    top.plot(x, _scaled(timeline.host_free_kib, KIB_PER_GIB), color="tab:blue",
             label="host free memory")
    top.axhline(total_gib * timeline.pressure_share, color="tab:red", linestyle="--",
                label=f"pressure threshold ({timeline.pressure_share:.0%})")
    top.set_ylim(0, max(total_gib, 0.001))
    top.set_ylabel("GiB")
    top.set_title(f"host free memory (of {total_gib:.1f} GiB)", fontsize="medium")
    top.legend(loc="upper right", fontsize="small")

    import matplotlib
    cmap = matplotlib.colormaps["tab20"]
    for i, (name, series) in enumerate(timeline.guests.items()):
        color = cmap(i % 20)
        balloon = series.get("balloon_cur")
        if balloon is not None:
            middle.plot(x, _scaled(balloon, KIB_PER_GIB), color=color, linewidth=1.2,
                        label=name)
        working = series.get("working_set")
        if working is not None:
            middle.plot(x, _scaled(working, KIB_PER_GIB), color=color, linewidth=0.9,
                        linestyle="--")
    middle.set_ylabel("GiB")
    middle.set_ylim(bottom=0)
    middle.set_title("guests: balloon (solid), working set (dashed)", fontsize="medium")
    if 0 < len(timeline.guests) <= 12:
        middle.legend(loc="upper right", fontsize="x-small", ncol=2)

    bottom.plot(x, _scaled(timeline.ksm_shared_kib, KIB_PER_MIB), color="tab:green")
    bottom.set_ylabel("MiB")
    bottom.set_ylim(bottom=0)
    bottom.set_title("memory saved by KSM (pages_sharing)", fontsize="medium")
    bottom.set_xlabel(unit_name)
    for ax in (top, middle, bottom):
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=_DPI)
