"""What ``momd --check-config`` checks beyond mom.conf's own validation,
without connecting to anything: the policies MOM would load parse
(reported as ``FILE:LINE:COL: message``) and plot-dir is usable.

These need the host the file is used on (paths), which is why
mom.conf's own validation leaves them out.
"""
from __future__ import annotations

import os

from mom.config import Settings

from mom.policy import DEFAULT_POLICY_NAME, PolicyError, PolicySet
from mom.policy.policy_set import file_error

POLICY_SUFFIX = ".policy"


def check_plot_dir(settings: Settings) -> list[str]:
    """Problems with [main] plot-dir (none when it is off)."""
    plot_dir = settings.plot_dir
    if not plot_dir:
        return []
    if not os.path.isdir(plot_dir):
        return [f"[main] plot-dir = {plot_dir!r}: no such directory"]
    if not os.access(plot_dir, os.W_OK | os.X_OK):
        return [f"[main] plot-dir = {plot_dir!r}: not writable by this user"]
    return []


def check_policies(settings: Settings) -> tuple[list[str], list[str]]:
    """(problems, names of the policies that would be in force) for what
    [main] policy / policy-dir name, loaded the way MOM loads them."""
    policy, policy_dir = settings.policy, settings.policy_dir
    policies = PolicySet()
    problems: list[str] = []
    if policy:
        if not os.path.isfile(policy):
            return [f"[main] policy = {policy!r}: no such file"], []
        try:
            policies.load_file(policy, DEFAULT_POLICY_NAME)
        except PolicyError as error:
            problems.append(file_error(policy, error))
    elif policy_dir:
        if not os.path.isdir(policy_dir):
            return [f"[main] policy-dir = {policy_dir!r}: no such directory"], []
        for error in policies.load_directory(policy_dir):
            path = os.path.join(policy_dir, f"{error.policy}{POLICY_SUFFIX}")
            problems.append(file_error(path, error) if error.policy else f"{policy_dir}: {error}")
    return problems, policies.names()


def check(settings: Settings) -> tuple[list[str], list[str]]:
    """(problems, policy names): everything --check-config looks at."""
    problems, names = check_policies(settings)
    return problems + check_plot_dir(settings), names
