"""VDSM's stock policies (vdsm_plugin/mom.d), checked through dry_run.

The expected numbers follow the behaviour described in
docs/policy-language.md and the design notes on VDSM's stock policies.
"""
from pathlib import Path

import pytest

import vdsm_plugin
from mom.policy import cli, dry_run

POLICY_DIR = Path(vdsm_plugin.__file__).parent / "mom.d"
GIB = 1024 * 1024                       # KiB
HOST = 10_000_000                       # KiB: shares of it are whole numbers
NAMES = ["00-defines", "01-parameters", "02-balloon", "03-ksm", "04-cputune", "05-iotune"]


def stock(parameters: str | None = None) -> dict[str, str]:
    policies = {p.stem: p.read_text() for p in POLICY_DIR.glob("*.policy")}
    if parameters is not None:        # what VDSM's setPolicyParameters installs
        policies["01-parameters"] = parameters
    return policies


def host(free_share=0.5, total=16 * GIB, **extra):
    stats = {"mem_available": total, "mem_free": int(total * free_share),
             "mem_unused": int(total * free_share), "cpu_count": 1, "ksm_run": 0,
             "ksm_pages_to_scan": 100, "ksm_pages_sharing": 0, "ksm_merge_across_nodes": 1}
    stats.update(extra)
    return stats


def balloon_guest(cur=1_000_000, low=500_000, high=2_000_000, unused=600_000, kernel=0,
                  **extra):
    """A guest whose own total (mem_available) lacks the ``kernel`` KiB its kernel keeps;
    0 (the guest does not show it) makes the policy assume its fixed 65536.
    ``mem_free`` (free memory and page cache) is ``unused`` unless given."""
    stats = {"balloon_cur": cur, "balloon_min": low, "balloon_max": high,
             "mem_available": cur - kernel, "mem_unused": unused, "mem_free": unused}
    stats.update(extra)
    return stats


BALLOON_ON = "(set balloonEnabled True)\n"


def target_of(result, index=0):
    return result["guests"][index].get("balloon_target")


def test_the_stock_set_has_stable_file_names():
    assert sorted(p.stem for p in POLICY_DIR.glob("*.policy")) == NAMES


def test_mom_policy_check_passes_on_every_stock_policy(capsys):
    files = sorted(str(p) for p in POLICY_DIR.glob("*.policy"))
    assert cli.main(["check", "--strict", *files]) == 0
    assert capsys.readouterr().out == ""


def test_defines_declare_the_switches_with_defaults():
    from mom.policy import Evaluator
    ev = Evaluator()
    ev.run((POLICY_DIR / "00-defines.policy").read_text())
    assert ev.variables == {"False": 0, "True": 1, "ksmEnabled": 1, "ksmMergeAcrossNodes": 1,
                            "balloonEnabled": 0, "cpuTuneEnabled": 1, "ioTuneEnabled": 1}


# -- balloon ----------------------------------------------------------------
def test_balloon_off_by_default_never_squeezes_but_gives_memory_back():
    # Ballooning is off by default: under pressure nothing shrinks, and a
    # guest squeezed earlier grows back towards balloon_max.
    result = dry_run(stock(), host(free_share=0.10),
                     [balloon_guest(), balloon_guest(cur=2_000_000)])
    assert [target_of(result, i) for i in range(2)] == [1_050_000, None]


def test_balloon_off_still_raises_a_guest_to_balloon_min():
    result = dry_run(stock(), host(free_share=0.10), [balloon_guest(cur=400_000)])
    assert target_of(result) == 500_000


def test_pressure_shrinks_by_five_percent_of_balloon_cur():
    result = dry_run(stock(BALLOON_ON), host(free_share=0.10), [balloon_guest()])
    assert target_of(result) == 950_000


def test_pressure_never_goes_below_balloon_min():
    guest = balloon_guest(cur=520_000, unused=500_000)
    result = dry_run(stock(BALLOON_ON), host(free_share=0.10), [guest])
    assert target_of(result) == 500_000


