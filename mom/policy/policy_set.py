"""PolicySet: the named policies the engine evaluates together every cycle.

Texts are compiled when they are set, so a text that does not parse is
refused on the spot (the set stays as it was) and an evaluation cycle only
calls closures.  An RPC thread may change the set while the engine thread
evaluates it: changes swap in a new tuple of compiled programs under a
lock, and an evaluation runs on the tuple it started with.
"""
from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Mapping
from typing import Any

from mom.iotune import IoTuneDevice
from mom.policy.budget import (DEFAULT_MAX_SECONDS, DEFAULT_MAX_STEPS, MAX_POLICY_BYTES, Budget,
                               check_limits)
from mom.policy.compiler import Program, compile_policy
from mom.policy.errors import PolicyError
from mom.policy.runtime import new_env

log = logging.getLogger("mom.policy")

#: The name ``setPolicy(text)`` and the ``policy`` config file use.
DEFAULT_POLICY_NAME = "50_main_"

_BOUND = ("Host", "Guests")


class NotAPolicyFile(PolicyError):
    """The path is not a regular file (a FIFO, a device, a directory)."""


def read_policy_file(path: str, name: str) -> str:
    """A policy file's text; PolicyError (naming the policy) when unreadable
    or over 1 MiB.

    Opened without blocking and checked to be a regular file first, so a
    FIFO or device named ``x.policy`` cannot hang MOM's start-up; at most
    one byte more than the limit is read, whatever the file's size.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise PolicyError(f"cannot read {path}: {exc}", policy=name) from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotAPolicyFile(f"{path} is not a regular file", policy=name)
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(MAX_POLICY_BYTES + 1)
        if len(data) > MAX_POLICY_BYTES:
            raise PolicyError(f"{path} is too large: more than {MAX_POLICY_BYTES} bytes "
                              "(1 MiB, the limit for a policy)", policy=name)
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read {path}: {exc}", policy=name) from exc
    finally:
        os.close(fd)


def file_error(path: str, error: PolicyError) -> str:
    """``FILE:LINE:COL: message`` for a policy file that was refused."""
    message = error.reason.removesuffix(" opened") + (f" ({error.hint})" if error.hint else "")
    if error.line is None:
        return f"{path}: {message}"
    return f"{path}:{error.line}:{error.column or 1}: {message}"


class PolicySet:
    """Named policy texts, compiled, evaluated in sorted-name order.

    Each evaluation may take at most ``max_steps`` steps and
    ``max_seconds`` seconds (see mom.policy.budget); ValueError if either
    is not a positive number.
    """

    def __init__(self, policies: Mapping[str, str] | None = None, *,
                 max_steps: int = DEFAULT_MAX_STEPS,
                 max_seconds: float = DEFAULT_MAX_SECONDS) -> None:
        self.max_steps, self.max_seconds = check_limits(max_steps, max_seconds)
        self._lock = threading.RLock()
        self._programs: dict[str, Program] = {}
        self._ordered: tuple[Program, ...] = ()
        self._directory: str | None = None
        self.version = 0
        if policies:
            self.replace(policies)

    # -- changing the set -------------------------------------------------
    def _install(self, programs: dict[str, Program]) -> None:
        # Caller holds the lock.
        if {n: p.text for n, p in programs.items()} == self.get_policies():
            return
        # The policies run as one program: if one binds a built-in's name
        # (rare: (defvar min Host.Stat)), calls of that name in the others
        # must check the scope too, so recompile those.
        binds = frozenset().union(*(p.binds for p in programs.values()))
        for name, program in programs.items():
            if not binds <= program.shadowed:
                programs[name] = compile_policy(program.text, name, {*_BOUND, *binds})
        self._programs = programs
        self._ordered = tuple(programs[n] for n in sorted(programs))
        self.version += 1

    def set_policy(self, name: str, text: str | None) -> None:
        """Add or replace one policy; None deletes it.  Refused if it does not parse."""
        if text is None:
            with self._lock:
                programs = dict(self._programs)
                programs.pop(name, None)
                self._install(programs)
            return
        program = compile_policy(text, name, _BOUND)
        with self._lock:
            self._install({**self._programs, name: program})

    def delete(self, name: str) -> None:
        self.set_policy(name, None)

    def replace(self, policies: Mapping[str, str]) -> None:
        """Replace the whole set; if any text does not parse, nothing changes."""
        programs = {name: compile_policy(text, name, _BOUND) for name, text in policies.items()}
        with self._lock:
            self._install(programs)

    def clear(self) -> None:
        with self._lock:
            self._install({})

    def load_file(self, path: str, name: str = DEFAULT_POLICY_NAME) -> None:
        """Set policy ``name`` from a file; PolicyError if unreadable or unparsable."""
        self.set_policy(name, read_policy_file(path, name))

    def load_directory(self, path: str) -> list[PolicyError]:
        """Replace the set with the directory's ``NAME.policy`` files.

        Files that cannot be read or parsed are refused and logged as
        ``FILE:LINE:COL``; their errors are returned so the caller can
        report them too.  On the first load the other files still load.
        Reloading the same directory (SIGHUP, resetPolicies) is all or
        nothing: if any file is refused the policies in force stay, so a
        half-edited file never takes a working policy away.
        """
        errors: list[PolicyError] = []
        programs: dict[str, Program] = {}
        try:
            files = sorted(f for f in os.listdir(path) if f.endswith(".policy"))
        except OSError as exc:
            files = []
            errors.append(PolicyError(f"cannot read policy directory {path}: {exc}"))
            log.error("policy refused: %s", errors[0])
        for filename in files:
            name = filename[:-len(".policy")]
            try:
                programs[name] = compile_policy(
                    read_policy_file(os.path.join(path, filename), name), name, _BOUND)
            except NotAPolicyFile as error:
                log.warning("skipped: %s", error)       # not a policy at all
            except PolicyError as error:
                errors.append(error)
                log.error("policy file refused: %s",
                          file_error(os.path.join(path, filename), error))
        with self._lock:
            if errors and self._directory == path:
                log.error("policies not reloaded from %s: %d file(s) refused; the "
                          "policies in force stay", path, len(errors))
                return errors
            self._directory = path
            self._install(programs)
        return errors

    def reset(self) -> list[PolicyError]:
        """Back to the last loaded directory (or empty when there was none)."""
        with self._lock:
            directory = self._directory
        if directory is None:
            self.clear()
            return []
        return self.load_directory(directory)

    # -- reading it -------------------------------------------------------
    def get_policy(self, name: str) -> str | None:
        program = self._programs.get(name)
        return None if program is None else program.text

    def get_policies(self) -> dict[str, str]:
        with self._lock:
            return {name: p.text for name, p in sorted(self._programs.items())}

    def get_text(self) -> str:
        """All texts joined in evaluation (sorted-name) order."""
        return "\n".join(p.text for p in self._ordered)

    def names(self) -> list[str]:
        return [p.name for p in self._ordered]

    def __len__(self) -> int:
        return len(self._ordered)

    # -- running it -------------------------------------------------------
    def evaluate(self, host: Any, guests: list[Any]) -> list[Any]:
        """One cycle: a fresh global scope with ``Host`` and ``Guests``, every policy in order.

        Raises PolicyError (with ``.policy``) on the first run-time error,
        including running out of the step or time budget; the controls set
        before it must then be ignored by the caller.  Disk limits chosen
        before the error are discarded here: the disks outlive the cycle
        (they belong to the latest sample), the entities do not.
        """
        programs = self._ordered
        env = new_env(Budget(self.max_steps, self.max_seconds))
        env["Host"] = host
        env["Guests"] = guests = list(guests)   # a list whatever the caller holds them in
        results: list[Any] = []
        try:
            for program in programs:
                results.extend(program.run(env))
        except PolicyError:
            _discard_disk_limits(guests)
            raise
        return results


def _discard_disk_limits(guests: list[Any]) -> None:
    for guest in guests:
        devices = getattr(guest, "io_tune", None)
        if isinstance(devices, list):
            for device in devices:
                if isinstance(device, IoTuneDevice):
                    device.discard()
