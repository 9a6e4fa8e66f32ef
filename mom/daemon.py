"""momd: run MOM as a program (standalone, or VDSM's mom-vdsm service).

The options are upstream momd's, so units, init scripts and habits carry
over: ``-c`` config file, ``-r`` rules (policy) file, ``-P`` policy
directory, ``-p`` plot directory, ``-l`` log, ``-v`` verbosity, ``-d``
daemon with ``--pid-file``.  Signals: SIGTERM/SIGINT stop MOM cleanly
(exit 0, the RPC socket removed); SIGHUP reloads the policies from disk
(a file that does not parse is refused and the policies in force stay).
Every start-up error is one ``momd: ...`` line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import collections
import configparser
import json
import logging
import os
import select
import signal
import sys
import time
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

from mom.daemonize import PidFile, Startup, detach

if TYPE_CHECKING:
    from mom.app import MOM

log = logging.getLogger("mom.daemon")

DEFAULT_CONFIG = "/etc/mom.conf"
DEFAULT_PID_FILE = "/var/run/momd.pid"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """A usage error is a start-up error too: one line, status 2."""
        self.exit(2, f"momd: {message} (momd --help lists the options)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="momd",
        description="Memory Overcommitment Manager: collects host and guest statistics, "
                    "evaluates the policy and applies balloon, KSM, vCPU and I/O controls. "
                    "SIGHUP reloads the policies; SIGTERM stops.")
    parser.add_argument("-c", "--config-file", metavar="FILE",
                        help=f"mom.conf to load (default: {DEFAULT_CONFIG} if it exists, "
                             "else the built-in defaults)")
    parser.add_argument("-r", "--rules-file", metavar="POLICY",
                        help="load this one policy file ([main] policy)")
    parser.add_argument("-P", "--policy-dir", metavar="DIR",
                        help="load the *.policy files of this directory ([main] policy-dir)")
    parser.add_argument("-p", "--plot-dir", metavar="DIR",
                        help="write plot data here ([main] plot-dir)")
    parser.add_argument("-l", "--log", metavar="TARGET",
                        help="'stdio' or a log file ([logging] log)")
    parser.add_argument("-v", "--verbose", metavar="LEVEL",
                        help="debug, info, warn, error, critical or 0-5 (0: nothing) "
                             "([logging] verbosity)")
    parser.add_argument("-d", "--daemon", action="store_true",
                        help="detach: double fork, new session, cwd /, standard streams "
                             "to /dev/null, pid file; returns once MOM runs")
    parser.add_argument("--pid-file", metavar="FILE",
                        help=f"write the pid here while MOM runs (with -d, default "
                             f"{DEFAULT_PID_FILE})")
    parser.add_argument("--run-for", type=float, metavar="SECONDS",
                        help="stop after this many seconds and print the last statistics "
                             "(for trying a configuration out)")
    parser.add_argument("--check-config", action="store_true",
                        help="validate the configuration, parse the policies it names and "
                             "check plot-dir, connecting to nothing; then exit")
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


def config_file(args: argparse.Namespace) -> str:
    """-c's file; without -c, /etc/mom.conf when it exists ('' = defaults)."""
    if args.config_file is not None:
        return args.config_file
    return DEFAULT_CONFIG if os.path.isfile(DEFAULT_CONFIG) else ""


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.check_config:
        return check_config(config_file(args), overrides_from(args))
    if args.daemon:
        return detach(lambda startup: serve(args, startup))
    return serve(args, Startup())


def check_config(conf_file: str, overrides: configparser.ConfigParser) -> int:
    """--check-config: everything but connecting, one line per problem."""
    from mom import config as mom_config
    from mom import preflight

    try:
        config = mom_config.load(conf_file, overrides)
    except mom_config.ConfigError as err:
        print(f"momd: {err}", file=sys.stderr)
        return 2
    # Refused policies are printed below; keep the library's own log records
    # (no handler is configured in this mode) off stderr.
    quiet = logging.NullHandler()
    logging.getLogger("mom").addHandler(quiet)
    try:
        problems, policies = preflight.check(config)
    finally:
        logging.getLogger("mom").removeHandler(quiet)
    for problem in problems:
        print(f"momd: {problem}", file=sys.stderr)
    if problems:
        return 2
    print(f"configuration OK; policies: {', '.join(policies) or 'none'}")
    return 0