def test_pressure_keeps_a_free_reserve_above_what_the_guest_and_its_kernel_use():
    # The guest sees 960000 of its 1000000 KiB: its kernel keeps 40000.
    # uses 600000 + 30% reserve of 1000000 = 900000: the 5% step (950000) wins
    guest = balloon_guest(kernel=40_000, unused=400_000)
    assert target_of(dry_run(stock(BALLOON_ON), host(free_share=0.10), [guest])) == 950_000
    # uses 680000: the floor 980000 limits the step
    guest = balloon_guest(kernel=40_000, unused=320_000)
    assert target_of(dry_run(stock(BALLOON_ON), host(free_share=0.10), [guest])) == 980_000
    # uses 720000: 1020000 > balloon_cur, no squeeze
    guest = balloon_guest(kernel=40_000, unused=280_000)
    assert target_of(dry_run(stock(BALLOON_ON), host(free_share=0.10), [guest])) is None


def test_a_guest_that_does_not_show_its_kernel_keeps_a_fixed_reserve():
    # mem_available == balloon_cur: 65536 KiB are assumed for the kernel,
    # so the floor is 600000 used + 65536 + 300000 reserve
    guest = balloon_guest(unused=400_000)
    assert target_of(dry_run(stock(BALLOON_ON), host(free_share=0.10), [guest])) == 965_536


def test_what_a_guest_swapped_out_counts_as_used():
    # uses 600000 with 40000 kernel: floor 900000; with 100000 swapped out, 1000000
    guest = balloon_guest(kernel=40_000, unused=400_000, swap_usage=0)
    assert target_of(dry_run(stock(BALLOON_ON), host(free_share=0.10), [guest])) == 950_000
    guest = balloon_guest(kernel=40_000, unused=400_000, swap_usage=100_000)
    assert target_of(dry_run(stock(BALLOON_ON), host(free_share=0.10), [guest])) is None


def test_emergency_squeezes_page_cache_and_a_little_more():
    # 10000 free, 390000 page cache (mem_free counts both): under pressure
    # the guest is short of memory and keeps it all; in an emergency (2%
    # free) only its kernel's 65536 and 600000 of its own count, less 5%:
    # the 5% step wins
    guest = balloon_guest(unused=10_000, mem_free=400_000)
    assert target_of(dry_run(stock(BALLOON_ON), host(free_share=0.10), [guest])) is None
    assert target_of(dry_run(stock(BALLOON_ON), host(free_share=0.02), [guest])) == 950_000
    # with 35536 of page cache and free memory the floor binds: 1030000 - 50000
    guest = balloon_guest(unused=10_000, mem_free=35_536)
    assert target_of(dry_run(stock(BALLOON_ON), host(free_share=0.02), [guest])) == 980_000


def test_emergency_squeezes_the_host_back_to_10_percent_free_not_further():
    free = host(free_share=0.049, total=HOST)
    short = 0.10 * HOST - free["mem_free"]
    guests = [balloon_guest(cur=4_000_000, low=1_000_000, high=8_000_000,
                            unused=3_000_000)] * 3
    result = dry_run(stock(BALLOON_ON), free, guests)
    shrunk = [4_000_000 - target_of(result, i) for i in range(3)]
    assert sum(shrunk) == pytest.approx(short)
    assert shrunk[0] < 200_000          # less than the 5% step


def test_a_dip_in_the_latest_sample_alone_neither_squeezes_nor_gives_back():
    history = [host(free_share=0.5), host(free_share=0.5), host(free_share=0.02)]
    result = dry_run(stock(BALLOON_ON), history, [balloon_guest()])
    assert target_of(result) is None    # average 34% free: no pressure; but 2% now: hold


def test_no_squeeze_once_the_host_is_back_in_the_hold_band_though_the_average_lags():
    history = [host(free_share=0.10), host(free_share=0.10), host(free_share=0.28)]
    result = dry_run(stock(BALLOON_ON), history, [balloon_guest()])
    assert target_of(result) is None    # average 16% free, but 28% now


