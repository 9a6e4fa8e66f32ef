"""Replay: a plot-dir recording fed through a policy directory, open-loop."""
import json
from pathlib import Path

import pytest

import vdsm_plugin
from mom.plotter import Plotter, new_run_dir, read_plot_dir
from mom.sim.replay import main, read_policy_dir, replay, stock_policies

GIB = 1024 * 1024                                   # KiB
STOCK_DIR = Path(vdsm_plugin.data_path(vdsm_plugin.POLICY_DIR))
KSM_PRESSURE = {"ksm_run": 1, "ksm_pages_to_scan": 400, "ksm_sleep_millisecs": 10}


def host_sample(free_share):
    total = 16 * GIB
    return {"mem_available": total, "mem_free": int(total * free_share),
            "mem_unused": int(total * free_share), "cpu_count": 1, "ksm_run": 0,
            "ksm_pages_to_scan": 100, "ksm_pages_sharing": 0, "ksm_merge_across_nodes": 1}


def guest_sample(cur=1_000_000, unused=600_000):
    return {"balloon_cur": cur, "balloon_min": 500_000, "balloon_max": 2_000_000,
            "mem_available": cur, "mem_unused": unused, "mem_free": unused}


def record(tmp_path, steps, start=500.0, interval=15):
    """A run directory as MOM writes it: per step (host sample, {guest: sample},
    {entity: controls} or None for no controls recorded)."""
    run = new_run_dir(str(tmp_path))
    plotters = {}

    def plotter(name):
        return plotters.setdefault(name, Plotter(run, name, start=start))

    for index, (host, guests, controls) in enumerate(steps):
        now = start + interval * index
        plotter("host").plot(host, now)
        for name, sample in guests.items():
            plotter(name).plot(sample, now)
        for name, values in (controls or {}).items():
            plotter(name).plot_controls(values, now)
    return run


def under_pressure_run(tmp_path):
    """Three evaluations under pressure, recorded from the stock set with ballooning on."""
    step = (host_sample(0.10), {"vm1": guest_sample()},
            {"host": KSM_PRESSURE, "vm1": {"balloon_target": 950000.0}})
    return record(tmp_path, [step] * 3)


def policy_dir(tmp_path, **replace):
    directory = tmp_path / "policies"
    directory.mkdir()
    for path in STOCK_DIR.glob("*.policy"):
        (directory / path.name).write_text(replace.get(path.stem, path.read_text()))
    return str(directory)


def test_the_policy_that_made_the_recording_replays_it_exactly(tmp_path):
    result = replay(read_plot_dir(under_pressure_run(tmp_path)), stock_policies())
    assert [s.time for s in result.steps] == [0, 15, 30]
    assert [[e.entity for e in s.entities] for s in result.steps] == [["host", "vm1"]] * 3
    assert result.steps[0].entities[1].replayed == {"balloon_target": 950000.0}
    assert result.steps[0].entities[0].replayed == KSM_PRESSURE
    summary = result.summary
    assert (summary.steps, summary.compared, summary.differing, summary.errors) == (3, 3, 0, 0)
    assert summary.per_control == {}


def test_another_policy_shows_where_it_would_have_differed(tmp_path):
    # VDSM's default: ballooning off, so under pressure the guest grows back instead.
    directory = policy_dir(tmp_path, **{"01-parameters": ""})
    result = replay(read_plot_dir(under_pressure_run(tmp_path)), read_policy_dir(directory))
    guest = result.steps[0].entities[1]
    assert guest.recorded == {"balloon_target": 950000.0}
    assert guest.replayed == {"balloon_target": 1050000.0}
    assert guest.differs == ["balloon_target"]
    assert result.steps[0].entities[0].differs == []
    assert (result.summary.differing, result.summary.per_control) == (3, {"balloon_target": 3})


