"""plot-dir: a run's samples and controls, one set of text files per entity.

Each run gets a new ``momplot-NNN`` directory under plot-dir.  For each
entity (``host`` or a guest's name, unsafe characters replaced by ``_``):

``NAME.dat``
    Tab-separated.  The first line names the columns, each further line is
    one sample.  The first column, ``elapsed``, is the caller's clock minus
    the run's start, in seconds (not named ``time``: the HostTime
    collector already has a ``time`` field).  The other columns are the
    sample's fields, sorted; an empty cell is a missing value.  Files
    written before ``elapsed`` existed have only the field columns (as
    upstream MOM writes them); :func:`read_plot_dir` still reads them.

``NAME.controls``
    Tab-separated, header ``elapsed<TAB>controls``, one line per policy
    evaluation that included the entity: the controls the policy set, as
    one JSON object (``{}`` when it set none).  JSON because the set of
    controls differs from one evaluation to the next.

Writing never raises: a failure is logged once per file and the run goes
on.  Reading is :func:`parse_samples`/:func:`parse_controls` (pure, on
text) and :func:`read_plot_dir` (a whole run directory).
"""
from __future__ import annotations

import bisect
import json
import logging
import os
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

TIME_COLUMN = "elapsed"
SAMPLES_SUFFIX = ".dat"
CONTROLS_SUFFIX = ".controls"
HOST_NAME = "host"


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


def safe_name(name: str) -> str:
    """The file-name stem an entity's files use."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "entity"


#: Each run directory's start, for plotters not told it: the first ``now``
#: any plotter of that directory was given (in this process).
_run_starts: dict[str, float] = {}


class Plotter:
    """Appends one entity's samples and controls to its files in a run directory.

    ``now`` is a reading of the caller's clock (MOM's cycle time); the
    files record ``now - start``.  ``start=None`` takes the first ``now``
    that any plotter of the same run directory is given, so every entity
    of a run shares one time axis without the caller knowing when it began.
    """

    def __init__(self, run_dir: str, name: str, start: float | None = None) -> None:
        stem = os.path.join(run_dir, safe_name(name))
        self.path = stem + SAMPLES_SUFFIX
        self.controls_path = stem + CONTROLS_SUFFIX
        self._run = os.path.realpath(run_dir)
        self._start = start
        self.columns: list[str] | None = None
        self._failed: set[str] = set()

    def _elapsed(self, now: float | None) -> str:
        if now is None:
            return ""
        if self._start is None:
            self._start = _run_starts.setdefault(self._run, now)
        value = round(now - self._start, 3)
        return str(int(value)) if value == int(value) else repr(value)

    def plot(self, sample: Mapping[str, Any], now: float | None = None) -> None:
        """Append one sample taken at ``now``.

        The first sample fixes the columns (its numeric and text fields);
        fields that appear only later are not recorded.  ``now=None`` (a
        caller without a clock) leaves the ``elapsed`` cell empty.
        """
        if self.columns is None:
            columns = _existing_header(self.path)
            if columns is None or columns[:1] != [TIME_COLUMN]:
                columns = [TIME_COLUMN, *sorted(k for k, v in sample.items()
                                                if k != TIME_COLUMN and _plottable(v))]
                header: str | None = "\t".join(columns) + "\n"
            else:
                header = None      # a guest that came back: same file, same columns
        else:
            columns, header = self.columns, None
        cells = [self._elapsed(now)] + [_cell(sample.get(c)) for c in columns[1:]]
        if self._append(self.path, (header or "") + "\t".join(cells) + "\n"):
            self.columns = columns

    def plot_controls(self, controls: Mapping[str, Any], now: float) -> None:
        """Append the controls one evaluation set for this entity (may be empty)."""
        header = "" if os.path.exists(self.controls_path) else f"{TIME_COLUMN}\tcontrols\n"
        text = json.dumps(dict(controls), sort_keys=True, default=str)
        self._append(self.controls_path, f"{header}{self._elapsed(now)}\t{text}\n")

    def _append(self, path: str, text: str) -> bool:
        try:
            with open(path, "a", encoding="utf-8") as out:
                out.write(text)
        except OSError as err:
            if path not in self._failed:
                log.warning("cannot write plot data %s: %s", path, err)
                self._failed.add(path)
            return False
        self._failed.discard(path)
        return True


def _existing_header(path: str) -> list[str] | None:
    try:
        with open(path, encoding="utf-8") as f:
            first = f.readline()
    except OSError:
        return None
    return first.rstrip("\n").split("\t") if first.strip() else None


def _plottable(value: Any) -> bool:
    return value is None or isinstance(value, (int, float, str))


def _cell(value: Any) -> str:
    return "" if value is None else str(value).replace("\t", " ").replace("\n", " ")


# -- reading -----------------------------------------------------------------
class PlotDataError(ValueError):
    """A plot-dir file that cannot be read as one."""


@dataclass
class Series:
    """One entity's samples, oldest first.

    ``times`` holds each sample's ``elapsed``; it is None when the file has
    no such column or a row lacks it (the rows then only have an order).
    """

    fields: list[str]
    samples: list[dict[str, Any]]
    times: list[float] | None


@dataclass
class Recording:
    """A run directory: the host's samples, each guest's, and recorded controls."""

    host: Series
    guests: dict[str, Series] = field(default_factory=dict)
    #: per entity file stem (``host`` or a guest): (elapsed, controls) per evaluation
    controls: dict[str, list[tuple[float, dict[str, Any]]]] = field(default_factory=dict)

    def host_times(self) -> list[float]:
        """The host's sample times; positions 0, 1, 2... for a file without times."""
        if self.host.times is not None:
            return list(self.host.times)
        return [float(i) for i in range(len(self.host.samples))]