@pytest.mark.parametrize("free, target", [
    (0.19, 950_000),        # under pressure: squeeze
    (0.21, None),           # between the thresholds: hold
    (0.29, None),
    (0.31, 1_050_000),      # plenty: give back
])
def test_hysteresis_squeeze_below_20_percent_give_back_above_30_hold_between(free, target):
    result = dry_run(stock(BALLOON_ON), host(free_share=free), [balloon_guest()])
    assert target_of(result) == target


def test_giving_back_never_takes_the_host_below_the_plenty_threshold():
    # 0.5 point above 30% free of 16 GiB is 83886 KiB, shared by size,
    # less than two 5% steps of 50000.
    free = host(free_share=0.305)
    room = free["mem_free"] - 0.30 * free["mem_available"]
    guests = [balloon_guest(), balloon_guest(cur=1_500_000)]
    result = dry_run(stock(BALLOON_ON), free, guests)
    grown = [target_of(result, 0) - 1_000_000, target_of(result, 1) - 1_500_000]
    assert sum(grown) == pytest.approx(room)
    assert grown[1] == pytest.approx(1.5 * grown[0])


def test_a_squeeze_brings_the_host_back_to_the_middle_of_the_band_not_further():
    # 19.9% free: 5.1 points short of 25%, shared by three 8 GiB guests,
    # less than their 5% steps (400000 each).
    free = host(free_share=0.199)
    short = 0.25 * free["mem_available"] - free["mem_free"]
    guests = [balloon_guest(cur=8_000_000, low=1_000_000, high=8_000_000,
                            unused=6_000_000)] * 3
    result = dry_run(stock(BALLOON_ON), free, guests)
    shrunk = [8_000_000 - target_of(result, i) for i in range(3)]
    assert sum(shrunk) == pytest.approx(short)
    assert shrunk[0] < 400_000


def short_guest(**extra):
    """Uses 980000 of 1000000 (40000 kernel, 20000 free): short of memory (under 15% free)."""
    return balloon_guest(kernel=40_000, unused=20_000, **extra)


def test_while_holding_a_guest_short_of_memory_takes_the_room_above_the_pressure_line():
    # 25% of 10000000 free: 500000 above the pressure threshold, more than
    # its 30% reserve back (280000)
    result = dry_run(stock(BALLOON_ON), host(free_share=0.25, total=HOST),
                     [short_guest(), balloon_guest()])
    assert [target_of(result, i) for i in range(2)] == [1_500_000, None]
    # two short guests share that room; each still gets its reserve back
    result = dry_run(stock(BALLOON_ON), host(free_share=0.25, total=HOST),
                     [short_guest(), short_guest()])
    assert [target_of(result, i) for i in range(2)] == [1_280_000, 1_280_000]


@pytest.mark.parametrize("free, target", [
    (0.15, 1_280_000),      # its reserve back (280000), out of 500000 above 10% free
    (0.12, 1_200_000),      # only the 200000 above 10% free
    (0.09, None),           # no room above 10%: it waits
])
def test_under_pressure_a_guest_short_of_memory_gets_its_reserve_back_from_the_host(free, target):
    result = dry_run(stock(BALLOON_ON), host(free_share=free, total=HOST), [short_guest()])
    assert target_of(result) == target


def test_a_surging_guest_takes_the_hosts_free_memory_above_the_emergency_level():
    # its use jumped by 290000 above its average (more than 5% of its
    # size): at 15% free it gets the 1000000 above 5% free, up to balloon_max
    history = [balloon_guest(kernel=40_000, unused=600_000), short_guest()]
    result = dry_run(stock(BALLOON_ON), host(free_share=0.15, total=HOST), [history])
    assert target_of(result) == 2_000_000
    result = dry_run(stock(BALLOON_ON), host(free_share=0.10, total=HOST), [history])
    assert target_of(result) == 1_500_000


