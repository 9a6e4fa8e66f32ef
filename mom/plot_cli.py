"""mom-plot: the picture mom-sim draws, made from a real MOM's plot-dir run.

    mom-plot PLOT_DIR [-o FILE.png] [--title TEXT] [--pressure SHARE]

Host free memory against the pressure threshold, each guest's balloon (and
the balloon target the policy last set, when controls were recorded) and
KSM sharing.  A real recording does not know a guest's working set, so
that line is absent.  Needs matplotlib (the ``plot`` extra), imported by
:func:`mom.sim.picture.draw` only when drawing.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from mom.plotter import Aligned, PlotDataError, Recording, read_plot_dir
from mom.sim.picture import PictureError, Timeline, draw

#: The stock policies' pressure threshold (share of host memory free).
DEFAULT_PRESSURE = 0.20
#: KSM counts pages; the plot shows KiB.
DEFAULT_PAGE_KIB = 4


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else None


def timeline_data(recording: Recording, page_kib: int = DEFAULT_PAGE_KIB
                  ) -> dict[str, Any]:
    """The Timeline's series from a recording (everything but title and pressure).

    Times are the host's samples; a guest's values are None where it was
    not sampled.  ``balloon_target`` is the last target the policy set,
    carried forward until it set another, and present only when controls
    were recorded for the guest.
    """
    times = recording.host_times()
    host = recording.host.samples
    totals = [v for v in (_number(s.get("mem_available")) for s in host) if v is not None]
    if not totals:
        raise PlotDataError("host.dat has no mem_available: cannot tell the host's size")
    sharing = [_number(s.get("ksm_pages_sharing")) for s in host]
    host_interval = Aligned(recording.host, times).interval
    guests: dict[str, dict[str, list[float | None]]] = {}
    for name, series in recording.guests.items():
        aligned = Aligned(series, times)
        samples = [aligned.at(t, host_interval) for t in times]
        lines: dict[str, list[float | None]] = {
            "balloon_cur": [None if s is None else _number(s.get("balloon_cur"))
                            for s in samples]}
        rows = recording.controls.get(name)
        if rows:
            lines["balloon_target"] = _carried(rows, times, samples)
        guests[name] = lines
    return {
        "times": times,
        "host_total_kib": max(totals),
        "host_free_kib": [_number(s.get("mem_free")) for s in host],
        "ksm_shared_kib": [None if p is None else p * page_kib for p in sharing],
        "guests": guests,
    }


def _carried(rows: list[tuple[float, dict[str, Any]]], times: Sequence[float],
             samples: Sequence[dict[str, Any] | None]) -> list[float | None]:
    """The last balloon target set at or before each time (None while the guest is away)."""
    targets = sorted((t, _number(c["balloon_target"])) for t, c in rows
                     if _number(c.get("balloon_target")) is not None)
    result: list[float | None] = []
    index, last = 0, None
    for time, sample in zip(times, samples):
        while index < len(targets) and targets[index][0] <= time + 1e-6:
            last = targets[index][1]
            index += 1
        result.append(None if sample is None else last)
    return result


def build_timeline(recording: Recording, title: str,
                   pressure_share: float = DEFAULT_PRESSURE) -> Timeline:
    """The picture's timeline for ``recording``."""
    return Timeline(title=title, pressure_share=pressure_share, **timeline_data(recording))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mom-plot", description="Draw a MOM plot-dir run: host free memory, "
                                     "guest balloons, KSM sharing.")
    parser.add_argument("plot_dir", help="a momplot-NNN run directory")
    parser.add_argument("-o", "--output", help="PNG file (default: PLOT_DIR.png)")
    parser.add_argument("--title", help="picture title (default: the directory's name)")
    parser.add_argument("--pressure", type=float, default=DEFAULT_PRESSURE,
                        help="pressure threshold as a share of host memory "
                             f"(default {DEFAULT_PRESSURE})")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    directory = os.path.normpath(args.plot_dir)
    output = args.output or directory + ".png"
    try:
        recording = read_plot_dir(directory)
        timeline = build_timeline(recording, args.title or os.path.basename(directory),
                                  args.pressure)
        draw(timeline, output)
    except (PlotDataError, PictureError, OSError) as error:
        print(f"mom-plot: {error}", file=sys.stderr)
        return 2
    print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