def test_history_is_the_last_sample_history_length_samples(tmp_path):
    run = record(tmp_path, [({"mem_free": free}, {}, None) for free in (10, 20, 60)])
    policy = {"p": '(Host.Control "average" (Host.StatAvg "mem_free"))'}
    averages = {n: [s.entities[0].replayed["average"]
                    for s in replay(read_plot_dir(run), policy, n).steps]
                for n in (10, 2)}
    assert averages == {10: [10, 15, 30], 2: [10, 15, 40]}


def test_without_recorded_controls_every_host_sample_is_a_step(tmp_path):
    run = record(tmp_path, [(host_sample(0.10), {"vm1": guest_sample()}, None)] * 2)
    result = replay(read_plot_dir(run), stock_policies())
    assert [s.time for s in result.steps] == [0, 15]
    assert all(e.recorded is None and e.differs == [] for s in result.steps for e in s.entities)
    assert result.steps[1].entities[1].replayed == {"balloon_target": 950000.0}
    assert (result.summary.compared, result.summary.differing) == (0, 0)


def test_old_files_without_elapsed_are_aligned_by_position(tmp_path):
    host_columns = sorted(host_sample(0.1))
    guest_columns = sorted(guest_sample())
    (tmp_path / "host.dat").write_text("\t".join(host_columns) + "\n" + "".join(
        "\t".join(str(host_sample(share)[c]) for c in host_columns) + "\n"
        for share in (0.5, 0.10, 0.10)))
    # the guest's own history: 600000 unused, then 100000 (uses 900000 + 20% reserve)
    (tmp_path / "vm1.dat").write_text("\t".join(guest_columns) + "\n" + "".join(
        "\t".join(str(guest_sample(unused=unused)[c]) for c in guest_columns) + "\n"
        for unused in (600_000, 100_000, 100_000)))
    result = replay(read_plot_dir(str(tmp_path)), stock_policies(), history_length=1)
    assert [s.time for s in result.steps] == [0, 1, 2]
    assert [s.entities[1].replayed for s in result.steps] == [
        {"balloon_target": 1050000.0}, {}, {}]


def test_guests_take_part_only_while_they_are_sampled(tmp_path):
    steps = []
    for index in range(5):
        guests = {"vm1": guest_sample()}
        if index in (1, 2):
            guests["vm2"] = guest_sample()
        steps.append((host_sample(0.5), guests, None))
    result = replay(read_plot_dir(record(tmp_path, steps)), stock_policies())
    assert [[e.entity for e in s.entities][1:] for s in result.steps] == [
        ["vm1"], ["vm1", "vm2"], ["vm1", "vm2"], ["vm1"], ["vm1"]]


def test_a_failing_evaluation_is_reported_in_its_step_and_the_replay_goes_on(tmp_path):
    policy = '(Host.Control "inverse" (/ 1 Host.mem_free))'
    run = record(tmp_path, [(host_sample(share), {}, {"host": {}}) for share in (0.5, 0, 0.25)])
    result = replay(read_plot_dir(run), {"p": policy})
    assert [s.error is not None for s in result.steps] == [False, True, False]
    assert "p:" in result.steps[1].error
    assert result.steps[1].entities[0].replayed == {}
    assert result.summary.errors == 1


def test_policy_variables_live_across_steps_as_in_mom(tmp_path):
    policy = ('(Host.SetVar "n" (+ 1 (if (valid (Host.GetVar "n")) (Host.GetVar "n") 0)))\n'
              '(Host.Control "n" (Host.GetVar "n"))')
    run = record(tmp_path, [(host_sample(0.5), {}, None)] * 3)
    result = replay(read_plot_dir(run), {"p": policy})
    assert [s.entities[0].replayed for s in result.steps] == [{"n": 1}, {"n": 2}, {"n": 3}]