def test_plenty_of_memory_grows_towards_balloon_max():
    result = dry_run(stock(BALLOON_ON), host(free_share=0.5),
                     [balloon_guest(), balloon_guest(cur=1_990_000),
                      balloon_guest(cur=2_000_000)])
    assert [target_of(result, i) for i in range(3)] == [1_050_000, 2_000_000, None]


def test_changes_under_a_quarter_percent_are_skipped():
    result = dry_run(stock(BALLOON_ON), host(free_share=0.5), [balloon_guest(cur=1_999_000)])
    assert target_of(result) is None


def test_guests_without_memory_stats_are_skipped():
    guest = balloon_guest()
    del guest["mem_unused"]
    result = dry_run(stock(BALLOON_ON), host(free_share=0.10), [guest])
    assert target_of(result) is None


def test_guest_below_balloon_min_is_raised_to_it():
    guest = balloon_guest(cur=400_000)
    result = dry_run(stock(BALLOON_ON), host(free_share=0.10), [guest])
    assert target_of(result) == 500_000


def test_guest_without_a_balloon_is_left_alone():
    result = dry_run(stock(BALLOON_ON), host(free_share=0.10), [{"mem_unused": 5}])
    assert target_of(result) is None


# -- KSM --------------------------------------------------------------------
def ksm(parameters=None, **host_stats):
    return dry_run(stock(parameters), host(**host_stats), [])["host"]


def test_ksm_runs_under_pressure_with_a_boosted_scan_rate():
    assert ksm(free_share=0.10) == {"ksm_run": 1, "ksm_pages_to_scan": 400,
                                    "ksm_sleep_millisecs": 10}


def test_ksm_stops_when_memory_is_plentiful_and_leaves_its_tunables():
    assert ksm(free_share=0.5, ksm_pages_to_scan=400) == {"ksm_run": 0}


def test_ksm_runs_with_plenty_free_when_committed_memory_would_not_fit():
    # 16 GiB host, 50% free, but qemu processes have committed 14 GiB:
    # 14 + 20% reserve (3.2) > 16, so KSM runs, its scan rate decaying.
    controls = ksm(free_share=0.5, ksm_pages_to_scan=400, ksm_shareable=14 * GIB)
    assert controls == {"ksm_run": 1, "ksm_pages_to_scan": 350, "ksm_sleep_millisecs": 10}
    # 12 GiB committed fits (12 + 3.2 < 16): KSM stays off.
    assert ksm(free_share=0.5, ksm_shareable=12 * GIB) == {"ksm_run": 0}


@pytest.mark.parametrize("free, pages, expected", [
    (0.10, 1200, 1250), (0.5, 100, 64), (0.5, 64, 64), (0.10, 64, 364),
])
def test_ksm_scan_rate_stays_within_64_and_1250(free, pages, expected):
    controls = ksm(free_share=free, ksm_pages_to_scan=pages, ksm_shareable=15 * GIB)
    assert controls["ksm_pages_to_scan"] == expected


@pytest.mark.parametrize("total_gib, sleep", [(16, 10), (8, 20), (4, 40), (64, 10)])
def test_ksm_sleep_scales_with_host_memory(total_gib, sleep):
    assert ksm(total=total_gib * GIB, free_share=0.10)["ksm_sleep_millisecs"] == sleep


def test_merge_mode_changes_only_when_nothing_is_shared():
    controls = ksm(free_share=0.10, ksm_merge_across_nodes=0, ksm_pages_sharing=0)
    assert controls["ksm_merge_across_nodes"] == 1 and controls["ksm_run"] == 1


def test_shared_pages_are_unmerged_before_the_merge_mode_changes():
    controls = ksm(free_share=0.10, ksm_merge_across_nodes=0, ksm_pages_sharing=500)
    assert controls["ksm_run"] == 2 and "ksm_merge_across_nodes" not in controls


def test_merge_mode_follows_the_parameter():
    controls = ksm("(set ksmMergeAcrossNodes False)", ksm_merge_across_nodes=1)
    assert controls["ksm_merge_across_nodes"] == 0


