"""How fast mom-sim runs: one simulated hour of 20 guests, MOM every 15 s.

Prints the wall time (median of --repeat runs) of the overcommit-150
scenario with 20 guests under VDSM's stock policies (MOM driven by the
simulated clock, host collectors reading the rendered /proc and /sys) and
without MOM.  The target is under 5 s for the run with MOM.

    .venv/bin/python benchmarks/sim_speed.py [--repeat N] [--guests N]
"""
from __future__ import annotations

import argparse
import statistics
import time

from mom.sim import runner, scenario


def timed(s: scenario.Scenario, policy: str) -> float:
    start = time.perf_counter()
    runner.run(s, policy)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--guests", type=int, default=20)
    args = parser.parse_args()
    s = scenario.load("overcommit-150").with_options(guests=args.guests, duration=3600,
                                                      interval=15)
    for policy in (runner.POLICY_STOCK, runner.POLICY_NONE):
        times = [timed(s, policy) for _ in range(args.repeat)]
        print(f"{args.guests} guests, 1 simulated hour, policy {policy:>5}: "
              f"median {statistics.median(times):.2f} s "
              f"(min {min(times):.2f}, max {max(times):.2f}, {args.repeat} runs)")


if __name__ == "__main__":
    main()
