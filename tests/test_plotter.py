"""plot-dir: one momplot-NNN directory per run, tab-separated files per entity."""
import os

import pytest

from mom.plotter import (PlotDataError, Plotter, new_run_dir, parse_controls, parse_samples,
                         read_plot_dir)


def lines_of(path):
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def test_run_directories_are_numbered(tmp_path):
    first = new_run_dir(str(tmp_path))
    second = new_run_dir(str(tmp_path))
    assert os.path.basename(first) == "momplot-001"
    assert os.path.basename(second) == "momplot-002"


def test_header_then_one_row_per_sample_with_the_time_since_the_start(tmp_path):
    plotter = Plotter(str(tmp_path), "vm/1", start=1000.0)
    plotter.plot({"mem_free": 10, "balloon_cur": 200, "io_tune": [object()]}, 1000.0)
    plotter.plot({"mem_free": 11, "balloon_cur": None}, 1015.25)
    assert lines_of(tmp_path / "vm_1.dat") == [
        "elapsed\tballoon_cur\tmem_free", "0\t200\t10", "15.25\t\t11"]


def test_a_host_time_field_stays_a_field(tmp_path):
    plotter = Plotter(str(tmp_path), "host", start=0)
    plotter.plot({"time": 1700000000, "mem_free": 5}, 30)
    assert lines_of(tmp_path / "host.dat") == ["elapsed\tmem_free\ttime", "30\t5\t1700000000"]


def test_without_a_start_the_run_starts_at_the_first_time_any_of_its_plotters_gets(tmp_path):
    run = new_run_dir(str(tmp_path))
    host = Plotter(run, "host")
    host.plot({"mem_free": 5}, 1000.5)
    host.plot({"mem_free": 6}, 1015.5)
    guest = Plotter(run, "vm")            # a guest that appears later
    guest.plot({"balloon_cur": 7}, 1015.5)
    guest.plot_controls({}, 1030.5)
    assert [line.split("\t")[0] for line in lines_of(os.path.join(run, "host.dat"))] == [
        "elapsed", "0", "15"]
    assert lines_of(os.path.join(run, "vm.dat"))[1] == "15\t7"
    assert lines_of(os.path.join(run, "vm.controls"))[1] == "30\t{}"


def test_a_guest_that_comes_back_appends_under_the_same_header(tmp_path):
    Plotter(str(tmp_path), "vm").plot({"a": 1, "b": 2}, 0)
    Plotter(str(tmp_path), "vm").plot({"b": 3, "c": 4}, 60)
    assert lines_of(tmp_path / "vm.dat") == ["elapsed\ta\tb", "0\t1\t2", "60\t\t3"]


def test_controls_one_json_line_per_evaluation(tmp_path):
    plotter = Plotter(str(tmp_path), "vm", start=5)
    plotter.plot_controls({"balloon_target": 950000.0, "vcpu_quota": -1}, 20)
    plotter.plot_controls({}, 35)
    assert lines_of(tmp_path / "vm.controls") == [
        "elapsed\tcontrols", '15\t{"balloon_target": 950000.0, "vcpu_quota": -1}', "30\t{}"]


def test_a_write_failure_is_logged_once_and_not_raised(tmp_path, caplog):
    plotter = Plotter(str(tmp_path / "gone"), "vm")
    for now in range(3):
        plotter.plot({"a": 1}, now)
        plotter.plot_controls({"x": 1}, now)
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2          # one per file


# -- reading -------------------------------------------------------------------
def test_parse_samples_with_elapsed():
    series = parse_samples("elapsed\tballoon_cur\tmem_free\tname\n"
                           "0\t200\t10\tx\n15.5\t\t1.5\ty\n")
    assert series.fields == ["balloon_cur", "mem_free", "name"]
    assert series.times == [0.0, 15.5]
    assert series.samples == [{"balloon_cur": 200, "mem_free": 10, "name": "x"},
                              {"balloon_cur": None, "mem_free": 1.5, "name": "y"}]


def test_parse_samples_of_an_old_file_has_no_times():
    series = parse_samples("balloon_cur\tmem_free\n200\t10\n\t11\n")
    assert series.times is None
    assert series.samples == [{"balloon_cur": 200, "mem_free": 10},
                              {"balloon_cur": None, "mem_free": 11}]


def test_parse_samples_with_an_empty_elapsed_cell_falls_back_to_order():
    series = parse_samples("elapsed\ta\n0\t1\n\t2\n")
    assert series.times is None and [s["a"] for s in series.samples] == [1, 2]


def test_parse_samples_skips_a_repeated_header():
    series = parse_samples("elapsed\ta\n0\t1\nelapsed\ta\n15\t2\n")
    assert series.times == [0, 15] and len(series.samples) == 2


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("elapsed\ta\n0\t1\t2\n", "line 2: 3 cells, the header has 2"),
    ("elapsed\ta\nsoon\t1\n", "line 2: elapsed 'soon' is not a number"),
])
def test_parse_samples_refuses_malformed_files(text, message):
    with pytest.raises(PlotDataError, match=message):
        parse_samples(text, "vm.dat")


def test_parse_controls():
    assert parse_controls('elapsed\tcontrols\n15\t{"balloon_target": 950000.0}\n30\t{}\n') == [
        (15.0, {"balloon_target": 950000.0}), (30.0, {})]


@pytest.mark.parametrize("text, message", [
    ("15 {}\n", "expected elapsed<TAB>controls"),
    ("15\t{oops\n", "not JSON"),
    ("15\t[1]\n", "not a JSON object"),
])
def test_parse_controls_refuses_malformed_lines(text, message):
    with pytest.raises(PlotDataError, match=message):
        parse_controls(text)


def test_read_plot_dir_round_trips_what_the_plotter_wrote(tmp_path):
    run = new_run_dir(str(tmp_path))
    host, guest = Plotter(run, "host", start=100), Plotter(run, "vm 1", start=100)
    for step in range(3):
        now = 100 + 15 * step
        host.plot({"mem_free": 1000 - step, "mem_available": 4000}, now)
        guest.plot({"balloon_cur": 500 + step}, now)
        host.plot_controls({"ksm_run": 1}, now)
        guest.plot_controls({"balloon_target": 475.0} if step else {}, now)
    recording = read_plot_dir(run)
    assert recording.host.times == [0, 15, 30]
    assert [s["mem_free"] for s in recording.host.samples] == [1000, 999, 998]
    assert list(recording.guests) == ["vm_1"]
    assert recording.guests["vm_1"].samples[-1] == {"balloon_cur": 502}
    assert recording.controls["vm_1"] == [(0, {}), (15, {"balloon_target": 475.0}),
                                          (30, {"balloon_target": 475.0})]
    assert recording.controls["host"][0] == (0, {"ksm_run": 1})


def test_read_plot_dir_without_a_host_file_is_refused(tmp_path):
    (tmp_path / "vm.dat").write_text("a\n1\n")
    with pytest.raises(PlotDataError, match="no host.dat"):
        read_plot_dir(str(tmp_path))