def test_disabled_ksm_unmerges_shared_pages_then_stays_off():
    assert ksm("(set ksmEnabled False)", free_share=0.10, ksm_pages_sharing=10)["ksm_run"] == 2
    assert ksm("(set ksmEnabled False)", free_share=0.10, ksm_pages_sharing=0)["ksm_run"] == 0


# -- vCPU tuning -------------------------------------------------------------
def cputune(limit, vcpus, cpus=1, parameters=None):
    guest = {"vcpu_user_limit": limit, "vcpu_count": vcpus, "vcpu_quota": -1,
             "vcpu_period": 100000}
    return dry_run(stock(parameters), host(cpu_count=cpus), [guest])["guests"][0]


def test_cputune_limit_50_one_cpu_one_vcpu():
    assert cputune(50, 1) == {"vcpu_quota": 50000, "vcpu_period": 100000}


def test_cputune_small_quota_scales_quota_and_period_together():
    assert cputune(10, 100) == {"vcpu_quota": 1100, "vcpu_period": 1100000}


def test_cputune_spreads_the_limit_over_host_cpus_and_vcpus():
    assert cputune(50, 4, cpus=2) == {"vcpu_quota": 25000, "vcpu_period": 100000}


def test_cputune_without_a_limit_sets_quota_minus_one():
    assert cputune(100, 2)["vcpu_quota"] == -1


def test_cputune_can_be_disabled():
    assert cputune(50, 1, parameters="(set cpuTuneEnabled False)") == {}


def test_cputune_skips_guests_without_cpu_stats():
    assert dry_run(stock(), host(), [{"x": 1}])["guests"] == [{}]


# -- I/O tuning --------------------------------------------------------------
LIMITS = {"total_bytes_sec": 1000, "read_bytes_sec": 0, "write_bytes_sec": 0,
          "total_iops_sec": 50, "read_iops_sec": 0, "write_iops_sec": 0}
ZERO = dict.fromkeys(LIMITS, 0)


def disk(current=None):
    return {"name": "vda", "path": "/dev/vda", "guaranteed": {"total_bytes_sec": 10},
            "maximum": LIMITS, "current": current or ZERO}


def test_iotune_sets_each_disk_to_its_maximum():
    result = dry_run(stock(), host(), [{"io_tune": [disk()]}])
    assert result["guests"][0]["io_tune"] == [
        {"name": "vda", "path": "/dev/vda", "ioTune": LIMITS}]


def test_iotune_reports_nothing_when_limits_are_already_right():
    assert dry_run(stock(), host(), [{"io_tune": [disk(LIMITS)]}])["guests"] == [{}]


def test_iotune_off_removes_every_limit():
    result = dry_run(stock("(set ioTuneEnabled False)"), host(),
                     [{"io_tune": [disk(LIMITS)]}])
    assert result["guests"][0]["io_tune"] == [
        {"name": "vda", "path": "/dev/vda", "ioTune": ZERO}]


def test_iotune_skips_guests_without_disks():
    assert dry_run(stock(), host(), [{"io_tune": []}, {"x": 1}])["guests"] == [{}, {}]


# -- everything together -------------------------------------------------------
def test_one_cycle_of_the_whole_set():
    guests = [
        dict(balloon_guest(), vcpu_user_limit=50, vcpu_count=1, io_tune=[disk()]),
        {"vcpu_user_limit": 100, "vcpu_count": 2},
    ]
    result = dry_run(stock(BALLOON_ON), host(free_share=0.10), guests)
    assert result == {
        "host": {"ksm_run": 1, "ksm_pages_to_scan": 400, "ksm_sleep_millisecs": 10},
        "guests": [
            {"balloon_target": 950_000, "vcpu_quota": 50000, "vcpu_period": 100000,
             "io_tune": [{"name": "vda", "path": "/dev/vda", "ioTune": LIMITS}]},
            {"vcpu_quota": -1, "vcpu_period": 100000},
        ],
    }
