"""Workloads: what a guest asks of its memory and vCPUs over time.

A workload gives, for each simulated second of the guest's life, the
anonymous working set it wants (a share of the guest's maximum memory), the
page cache it would like to keep, and its vCPU load.  Each guest has its
own ``random.Random``, seeded from the scenario's seed and the guest's name,
so the same seed always gives the same demand, whatever else runs.
"""
from __future__ import annotations

import math
import random

from mom.sim.scenario import WorkloadSpec

# The random wander of the working set forgets itself over this many seconds.
_NOISE_MEMORY_S = 300.0
# vCPU load at the top of a burst, period or ramp.
_BUSY_CPU = 0.9


class Workload:
    """Demand of one guest; call :meth:`at` with increasing ``t``."""

    def __init__(self, spec: WorkloadSpec, rng: random.Random, boot_seconds: float) -> None:
        self.spec = spec
        self.rng = rng
        self.boot_seconds = boot_seconds
        self._wander = 0.0
        self._last_t = 0.0
        spread = spec.jitter
        # Per-guest timings, so that alike guests do not move in lockstep.
        self._phase = rng.random() * spec.period
        self._period = spec.period * (1 + spread * (2 * rng.random() - 1))
        self._delay = spec.delay * (1 + spread * rng.random())
        self._rise = max(1.0, spec.rise * (1 + spread * (2 * rng.random() - 1)))
        self._hold = spec.hold
        self._fall = spec.fall * (1 + spread * (2 * rng.random() - 1)) if spec.fall else 0.0
        # bursty: the current or next burst
        self._burst_start = rng.expovariate(1 / spec.mean_gap)
        self._burst_end = self._burst_start + self._burst_length()
        self._burst_height = self._new_height()

    def _burst_length(self) -> float:
        return max(2 * self.spec.ramp, self.rng.expovariate(1 / self.spec.mean_length))

    def _new_height(self) -> float:
        return 0.6 + 0.4 * self.rng.random()

    def _level(self, t: float) -> float:
        """0 at rest (base) .. 1 at the peak."""
        s = self.spec
        if s.kind in ("idle", "steady"):
            return 0.0
        if s.kind == "periodic":
            return 0.5 - 0.5 * math.cos(2 * math.pi * (t + self._phase) / self._period)
        if s.kind == "growing":
            t -= self._delay
            if t <= 0:
                return 0.0
            if t < self._rise:
                return t / self._rise
            t -= self._rise
            if not self._fall or t < self._hold:
                return 1.0
            t -= self._hold
            return max(0.0, 1.0 - t / self._fall)
        # bursty
        while t >= self._burst_end:
            self._burst_start = self._burst_end + self.rng.expovariate(1 / s.mean_gap)
            self._burst_end = self._burst_start + self._burst_length()
            self._burst_height = self._new_height()
        if t < self._burst_start:
            return 0.0
        ramp = max(s.ramp, 1e-9)
        up = min(1.0, (t - self._burst_start) / ramp)
        down = min(1.0, (self._burst_end - t) / ramp)
        return self._burst_height * min(up, down)

    def at(self, t: float) -> tuple[float, float, float]:
        """``(anon share, cache share, cpu share)`` at ``t`` seconds after start."""
        s = self.spec
        dt = t - self._last_t
        self._last_t = t
        if s.noise and dt > 0:
            keep = dt / _NOISE_MEMORY_S
            self._wander += (-self._wander * keep
                             + s.noise * math.sqrt(2 * keep) * self.rng.gauss(0.0, 1.0))
        level = self._level(t)
        anon = s.base + (s.peak - s.base) * level + self._wander
        cpu = s.cpu + (_BUSY_CPU - s.cpu) * level if s.kind != "idle" else s.cpu
        if self.boot_seconds and t < self.boot_seconds:
            anon *= t / self.boot_seconds
        return min(1.0, max(0.0, anon)), s.cache, min(1.0, max(0.0, cpu))