class Aligned:
    """One entity's samples with the time each was taken (for replay and mom-plot).

    Rows of a file without times are given the host's time of the same
    position (``host_times``).
    """

    def __init__(self, series: Series, host_times: Sequence[float]) -> None:
        self.series = series
        if series.times is not None:
            self.times = list(series.times)
        else:                       # by position, against the host's rows
            self.times = [host_times[i] if i < len(host_times) else float(i)
                          for i in range(len(series.samples))]
        gaps = [b - a for a, b in zip(self.times, self.times[1:]) if b > a]
        self.interval = statistics.median(gaps) if gaps else None

    def upto(self, time: float) -> int:
        """How many samples were taken at or before ``time``."""
        return bisect.bisect_right(self.times, time + 1e-6)

    def history(self, time: float, length: int) -> list[dict[str, Any]]:
        end = self.upto(time)
        return self.series.samples[max(0, end - length):end]

    def current(self, time: float, fallback_interval: float | None) -> bool:
        """Has a sample at or before ``time``, taken less than one sampling interval ago."""
        end = self.upto(time)
        if end == 0:
            return False
        age = time - self.times[end - 1]
        interval = self.interval or fallback_interval or 0.0
        return age <= 1e-6 or age < interval - 1e-6

    def at(self, time: float, fallback_interval: float | None) -> dict[str, Any] | None:
        """The sample current at ``time`` (see :meth:`current`), or None."""
        if not self.current(time, fallback_interval):
            return None
        return self.series.samples[self.upto(time) - 1]


def _value(cell: str) -> Any:
    if cell == "":
        return None
    for kind in (int, float):
        try:
            return kind(cell)
        except ValueError:
            pass
    return cell


def _float(cell: str, where: str) -> float:
    try:
        return float(cell)
    except ValueError:
        raise PlotDataError(f"{where}: {TIME_COLUMN} {cell!r} is not a number") from None


def parse_samples(text: str, where: str = "samples") -> Series:
    """Parse a ``NAME.dat`` file's text (with or without the ``elapsed`` column)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise PlotDataError(f"{where}: empty (no header line)")
    header = lines[0].split("\t")
    timed = header[0] == TIME_COLUMN
    fields = header[1:] if timed else header
    samples: list[dict[str, Any]] = []
    times: list[float] | None = [] if timed else None
    for number, line in enumerate(lines[1:], start=2):
        cells = line.split("\t")
        if cells == header:
            continue                # the same entity's file, started again
        if len(cells) != len(header):
            raise PlotDataError(f"{where} line {number}: {len(cells)} cells, "
                                f"the header has {len(header)}")
        if timed:
            if cells[0] == "":
                times = None
            elif times is not None:
                times.append(_float(cells[0], f"{where} line {number}"))
            cells = cells[1:]
        samples.append({name: _value(cell) for name, cell in zip(fields, cells)})
    return Series(fields, samples, times)


def parse_controls(text: str, where: str = "controls") -> list[tuple[float, dict[str, Any]]]:
    """Parse a ``NAME.controls`` file's text: (elapsed, controls) per evaluation."""
    result: list[tuple[float, dict[str, Any]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith(TIME_COLUMN + "\t"):
            continue
        elapsed, sep, body = line.partition("\t")
        if not sep:
            raise PlotDataError(f"{where} line {number}: expected elapsed<TAB>controls")
        try:
            controls = json.loads(body)
        except ValueError as err:
            raise PlotDataError(f"{where} line {number}: controls are not JSON: {err}") from None
        if not isinstance(controls, dict):
            raise PlotDataError(f"{where} line {number}: controls are not a JSON object")
        result.append((_float(elapsed, f"{where} line {number}"), controls))
    return result


def read_plot_dir(path: str) -> Recording:
    """Read a run directory (``momplot-NNN``); PlotDataError when it is not one."""
    try:
        names = sorted(os.listdir(path))
    except OSError as err:
        raise PlotDataError(f"cannot read {path}: {err}") from None
    series: dict[str, Series] = {}
    controls: dict[str, list[tuple[float, dict[str, Any]]]] = {}
    for name in names:
        if name.endswith(SAMPLES_SUFFIX):
            series[name[:-len(SAMPLES_SUFFIX)]] = parse_samples(_read(path, name), name)
        elif name.endswith(CONTROLS_SUFFIX):
            controls[name[:-len(CONTROLS_SUFFIX)]] = parse_controls(_read(path, name), name)
    if HOST_NAME not in series:
        raise PlotDataError(f"{path}: no {HOST_NAME}{SAMPLES_SUFFIX}; not a plot-dir run directory")
    host = series.pop(HOST_NAME)
    return Recording(host, series, controls)


def _read(directory: str, name: str) -> str:
    try:
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as err:
        raise PlotDataError(f"cannot read {name}: {err}") from None