class _Signals:
    """Signals noted by the handler and acted on in the main loop (a handler
    must not take locks the interrupted code may hold)."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._pending: collections.deque[int] = collections.deque()

    def install(self) -> None:
        self._saved = {signum: signal.signal(signum, self._handle)
                       for signum in (*STOP_SIGNALS, signal.SIGHUP)}

    def close(self) -> None:
        """Give the signals back to their previous handlers (in-process callers)."""
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)
        os.close(self._read)
        os.close(self._write)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self._pending.append(signum)
        try:
            os.write(self._write, b"s")
        except OSError:
            pass                    # the pipe is full: a wake-up is pending anyway

    def wait(self, timeout: float | None) -> list[int]:
        """Signals received, waiting up to ``timeout`` seconds for one."""
        if not self._pending:
            try:
                select.select([self._read], [], [], timeout)
            except InterruptedError:
                pass
        try:
            while os.read(self._read, 512):
                pass
        except BlockingIOError:
            pass
        found = []
        while self._pending:
            found.append(self._pending.popleft())
        return found


def serve(args: argparse.Namespace, startup: Startup) -> int:
    """Start MOM, report the start-up, run until SIGTERM/SIGINT or --run-for."""
    signals = _Signals()
    signals.install()           # a SIGTERM during start-up stops cleanly after it
    try:
        return _serve(args, startup, signals)
    finally:
        signals.close()


def _serve(args: argparse.Namespace, startup: Startup, signals: _Signals) -> int:
    from mom import config as mom_config
    from mom import preflight
    from mom.app import MOM
    from mom.config import ConfigError
    from mom.hypervisor.base import HypervisorError
    from mom.rpc import RpcBindError

    conf_file, overrides = config_file(args), overrides_from(args)
    try:
        problems = preflight.check_plot_dir(mom_config.load(conf_file, overrides))
        if problems:
            raise ConfigError(problems[0])
        mom = MOM(conf_file, overrides)
    except (ConfigError, HypervisorError, RpcBindError) as err:
        return startup.failed(str(err))
    except Exception as err:
        return startup.failed(f"start-up failed: {type(err).__name__}: {err}")
    pid_file = None
    try:
        mom.start()                     # binds the RPC socket
        path = args.pid_file or (DEFAULT_PID_FILE if args.daemon else None)
        if path:
            pid_file = PidFile(path)
            try:
                pid_file.write()
            except OSError as err:
                raise ConfigError(f"cannot write the pid file {path}: "
                                  f"{err.strerror or err}") from None
    except Exception as err:
        mom.shutdown()
        if isinstance(err, (ConfigError, HypervisorError, RpcBindError)):
            return startup.failed(str(err))
        return startup.failed(f"start-up failed: {type(err).__name__}: {err}")
    startup.succeeded()
    try:
        _run(mom, signals, args.run_for)
    finally:
        mom.shutdown()
        if pid_file is not None:
            pid_file.remove()
    if args.run_for is not None:
        print(json.dumps(_summary(mom), indent=2, sort_keys=True, default=str))
    return 0


def _run(mom: MOM, signals: _Signals, run_for: float | None) -> None:
    deadline = None if run_for is None else time.monotonic() + run_for
    while True:
        timeout = None if deadline is None else deadline - time.monotonic()
        if timeout is not None and timeout <= 0:
            return
        for signum in signals.wait(timeout):
            if signum in STOP_SIGNALS:
                log.info("%s: stopping", signal.Signals(signum).name)
                return
            log.info("SIGHUP: reloading the policies from disk")
            if mom.resetPolicies():     # a refused file is logged where it is read
                log.info("policies in force: %s",
                         ", ".join(sorted(mom.getNamedPolicies())) or "none")


def _summary(mom: MOM) -> dict:
    """What a try-out run leaves behind: the last statistics."""
    return {"statistics": mom.getStatistics(), "policies": sorted(mom.getNamedPolicies())}


if __name__ == "__main__":
    sys.exit(main())
