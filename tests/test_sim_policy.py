"""The stock balloon policy, measured on the simulator (issue 11's figures).

Each scenario runs once, as shipped (guests, duration, seed), with VDSM's
stock policies and ballooning on, which is what ``mom-sim SCENARIO`` runs.
"""
import pytest

from mom.sim import runner, scenario


class BelowMinimum:
    """Watches every simulated second for a balloon under balloon_min."""

    def __init__(self):
        self.seen = []

    def __call__(self, sim):
        for guest in sim.guests:
            if guest.running and min(guest.cur, guest.target) < guest.min_kib:
                self.seen.append((sim.now, guest.name, guest.cur, guest.target))


def run(name, policy=runner.POLICY_STOCK):
    watch = BelowMinimum()
    summary = runner.run(scenario.load(name), policy, on_step=watch).summary
    return summary, watch.seen


@pytest.fixture(scope="module")
def fill_and_drain():
    return run("fill-and-drain")


@pytest.fixture(scope="module")
def overcommit():
    return run("overcommit-150")


@pytest.fixture(scope="module")
def overcommit_without_mom():
    return run("overcommit-150", runner.POLICY_NONE)[0]


def test_fill_and_drain_settles_at_most_one_reversal_per_guest_hour(fill_and_drain):
    summary, _ = fill_and_drain
    assert summary.balloon_changes > 0          # the policy did act
    assert summary.balloon_reversals_per_guest_hour <= 1.0


def test_overcommit_150_the_host_never_swaps(overcommit, overcommit_without_mom):
    assert overcommit_without_mom.host_swap_out_mib > 0     # the scenario needs ballooning
    assert overcommit[0].host_swap_out_mib == 0


def test_overcommit_150_swaps_at_least_ten_times_less_than_without_mom(
        overcommit, overcommit_without_mom):
    # Without MOM only the host swaps guest memory (a guest with all its
    # memory never swaps), so host and guest swap-out are compared together.
    assert overcommit[0].swap_out_total_mib * 10 <= overcommit_without_mom.swap_out_total_mib


@pytest.mark.parametrize("scenario_run", ["fill_and_drain", "overcommit"])
def test_no_balloon_goes_below_balloon_min(scenario_run, request):
    summary, below = request.getfixturevalue(scenario_run)
    assert summary.balloon_changes > 0
    assert below == []
