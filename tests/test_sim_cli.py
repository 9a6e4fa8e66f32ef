"""mom-sim: determinism, --compare, --json, scenarios and the picture."""
import io
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from mom.sim import cli, runner
from mom.sim.picture import PictureError, Timeline, draw
from mom.sim.scenario import ScenarioError, load, parse, scenario_names

SHORT = ["--guests", "3", "--duration", "10m"]


def run_json(capsys, *args):
    assert cli.main([*args, "--json", "--no-plot"]) == 0
    return json.loads(capsys.readouterr().out)


def short(name="overcommit-150", **options):
    return load(name).with_options(**{"guests": 3, "duration": 600, **options})


# -- determinism -------------------------------------------------------------
def test_the_same_seed_gives_the_same_run():
    first = runner.run(short(), runner.POLICY_STOCK)
    second = runner.run(short(), runner.POLICY_STOCK)
    assert first.summary == second.summary
    assert first.timeline == second.timeline
    assert first.summary.balloon_changes > 0          # MOM did act


def test_another_seed_gives_another_run():
    one = runner.run(short(seed=1), runner.POLICY_NONE)
    two = runner.run(short(seed=2), runner.POLICY_NONE)
    assert one.timeline.guests["vm01"]["working_set"] != two.timeline.guests["vm01"]["working_set"]


def test_the_json_output_is_byte_identical_across_runs(capsys):
    args = ["overcommit-150", *SHORT, "--compare", "none", "--json", "--no-plot"]
    assert cli.main(args) == 0
    first = capsys.readouterr().out
    assert cli.main(args) == 0
    assert capsys.readouterr().out == first


# -- --compare ---------------------------------------------------------------
def test_compare_a_policy_with_itself_gives_equal_columns(capsys, tmp_path):
    policies = tmp_path / "mine"
    runner.write_stock_policies(str(policies))
    doc = run_json(capsys, "overcommit-150", *SHORT, "--policy", str(policies),
                   "--compare", str(policies), "stock")
    mine, again, stock = doc["runs"]
    assert mine == again
    assert {k: v for k, v in stock.items() if k != "policy"} == \
        {k: v for k, v in mine.items() if k != "policy"}
    assert mine["policy"] == "mine"


def test_compare_none_runs_without_mom(capsys):
    doc = run_json(capsys, "overcommit-150", *SHORT, "--compare", "none")
    stock, none = doc["runs"]
    assert none["policy"] == "none"
    assert none["balloon_changes"] == 0 and none["ksmd_cpu_seconds"] == 0
    assert stock["balloon_changes"] > 0
    assert (doc["scenario"], doc["guests"], doc["duration_s"]) == ("overcommit-150", 3, 600)


