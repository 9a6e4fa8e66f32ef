"""``mom-sim``: try a policy on a simulated KVM host.

    mom-sim                                  # overcommit-150 with VDSM's stock policies
    mom-sim fill-and-drain --compare none    # ... side by side with no MOM at all
    mom-sim overcommit-150 --policy ./my.d --compare stock none --seed 7 --json

Runs a scenario under a policy directory (default: VDSM's stock set with
ballooning on), prints the summary table and writes a picture
(``mom-sim-SCENARIO.png`` or ``-o FILE``).  See docs/simulator.md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from mom.sim import runner
from mom.sim.picture import PictureError, draw
from mom.sim.scenario import Scenario, ScenarioError, load, scenario_names
from mom.sim.summary import format_table

DEFAULT_SCENARIO = "overcommit-150"


def parse_seconds(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``2h`` -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    value = text.strip().lower()
    scale = 1
    if value and value[-1] in units:
        scale = units[value[-1]]
        value = value[:-1]
    try:
        seconds = float(value) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 3600, 90m, 2h)")
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive duration")
    return seconds


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mom-sim",
        description="Run MOM's policies on a simulated KVM host and summarise what happens.",
        epilog="Policies: 'stock' (VDSM's stock set with ballooning on), 'upstream' (the "
               "same with VDSM's upstream balloon rules), 'none' (no MOM at all) or a "
               "directory of .policy files.")
    p.add_argument("scenario", nargs="?", default=DEFAULT_SCENARIO,
                   help=f"a shipped scenario name or a .toml file (default {DEFAULT_SCENARIO}); "
                        "--list shows the shipped ones")
    p.add_argument("--policy", default=runner.POLICY_STOCK, metavar="DIR",
                   help="the policy to run and draw (default: stock)")
    p.add_argument("--compare", nargs="+", action="extend", default=[], metavar="DIR",
                   help="also run these policies on the same scenario and seed; "
                        "'none' runs without MOM")
    p.add_argument("--seed", type=int, help="random seed (default: the scenario's)")
    p.add_argument("--guests", type=_positive_int, help="number of guests (default: the scenario's)")
    p.add_argument("--duration", type=parse_seconds,
                   help="simulated time, e.g. 3600, 90m, 2h (default: the scenario's)")
    p.add_argument("--interval", type=parse_seconds,
                   help="seconds between MOM's cycles (default: the scenario's)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="picture file (default ./mom-sim-SCENARIO.png)")
    p.add_argument("--no-plot", action="store_true", help="do not draw a picture")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--list", action="store_true", help="list the shipped scenarios and exit")
    p.add_argument("--replay", metavar="PLOT_DIR",
                   help="instead of simulating: feed a real MOM's plot-dir recording "
                        "through --policy and show the controls it would have issued "
                        "next to the recorded ones")
    return p


def _progress_bar(total: int, enabled: bool) -> tuple[Callable[[str], None],
                                                       Callable[[int], None], Callable[[], None]]:
    """``(start_run(label), advance(seconds), close())`` of a terminal
    progress bar; all no-ops off a terminal or without tqdm."""
    def noop(*args: object) -> None:
        pass

    if not enabled or not sys.stderr.isatty():
        return noop, noop, noop
    try:
        from tqdm import tqdm
    except ImportError:
        return noop, noop, noop
    bar = tqdm(total=total, unit="sim s", file=sys.stderr, leave=False, dynamic_ncols=True)
    return bar.set_description, bar.update, bar.close


def _span(seconds: float) -> str:
    if seconds >= 3600 and seconds % 360 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 6 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def describe(s: Scenario) -> str:
    maxima = sum(g.count * g.memory_mib for g in s.guests) / 1024
    host = s.host_memory_mib() / 1024
    return (f"{s.name}: {s.guest_count} guests (maxima {maxima:.1f} GiB) on a "
            f"{host:.1f} GiB host, {_span(s.duration)}, seed {s.seed}, "
            f"MOM every {s.interval:g} s")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.replay:
        from mom.sim.replay import run
        return run(args.replay, args.policy, as_json=args.json)
    if args.list:
        for name in scenario_names():
            print(f"{name:<18} {load(name).description}")
        return 0
    try:
        scenario = load(args.scenario).with_options(
            guests=args.guests, duration=args.duration, seed=args.seed, interval=args.interval)
    except ScenarioError as e:
        print(f"mom-sim: {e}", file=sys.stderr)
        return 2
    policies = [args.policy, *args.compare]
    for policy in policies:
        if policy not in runner.NAMED_POLICIES and not os.path.isdir(policy):
            print(f"mom-sim: policy directory {policy!r} does not exist "
                  "(or use 'stock', 'upstream' or 'none')", file=sys.stderr)
            return 2

    out = sys.stderr if args.json else sys.stdout
    print(describe(scenario), file=out, flush=True)
    start_run, advance, close = _progress_bar(int(scenario.duration) * len(policies), True)
    results = []
    try:
        for policy in policies:
            start_run(runner.policy_label(policy))
            results.append(runner.run(scenario, policy, progress=advance))
    except runner.SimRunError as e:
        close()
        print(f"mom-sim: {e}", file=sys.stderr)
        return 2
    close()

    status = 0
    picture: str | None = None
    if not args.no_plot:
        picture = args.output or f"mom-sim-{scenario.name}.png"
        try:
            draw(results[0].timeline, picture)
        except (PictureError, OSError) as e:
            print(f"mom-sim: no picture written: {e} (or pass --no-plot)", file=sys.stderr)
            picture = None
            status = 1

    if args.json:
        document: dict[str, Any] = {
            "scenario": scenario.name, "seed": scenario.seed, "guests": scenario.guest_count,
            "duration_s": scenario.duration, "interval_s": scenario.interval,
            "host_memory_mib": scenario.host_memory_mib(),
            "runs": [r.summary.as_dict() for r in results], "picture": picture}
        print(json.dumps(document, indent=2))
    else:
        print(format_table([r.summary for r in results]))
        if picture:
            print(f"picture: {picture}")
    return status


if __name__ == "__main__":
    sys.exit(main())
