"""Limits on one evaluation: steps, wall-clock time, and the size of values.

A policy runs inside MOM's engine thread (inside VDSM in thread mode), so a
runaway policy must be stopped, not waited for.  Without loops other than
``with`` and without recursion, a program's work is bounded by its text,
so steps are counted only where work can multiply: each top-level
expression, each call of a user function and each round of a ``with``
loop.  The clock is read once every :data:`CLOCK_EVERY` steps, so counting
stays a decrement and a comparison.

Values are bounded too, checked *before* anything is allocated: a string or
list built by ``+`` or ``*`` holds at most :data:`MAX_ITEMS` characters or
items, all of them together at most :data:`MAX_ALLOCATED` per evaluation,
and an integer built by ``*`` or ``<<`` at most :data:`MAX_INT_BITS` bits.

Running out of any of these raises PolicyError; the engine then applies no
control from that evaluation.
"""
from __future__ import annotations

import math
import time
from typing import Any

from mom.policy.errors import PolicyError

#: Largest policy text, in UTF-8 bytes, checked before it is read.
MAX_POLICY_BYTES = 1024 * 1024
#: Most characters of a string, or items of a list, one operation may build.
MAX_ITEMS = 1_000_000
#: Most characters and items all ``+`` and ``*`` of one evaluation may build.
MAX_ALLOCATED = 4 * MAX_ITEMS
#: Largest integer (in bits) ``*`` and ``<<`` may build.
MAX_INT_BITS = 65_536
#: Default steps per evaluation (mom.conf ``[main] policy-max-steps``).
DEFAULT_MAX_STEPS = 2_000_000
#: Default wall-clock seconds per evaluation (``[main] policy-max-seconds``).
DEFAULT_MAX_SECONDS = 5.0
#: Steps between two readings of the clock.
CLOCK_EVERY = 1000

_clock = time.monotonic


def check_limits(max_steps: Any, max_seconds: Any) -> tuple[int, float]:
    """Validated budget values; ValueError naming the bad one."""
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive integer, not {max_steps!r}")
    if isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float)) \
            or not math.isfinite(max_seconds) or max_seconds <= 0:
        raise ValueError(f"max_seconds must be a positive finite number, not {max_seconds!r}")
    return max_steps, float(max_seconds)


class Budget:
    """What one evaluation may still spend; the evaluation's env holds it.

    Counting a step is ``budget.countdown -= 1`` and, when it drops below
    zero, a call of :meth:`checkpoint`, which reads the clock, moves the
    next :data:`CLOCK_EVERY` steps into ``countdown``, and raises when the
    steps or the time are used up.
    """
    __slots__ = ("allocated", "countdown", "deadline", "max_seconds", "max_steps",
                 "steps_left")

    def __init__(self, max_steps: int = DEFAULT_MAX_STEPS,
                 max_seconds: float = DEFAULT_MAX_SECONDS) -> None:
        self.max_steps, self.max_seconds = max_steps, max_seconds
        self.deadline = _clock() + max_seconds
        self.steps_left = max_steps      # not yet moved into countdown
        self.countdown = 0
        self.allocated = 0

    @property
    def steps(self) -> int:
        """Steps taken so far."""
        return self.max_steps - self.steps_left - max(self.countdown, 0)

    def checkpoint(self, line: int | None, col: int | None) -> None:
        """``countdown`` went negative: read the clock, hand out more steps."""
        if _clock() > self.deadline:
            raise PolicyError(f"evaluation ran out of time: it took more than "
                              f"{self.max_seconds:g} s", line, col,
                              hint="the limit is [main] policy-max-seconds")
        over = -self.countdown           # steps taken beyond the last handout
        if over > self.steps_left:
            self.steps_left = self.countdown = 0
            raise PolicyError(f"evaluation ran out of steps: it took more than "
                              f"{self.max_steps} steps", line, col,
                              hint="the limit is [main] policy-max-steps")
        self.steps_left -= over
        chunk = min(CLOCK_EVERY, self.steps_left)
        self.steps_left -= chunk
        self.countdown = chunk

    def allocate(self, items: int, what: str, line: int, col: int) -> None:
        """About to build a string or list of ``items``: refuse it if too big."""
        if items > MAX_ITEMS:
            raise PolicyError(f"{what} would hold {items} items; a value may hold at "
                              f"most {MAX_ITEMS}", line, col)
        self.allocated += items
        if self.allocated > MAX_ALLOCATED:
            raise PolicyError(f"{what}: the strings and lists built in one evaluation "
                              f"may hold at most {MAX_ALLOCATED} items together", line, col)


def check_text_size(text: str) -> None:
    """PolicyError when ``text`` is over :data:`MAX_POLICY_BYTES` (UTF-8)."""
    if not isinstance(text, str):
        return                           # the reader reports the wrong type
    size = len(text)
    if size <= MAX_POLICY_BYTES // 4 or (size <= MAX_POLICY_BYTES and text.isascii()):
        return
    if size <= MAX_POLICY_BYTES:
        size = len(text.encode("utf-8", "surrogatepass"))
        if size <= MAX_POLICY_BYTES:
            return
    raise PolicyError(f"policy text is too large: more than {MAX_POLICY_BYTES} bytes "
                      f"(1 MiB, the limit), got at least {size}")
