"""plot-dir: tab-separated sample files, one per entity, as upstream MOM writes.

Each run gets a new ``momplot-NNN`` directory under plot-dir; each entity a
``NAME.dat`` file whose first line names the fields and each further line
is one sample.
"""
from __future__ import annotations

import logging
import os
import re
from typing import Any

log = logging.getLogger(__name__)


def new_run_dir(plot_dir: str) -> str:
    """Create and return the next ``momplot-NNN`` directory."""
    numbers = [int(m.group(1)) for m in
               (re.fullmatch(r"momplot-(\d+)", n) for n in os.listdir(plot_dir)) if m]
    number = max(numbers, default=0) + 1
    while True:
        path = os.path.join(plot_dir, f"momplot-{number:03d}")
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            number += 1


class Plotter:
    """Appends one entity's samples to its data file."""

    def __init__(self, run_dir: str, name: str) -> None:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "entity"
        self.path = os.path.join(run_dir, f"{safe}.dat")
        self.columns: list[str] | None = None

    def plot(self, sample: dict[str, Any]) -> None:
        try:
            with open(self.path, "a", encoding="utf-8") as out:
                if self.columns is None:
                    self.columns = sorted(k for k, v in sample.items() if _plottable(v))
                    out.write("\t".join(self.columns) + "\n")
                out.write("\t".join(_cell(sample.get(c)) for c in self.columns) + "\n")
        except OSError as err:
            log.warning("cannot write plot data %s: %s", self.path, err)


def _plottable(value: Any) -> bool:
    return value is None or isinstance(value, (int, float, str))


def _cell(value: Any) -> str:
    return "" if value is None else str(value)
