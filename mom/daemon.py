"""momd: run MOM as a standalone program (standalone or VDSM's mom-vdsm service)."""
from __future__ import annotations

import argparse
import configparser
import json
import signal
import threading
import sys
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mom.app import MOM


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="momd",
        description="Memory Overcommitment Manager: collects host and guest statistics, "
                    "evaluates the policy and applies balloon, KSM, vCPU and I/O controls.")
    parser.add_argument("-c", "--config-file", default="",
                        help="mom.conf to load (default: built-in defaults)")
    parser.add_argument("-r", "--rules-file", metavar="POLICY",
                        help="load this policy file ([main] policy)")
    parser.add_argument("-d", "--policy-dir",
                        help="load the *.policy files of this directory ([main] policy-dir)")
    parser.add_argument("-p", "--plot-dir", help="write plot data here ([main] plot-dir)")
    parser.add_argument("-l", "--log", help="'stdio' or a log file ([logging] log)")
    parser.add_argument("-v", "--verbose", metavar="LEVEL",
                        help="debug, info, warn, error, critical or 1-5 ([logging] verbosity)")
    parser.add_argument("--run-for", type=float, metavar="SECONDS",
                        help="stop after this many seconds and print the last statistics "
                             "(for trying a configuration out)")
    parser.add_argument("--check-config", action="store_true",
                        help="load and validate the configuration and policies, then exit")
    return parser


def overrides_from(args: argparse.Namespace) -> configparser.ConfigParser:
    """Command-line options as a ConfigParser that wins over the file."""
    overrides = configparser.ConfigParser(interpolation=None)
    overrides.optionxform = str
    pairs = [("main", "policy", args.rules_file), ("main", "policy-dir", args.policy_dir),
             ("main", "plot-dir", args.plot_dir), ("logging", "log", args.log),
             ("logging", "verbosity", args.verbose)]
    for section, key, value in pairs:
        if value is not None:
            if not overrides.has_section(section):
                overrides.add_section(section)
            overrides.set(section, key, value)
    if args.rules_file is not None and args.policy_dir is None:
        overrides.set("main", "policy-dir", "")
    if args.policy_dir is not None and args.rules_file is None:
        overrides.set("main", "policy", "")
    return overrides


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from mom.app import MOM
    from mom.config import ConfigError
    from mom.hypervisor.base import HypervisorError

    try:
        mom = MOM(args.config_file, overrides_from(args))
    except (ConfigError, HypervisorError) as err:
        print(f"momd: {err}", file=sys.stderr)
        return 2
    if args.check_config:
        policies = mom.getNamedPolicies()
        mom.shutdown()
        print(f"configuration OK; policies: {', '.join(sorted(policies)) or 'none'}")
        return 0

    def stop(signum: int, frame: FrameType | None) -> None:
        mom.shutdown()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.run_for is not None:
        timer = threading.Timer(args.run_for, mom.shutdown)
        timer.daemon = True
        timer.start()
    mom.run()
    if args.run_for is not None:
        print(json.dumps(_summary(mom), indent=2, sort_keys=True, default=str))
    return 0


def _summary(mom: "MOM") -> dict:
    """What a try-out run leaves behind: the last statistics."""
    return {"statistics": mom.getStatistics(), "policies": sorted(mom.getNamedPolicies())}


if __name__ == "__main__":
    sys.exit(main())