def test_the_table_puts_policies_side_by_side(capsys, tmp_path):
    assert cli.main(["relaxed", *SHORT, "--compare", "none", "-o", str(tmp_path / "p.png")]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[1].split()
    assert header == ["stock", "none"]
    assert "host swap-out (MiB)" in out and "balloon reversals / guest-hour" in out
    assert f"picture: {tmp_path / 'p.png'}" in out


def test_bad_arguments_are_clear_errors(capsys):
    assert cli.main(["no-such-scenario"]) == 2
    assert "unknown scenario 'no-such-scenario'" in capsys.readouterr().err
    assert cli.main(["relaxed", "--policy", "/no/such/dir"]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["relaxed", "--duration", "soon"])


# -- scenarios -----------------------------------------------------------------
def test_the_promised_scenarios_ship():
    assert {"relaxed", "overcommit-150", "fill-and-drain", "boot-storm"} <= set(scenario_names())


@pytest.mark.parametrize("name", scenario_names())
def test_each_scenario_loads(name):
    scenario = load(name)
    assert scenario.guest_count > 0 and scenario.duration > 0 and scenario.description


def test_overcommit_150_guests_add_up_to_150_percent_of_the_host():
    for guests in (12, 5):
        s = load("overcommit-150").with_options(guests=guests)
        maxima = sum(g.count * g.memory_mib for g in s.guests)
        assert maxima / s.host_memory_mib() == pytest.approx(1.5, rel=1e-3)


def test_options_override_the_scenario():
    s = load("boot-storm").with_options(guests=5, duration=120, seed=9, interval=5)
    assert (s.guest_count, s.duration, s.seed, s.interval) == (5, 120, 9, 5)
    assert [g.count for g in s.guests] == [2, 3]           # 8:12 shared out


def test_a_typo_in_a_scenario_names_the_key():
    with pytest.raises(ScenarioError, match="unknown key 'memroy_mib'"):
        parse({"host": {"memroy_mib": 1}, "guests": [{}]}, "typo")
    with pytest.raises(ScenarioError, match="workload kind 'spiky'"):
        parse({"host": {"memory_mib": 4096}, "guests": [{"workload": {"kind": "spiky"}}]}, "x")
    with pytest.raises(ScenarioError, match="is not a whole number"):
        parse({"host": {"memory_mib": "lots"}, "guests": [{}]}, "x")


def test_a_scenario_file_by_path(tmp_path, capsys):
    path = tmp_path / "tiny.toml"
    path.write_text('duration = 120\n[host]\nmemory_mib = 4096\n[[guests]]\ncount = 2\n')
    doc = run_json(capsys, str(path), "--compare", "none")
    assert doc["scenario"] == "tiny" and doc["guests"] == 2


# -- the picture -------------------------------------------------------------------
def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_the_picture_is_a_png_of_the_asked_size(tmp_path):
    result = runner.run(short(), runner.POLICY_STOCK)
    path = tmp_path / "run.png"
    draw(result.timeline, str(path), width_px=800, height_px=600)
    assert png_size(path) == (800, 600)


def test_mom_sim_writes_its_picture_by_default(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["relaxed", *SHORT]) == 0
    assert png_size(tmp_path / "mom-sim-relaxed.png") == (1200, 900)


def test_a_timeline_with_unknown_values_draws(tmp_path):
    timeline = Timeline(title="recorded", times=[0.0, 15.0, 30.0], host_total_kib=8e6,
                        host_free_kib=[4e6, None, 3e6], pressure_share=0.2,
                        ksm_shared_kib=[None, None, None],
                        guests={"a": {"balloon_cur": [1e6, 9e5, None]}})
    draw(timeline, str(tmp_path / "t.png"))
    assert png_size(tmp_path / "t.png") == (1200, 900)
    with pytest.raises(PictureError, match="no samples"):
        draw(Timeline("empty", [], 1.0, [], 0.2, [], {}), str(tmp_path / "e.png"))


def test_a_host_too_small_for_itself_is_refused():
    with pytest.raises(ScenarioError, match="must exceed its own use"):
        parse({"host": {"memory_mib": 1024}, "guests": [{}]}, "tiny")


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_a_progress_bar_on_a_terminal_only(monkeypatch, capsys):
    terminal = FakeTerminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert cli.main(["relaxed", *SHORT, "--no-plot", "--compare", "none"]) == 0
    bar = terminal.getvalue()
    assert "600/1200" in bar and "sim s" in bar and "none" in bar
    monkeypatch.undo()
    assert cli.main(["relaxed", *SHORT, "--no-plot"]) == 0
    assert "sim s" not in capsys.readouterr().err


def test_results_do_not_depend_on_hash_randomisation():
    args = [sys.executable, "-m", "mom.sim.cli", "overcommit-150", "--guests", "3",
            "--duration", "10m", "--json", "--no-plot"]
    outputs = set()
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        done = subprocess.run(args, env=env, capture_output=True, text=True, check=True,
                              cwd=Path(cli.__file__).parents[2])
        outputs.add(done.stdout)
    assert len(outputs) == 1
    assert json.loads(outputs.pop())["runs"][0]["balloon_changes"] > 0


def test_upstream_is_a_named_policy(capsys):
    from mom.sim import cli

    assert cli.main(["relaxed", "--guests", "2", "--duration", "120", "--no-plot",
                     "--compare", "upstream", "--json"]) == 0
    import json
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [run["policy"] for run in runs] == ["stock", "upstream"]
