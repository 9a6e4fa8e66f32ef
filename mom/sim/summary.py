"""The figures of one run, and the side-by-side table ``mom-sim`` prints.

:class:`Observer` watches a simulation every step (so minima and time under
pressure are exact to the second, not sampled at MOM's cycles) and records
the :class:`~mom.sim.picture.Timeline`; :meth:`Observer.summary` gives the
:class:`Summary` at the end.  Numbers are rounded once, here, so that the
table, the JSON and the tests all see the same values.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from mom.sim.model import MIB, PAGE_KIB, Simulation
from mom.sim.picture import Timeline

PRESSURE_SHARE = 0.20          # the stock policies' threshold of host free memory


@dataclass(frozen=True)
class Summary:
    policy: str
    host_swap_out_mib: float
    host_swap_in_mib: float
    guest_swap_out_mib: float
    guest_swap_in_mib: float
    swap_out_total_mib: float
    guest_major_faults: int
    host_free_min_pct: float
    host_free_mean_pct: float
    pressure_seconds: int
    pressure_pct: float
    balloon_changes: int
    balloon_reversals_per_guest_hour: float
    ksm_pages_sharing_peak: int
    ksm_saved_mean_mib: float
    ksmd_cpu_seconds: float
    ksmd_cpu_mean_pct: float
    guest_hours: float
    guests_killed: int
    balloon_oom_deflations: int

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


# (row label, field, format) in the order the table shows them
ROWS: list[tuple[str, str, str]] = [
    ("host swap-out (MiB)", "host_swap_out_mib", "{:.1f}"),
    ("host swap-in (MiB)", "host_swap_in_mib", "{:.1f}"),
    ("guest swap-out (MiB)", "guest_swap_out_mib", "{:.1f}"),
    ("guest swap-in (MiB)", "guest_swap_in_mib", "{:.1f}"),
    ("swap-out, host + guests (MiB)", "swap_out_total_mib", "{:.1f}"),
    ("guest major faults", "guest_major_faults", "{:d}"),
    ("host free, min (%)", "host_free_min_pct", "{:.1f}"),
    ("host free, mean (%)", "host_free_mean_pct", "{:.1f}"),
    ("time under pressure (%)", "pressure_pct", "{:.1f}"),
    ("balloon changes", "balloon_changes", "{:d}"),
    ("balloon reversals / guest-hour", "balloon_reversals_per_guest_hour", "{:.2f}"),
    ("KSM pages sharing, peak", "ksm_pages_sharing_peak", "{:d}"),
    ("KSM saved, mean (MiB)", "ksm_saved_mean_mib", "{:.1f}"),
    ("ksmd CPU (s)", "ksmd_cpu_seconds", "{:.1f}"),
    ("ksmd CPU, mean (% of a CPU)", "ksmd_cpu_mean_pct", "{:.2f}"),
    ("guests killed by the host", "guests_killed", "{:d}"),
    ("balloon deflations on guest OOM", "balloon_oom_deflations", "{:d}"),
]


class Observer:
    """Collects the figures and the timeline of one run, step by step."""

    def __init__(self, sim: Simulation, title: str, sample_every: int = 5) -> None:
        self.sim = sim
        self.sample_every = max(1, sample_every)
        self.steps = 0
        self.free_min = 1.0
        self.free_sum = 0.0
        self.pressure_seconds = 0
        self.sharing_peak = 0
        self.saved_sum = 0
        self.timeline = Timeline(
            title=title, times=[], host_total_kib=float(sim.total_kib), host_free_kib=[],
            pressure_share=PRESSURE_SHARE, ksm_shared_kib=[],
            guests={g.name: {"balloon_cur": [], "working_set": [], "balloon_target": []}
                    for g in sim.guests})

    def observe(self) -> None:
        """Call after each Simulation.step()."""
        sim = self.sim
        self.steps += 1
        free = sim.host_mem_free_kib()
        share = free / sim.total_kib
        self.free_min = min(self.free_min, share)
        self.free_sum += share
        if share < PRESSURE_SHARE:
            self.pressure_seconds += 1
        sharing = sim.ksm_pages()[1]
        self.sharing_peak = max(self.sharing_peak, sharing)
        self.saved_sum += sharing * PAGE_KIB
        if sim.now % self.sample_every == 0:
            tl = self.timeline
            tl.times.append(float(sim.now))
            tl.host_free_kib.append(float(free))
            tl.ksm_shared_kib.append(float(sharing * PAGE_KIB))
            for g in sim.guests:
                series = tl.guests[g.name]
                on = g.running
                series["balloon_cur"].append(float(g.cur) if on else None)
                series["working_set"].append(float(g.working_set_kib) if on else None)
                series["balloon_target"].append(float(g.target) if on else None)

    def summary(self, policy: str) -> Summary:
        sim = self.sim
        steps = max(1, self.steps)
        guests = sim.guests
        guest_hours = sum(g.running_seconds for g in guests) / 3600
        reversals = sum(g.balloon.reversals for g in guests)
        return Summary(
            policy=policy,
            host_swap_out_mib=round(sim.counters.pswpout_kib / MIB, 1),
            host_swap_in_mib=round(sim.counters.pswpin_kib / MIB, 1),
            guest_swap_out_mib=round(sum(g.swap_out_kib for g in guests) / MIB, 1),
            guest_swap_in_mib=round(sum(g.swap_in_kib for g in guests) / MIB, 1),
            swap_out_total_mib=round((sim.counters.pswpout_kib
                                      + sum(g.swap_out_kib for g in guests)) / MIB, 1),
            guest_major_faults=sum(g.major_faults for g in guests),
            host_free_min_pct=round(100 * self.free_min, 1),
            host_free_mean_pct=round(100 * self.free_sum / steps, 1),
            pressure_seconds=self.pressure_seconds,
            pressure_pct=round(100 * self.pressure_seconds / steps, 1),
            balloon_changes=sum(g.balloon.changes for g in guests),
            balloon_reversals_per_guest_hour=round(reversals / guest_hours, 2) if guest_hours else 0.0,
            ksm_pages_sharing_peak=self.sharing_peak,
            ksm_saved_mean_mib=round(self.saved_sum / steps / MIB, 1),
            ksmd_cpu_seconds=round(sim.ksm.cpu_seconds, 1),
            ksmd_cpu_mean_pct=round(100 * sim.ksm.cpu_seconds / steps, 2),
            guest_hours=round(guest_hours, 2),
            guests_killed=sim.counters.oom_kills,
            balloon_oom_deflations=sum(g.oom_deflations for g in guests),
        )


def format_table(summaries: list[Summary]) -> str:
    """The summaries side by side: one row per figure, one column per policy."""
    labels = [s.policy for s in summaries]
    cells = [[fmt.format(getattr(s, name)) for s in summaries] for _, name, fmt in ROWS]
    first = max(len(label) for label, _, _ in ROWS)
    widths = [max(len(labels[i]), *(len(row[i]) for row in cells)) for i in range(len(labels))]
    lines = ["".ljust(first) + "".join(f"  {lab:>{w}}" for lab, w in zip(labels, widths))]
    for (label, _, _), row in zip(ROWS, cells):
        lines.append(label.ljust(first) + "".join(f"  {c:>{w}}" for c, w in zip(row, widths)))
    return "\n".join(lines)
