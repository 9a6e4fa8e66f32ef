"""Replay: what a policy directory would have done on a real MOM's recording.

A plot-dir run (see :mod:`mom.plotter`) holds every sample MOM took and,
when recorded, the controls each evaluation set.  Replay is open-loop: at
each recorded evaluation it rebuilds the Host and Guest entities from the
samples taken up to then (the last ``history_length`` of them, as MOM's
monitors keep), evaluates the policy set, and puts the controls it sets
beside the recorded ones.  The replayed controls never act on anything, so
later samples are what really happened, not what the policy would cause.

Steps are the recorded evaluations (the times in the ``.controls`` files);
a recording without controls (older plot-dirs) has one step per host
sample.  A guest takes part in a step when its controls were recorded then,
or when its latest sample is younger than its usual sampling interval (so
a guest that left, or whose collection failed, stops taking part, as in
MOM).  Files without an
``elapsed`` column are aligned by position: a guest's n-th sample is taken
as contemporary with the host's n-th.

``python -m mom.sim.replay PLOT_DIR [-P POLICY_DIR]`` runs it; ``main`` is
what ``mom-sim --replay`` calls.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from mom.entity import Entity
from mom.plotter import HOST_NAME, Aligned, PlotDataError, Recording, read_plot_dir
from mom.policy import PolicyError, PolicySet
from mom.policy.known import known_fields

#: MOM's default ``[main] sample-history-length``.
DEFAULT_HISTORY_LENGTH = 10

#: The policy name that means VDSM's stock set with ballooning on (as mom-sim).
STOCK = "stock"


@dataclass
class EntityStep:
    """One entity at one step: the controls replayed and recorded.

    ``recorded`` is None when nothing was recorded for this entity then
    (not the same as ``{}``: an evaluation that set no control).
    """

    entity: str
    replayed: dict[str, Any]
    recorded: dict[str, Any] | None
    differs: list[str] = field(default_factory=list)


@dataclass
class Step:
    time: float
    entities: list[EntityStep]
    error: str | None = None        # the policy failed: no control this step


@dataclass
class Summary:
    steps: int                      # evaluations replayed
    compared: int                   # ... of which had recorded controls
    differing: int                  # ... of which differ in some control
    errors: int                     # ... in which the policy failed
    per_control: dict[str, int]     # steps in which this control differs


@dataclass
class ReplayResult:
    steps: list[Step]
    summary: Summary

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- the pure part ---------------------------------------------------------------
def _same(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) \
            and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def _controls_at(recording: Recording) -> dict[str, dict[float, dict[str, Any]]]:
    return {entity: {round(t, 3): c for t, c in rows}
            for entity, rows in recording.controls.items()}


def replay(recording: Recording, policies: Mapping[str, str],
           history_length: int = DEFAULT_HISTORY_LENGTH) -> ReplayResult:
    """Evaluate ``policies`` at every recorded step; compare with what was recorded.

    Raises PolicyError when a policy text does not parse.  A run-time error
    at one step is reported in that step and the replay goes on.
    """
    if history_length < 1:
        raise ValueError("history_length must be at least 1")
    policy_set = PolicySet(policies)
    host_times = recording.host_times()
    host = Aligned(recording.host, host_times)
    guests = {name: Aligned(series, host_times) for name, series in recording.guests.items()}
    recorded = _controls_at(recording)
    times = sorted({t for rows in recorded.values() for t in rows}) or \
        sorted({round(t, 3) for t in host_times})
    variables: dict[str, dict[str, Any]] = {}   # SetVar/GetVar live across steps, as in MOM
    steps: list[Step] = []
    for time in times:
        host_history = host.history(time, history_length)
        if not host_history:
            continue                # MOM does not evaluate before its first host sample
        names = [name for name, timed in guests.items()
                 if timed.upto(time) and (time in recorded.get(name, {})
                                          or timed.current(time, host.interval))]
        # every statistic MOM declares, as a MOM with the built-in
        # collectors had: a recording holds only those that had values
        entities = [Entity({"name": HOST_NAME}, host_history,
                           known_fields("host") | set(recording.host.fields),
                           variables.setdefault(HOST_NAME, {}))]
        for name in names:
            entities.append(Entity({"name": name}, guests[name].history(time, history_length),
                                   known_fields("guest") | set(guests[name].series.fields),
                                   variables.setdefault(name, {})))
        error = None
        try:
            policy_set.evaluate(entities[0], entities[1:])
        except PolicyError as err:
            error = str(err)
        rows = []
        for name, entity in zip([HOST_NAME, *names], entities):
            replayed = {} if error else dict(entity.controls)
            was = recorded.get(name, {}).get(time)
            differs = [] if was is None else sorted(
                c for c in {*replayed, *was} if not _same(replayed.get(c), was.get(c)))
            rows.append(EntityStep(name, replayed, was, differs))
        steps.append(Step(time, rows, error))
    return ReplayResult(steps, _summarise(steps))


def _summarise(steps: list[Step]) -> Summary:
    per_control: dict[str, int] = {}
    for step in steps:
        for control in sorted({c for e in step.entities for c in e.differs}):
            per_control[control] = per_control.get(control, 0) + 1
    return Summary(
        steps=len(steps),
        compared=sum(any(e.recorded is not None for e in s.entities) for s in steps),
        differing=sum(any(e.differs for e in s.entities) for s in steps),
        errors=sum(s.error is not None for s in steps),
        per_control=dict(sorted(per_control.items())))


# -- policies ----------------------------------------------------------------------
def read_policy_dir(path: str) -> dict[str, str]:
    """Every ``NAME.policy`` in ``path``; PolicyError when there is none or one is unreadable."""
    try:
        files = sorted(f for f in os.listdir(path) if f.endswith(".policy"))
    except OSError as err:
        raise PolicyError(f"cannot read policy directory {path}: {err}") from None
    if not files:
        raise PolicyError(f"no .policy files in {path}")
    policies = {}
    for name in files:
        try:
            with open(os.path.join(path, name), encoding="utf-8") as f:
                policies[name[:-len(".policy")]] = f.read()
        except (OSError, UnicodeDecodeError) as err:
            raise PolicyError(f"cannot read {name}: {err}", policy=name) from None
    return policies


def stock_policies() -> dict[str, str]:
    """VDSM's stock policy set with ballooning enabled, as mom-sim runs it
    (the parameters VDSM's setPolicyParameters installs for it)."""
    import vdsm_plugin
    from vdsm_plugin.momif import render_parameters
    policies = read_policy_dir(vdsm_plugin.data_path(vdsm_plugin.POLICY_DIR))
    policies["01-parameters"] = render_parameters({"balloonEnabled": True})
    return policies


# -- output --------------------------------------------------------------------------
def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return f"{value:.1f}" if abs(value) >= 1e5 else f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _show_time(time: float) -> str:
    return str(int(time)) if float(time).is_integer() else f"{time:.3f}"


def format_table(result: ReplayResult, differences_only: bool = False) -> str:
    """A table (one row per step, entity and control) and the summary."""
    rows = [("elapsed", "entity", "control", "recorded", "replayed", "")]
    for step in result.steps:
        if step.error:
            rows.append((_show_time(step.time), "", "policy error", "", step.error, "!"))
        for entity in step.entities:
            was = entity.recorded or {}
            for control in sorted({*entity.replayed, *was}):
                differs = control in entity.differs
                if differences_only and not differs:
                    continue
                rows.append((_show_time(step.time), entity.entity, control,
                             _show(was.get(control)) if entity.recorded is not None else "?",
                             _show(entity.replayed.get(control)), "*" if differs else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    right = (True, False, False, True, True)
    lines = []
    for row in rows:
        cells = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right)]
        lines.append("  ".join(cells + [row[5]]).rstrip())
    return "\n".join(lines + ["", format_summary(result.summary)]) + "\n"


def format_summary(summary: Summary) -> str:
    text = f"{summary.steps} steps replayed"
    if summary.compared == 0:
        text += "; no controls were recorded (an older plot-dir), so nothing to compare"
    else:
        text += (f", {summary.compared} with recorded controls; "
                 f"{summary.differing} differ")
    if summary.errors:
        text += f"; the policy failed in {summary.errors}"
    lines = [text]
    for control, count in summary.per_control.items():
        lines.append(f"  {control}: differs in {count} steps")
    return "\n".join(lines)


# -- command line ----------------------------------------------------------------------
def build_parser(prog: str = "python -m mom.sim.replay") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Feed a plot-dir recording through a policy directory and "
                               "compare the controls it would set with those recorded.")
    parser.add_argument("plot_dir", help="a momplot-NNN run directory")
    parser.add_argument("-P", "--policy", "--policy-dir", dest="policy_dir", metavar="DIR",
                        help="policy directory, or 'stock' (the default): VDSM's stock set "
                             "with ballooning on")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--history-length", type=int, default=DEFAULT_HISTORY_LENGTH,
                        help="samples kept per entity, as [main] sample-history-length "
                             f"(default {DEFAULT_HISTORY_LENGTH})")
    parser.add_argument("--differences", action="store_true",
                        help="show only the controls that differ")
    return parser


def run(plot_dir: str, policy_dir: str | None = None, *, as_json: bool = False,
        history_length: int = DEFAULT_HISTORY_LENGTH, differences_only: bool = False,
        out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Replay and print; 0 when it ran, 2 when the recording or the policies are unusable."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        recording = read_plot_dir(plot_dir)
        policies = (stock_policies() if policy_dir in (None, STOCK)
                    else read_policy_dir(policy_dir))
        result = replay(recording, policies, history_length)
    except (PlotDataError, PolicyError, ValueError) as error:
        print(f"replay: {error}", file=err)
        return 2
    if as_json:
        json.dump(result.as_dict(), out, indent=1, sort_keys=True)
        out.write("\n")
    else:
        out.write(format_table(result, differences_only))
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "python -m mom.sim.replay") -> int:
    args = build_parser(prog).parse_args(argv)
    return run(args.plot_dir, args.policy_dir, as_json=args.json,
               history_length=args.history_length, differences_only=args.differences)


replay_main = main

if __name__ == "__main__":
    sys.exit(main())