# -- command line -------------------------------------------------------------------
def test_the_table_marks_differences_and_summarises(tmp_path, capsys):
    directory = policy_dir(tmp_path, **{"01-parameters": ""})
    assert main([under_pressure_run(tmp_path), "-P", directory]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["elapsed", "entity", "control", "recorded", "replayed"]
    assert lines[1].split() == ["0", "host", "ksm_pages_to_scan", "400", "400"]
    assert "0 vm1 balloon_target 950000 1050000 *".split() in [line.split() for line in lines]
    assert "3 steps replayed, 3 with recorded controls; 3 differ" in out
    assert "  balloon_target: differs in 3 steps" in lines


def test_differences_only(tmp_path, capsys):
    directory = policy_dir(tmp_path, **{"01-parameters": ""})
    assert main([under_pressure_run(tmp_path), "-P", directory, "--differences"]) == 0
    table = capsys.readouterr().out.split("\n\n")[0].splitlines()
    assert len(table) == 4 and all(line.endswith("*") for line in table[1:])


def test_json_output(tmp_path, capsys):
    assert main([under_pressure_run(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["summary"] == {"steps": 3, "compared": 3, "differing": 0, "errors": 0,
                               "per_control": {}}
    assert data["steps"][2]["time"] == 30
    assert data["steps"][2]["entities"][1] == {
        "entity": "vm1", "replayed": {"balloon_target": 950000.0},
        "recorded": {"balloon_target": 950000.0}, "differs": []}


@pytest.mark.parametrize("make_args, message", [
    (lambda tmp: [str(tmp / "nothing")], "cannot read"),
    (lambda tmp: [str(tmp), "-P", str(tmp)], "no .policy files"),
])
def test_unusable_input_is_a_clear_error(tmp_path, capsys, make_args, message):
    run = under_pressure_run(tmp_path)
    args = make_args(tmp_path)
    if len(args) > 1:
        args[0] = run
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err


def test_a_policy_directory_with_a_broken_policy_is_refused(tmp_path, capsys):
    directory = policy_dir(tmp_path, **{"02-balloon": "(oops"})
    assert main([under_pressure_run(tmp_path), "-P", directory]) == 2
    assert "02-balloon" in capsys.readouterr().err


# -- a real MOM's recording ----------------------------------------------------------
def test_a_real_moms_recording_replayed_with_its_own_policy_shows_no_difference(tmp_path):
    """MOM on the simulator records its run in plot-dir (samples with the
    cycle's time, the controls of each evaluation); replaying the recording
    with the same policies finds every control."""
    import mom
    from mom.sim import runner, scenario
    from mom.sim.hypervisor import SimHypervisor
    from mom.sim.model import Simulation
    from mom.sim.procfs import ProcTree

    plot_dir = tmp_path / "plots"
    plot_dir.mkdir()
    run_dir = str(plot_dir / "momplot-001")
    sim_scenario = scenario.load("overcommit-150").with_options(guests=6, duration=1200)
    sim = Simulation(sim_scenario)
    tree = ProcTree(str(tmp_path / "host"), sim)
    tree.render()
    conf = runner.mom_overrides(sim_scenario.interval,
                                runner.write_stock_policies(str(tmp_path / "policies")), tree)
    conf["main"]["plot-dir"] = str(plot_dir)

    instance = mom.MOM("", conf, hypervisor=SimHypervisor(sim))
    try:
        due = 0.0
        while sim.now < sim_scenario.duration:
            if sim.now >= due:
                tree.render()
                due = instance.cycle.run(float(sim.now))
            sim.step()
    finally:
        instance.shutdown()

    recording = read_plot_dir(run_dir)
    assert sorted(recording.guests) == ["vm01", "vm02", "vm03", "vm04", "vm05", "vm06"]
    recorded = [c for rows in recording.controls.values() for _, c in rows]
    assert any("balloon_target" in c for c in recorded)
    result = replay(recording, stock_policies())
    assert result.summary.steps == len(recording.controls["host"]) > 30
    assert (result.summary.compared, result.summary.differing) == (result.summary.steps, 0)


def test_mom_sim_replay_runs_the_replay(tmp_path, capsys):
    from mom.sim import cli

    directory = policy_dir(tmp_path, **{"01-parameters": ""})
    assert cli.main(["--replay", under_pressure_run(tmp_path), "--policy", directory]) == 0
    assert "3 steps replayed, 3 with recorded controls; 3 differ" in capsys.readouterr().out
