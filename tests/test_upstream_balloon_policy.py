"""mom/sim/policies/upstream-balloon: VDSM's upstream balloon semantics, for comparisons.

The expected numbers follow the "balloon, exactly as VDSM's upstream file
computes it" paragraph of the design notes on VDSM.
"""
from pathlib import Path

import pytest

import mom
import vdsm_plugin
from mom.policy import dry_run

UPSTREAM = Path(mom.__file__).parent / "sim" / "policies" / "upstream-balloon"
STOCK = Path(vdsm_plugin.data_path(vdsm_plugin.POLICY_DIR))


def policies(parameters=None):
    texts = {p.stem: p.read_text() for p in UPSTREAM.glob("*.policy")}
    if parameters is not None:
        texts["01-parameters"] = parameters
    return texts


def host(free_share):
    total = 10_000_000     # KiB: shares of it are whole numbers
    return {"mem_available": total, "mem_free": int(total * free_share), "cpu_count": 1,
            "ksm_run": 0, "ksm_pages_to_scan": 100, "ksm_pages_sharing": 0,
            "ksm_merge_across_nodes": 1}


def guest(cur=1_000_000, unused=600_000, low=500_000, high=2_000_000):
    return {"balloon_cur": cur, "balloon_min": low, "balloon_max": high,
            "mem_available": cur, "mem_unused": unused}


def target(free_share, *guest_history, parameters=None):
    history = list(guest_history) or [guest()]
    result = dry_run(policies(parameters), host(free_share), [history])
    return result["guests"][0].get("balloon_target")


def test_only_the_balloon_policy_differs_from_the_stock_set():
    assert sorted(p.stem for p in UPSTREAM.glob("*.policy")) == sorted(
        p.stem for p in STOCK.glob("*.policy"))
    for name in ("00-defines", "03-ksm", "04-cputune", "05-iotune"):
        assert (UPSTREAM / f"{name}.policy").read_text() == (STOCK / f"{name}.policy").read_text()
    assert "(set balloonEnabled True)" in (UPSTREAM / "01-parameters.policy").read_text()


def test_pressure_shrinks_by_five_percent():
    assert target(0.10) == 950_000


def test_under_pressure_the_guest_keeps_the_host_free_share_as_its_reserve():
    # gf = hf = 0.10: floor = 880000 used + 100000 = 980000 limits the step
    assert target(0.10, guest(unused=120_000)) == 980_000
    # floor 900000 + 100000 = balloon_cur: no move
    assert target(0.10, guest(unused=100_000)) is None


def test_use_is_averaged_over_the_guest_history():
    # unused 100000 then 160000: average use 870000, floor 970000
    # (the latest sample alone would give 940000 and the 5% step)
    assert target(0.10, guest(unused=100_000), guest(unused=160_000)) == 970_000


def test_emergency_reserve_is_the_host_share_less_five_points():
    # hf 0.02: gf -0.03, floor 900000 - 30000; the 5% step wins
    assert target(0.02, guest(unused=100_000)) == 950_000
    # hf 0.05 (an emergency too): gf 0, floor 990000
    assert target(0.05, guest(unused=10_000)) == 990_000


@pytest.mark.parametrize("free", [0.21, 0.25, 0.5])
def test_no_hold_band_everything_above_the_threshold_grows(free):
    assert target(free) == 1_050_000


def test_growing_jumps_to_the_floor_when_it_is_above_the_step():
    # hf 0.5: floor = 900000 used + 500000 = 1400000
    assert target(0.5, guest(unused=100_000)) == 1_400_000


def test_moves_of_a_quarter_percent_or_less_are_not_sent():
    assert target(0.5, guest(cur=1_999_000)) is None


def test_ballooning_off_grows_even_under_pressure():
    assert target(0.10, parameters="") == 1_050_000


def test_a_guest_below_balloon_min_is_set_to_it_afterwards():
    assert target(0.10, guest(cur=400_000, unused=300_000)) == 500_000


def test_guests_without_memory_stats_are_skipped():
    stats = guest()
    del stats["mem_unused"]
    assert target(0.10, stats) is None
