"""mom-plot: a plot-dir run turned into the picture's timeline and drawn."""
import sys

import pytest

from mom.plot_cli import main, timeline_data
from mom.plotter import PlotDataError, Plotter, new_run_dir, read_plot_dir


def recorded_run(tmp_path):
    run = new_run_dir(str(tmp_path))
    host, vm1, vm2 = (Plotter(run, n, start=10) for n in ("host", "vm1", "vm2"))
    for step in range(4):
        now = 10 + 15 * step
        host.plot({"mem_available": 4000, "mem_free": 1000 + step, "ksm_pages_sharing": step}, now)
        vm1.plot({"balloon_cur": 500 - step}, now)
        vm1.plot_controls({"balloon_target": 480.0} if step == 1 else {}, now)
        if step < 2:
            vm2.plot({"balloon_cur": 300}, now)
    return run


def test_timeline_from_a_recorded_run(tmp_path):
    data = timeline_data(read_plot_dir(recorded_run(tmp_path)))
    assert data["times"] == [0, 15, 30, 45]
    assert data["host_total_kib"] == 4000
    assert data["host_free_kib"] == [1000, 1001, 1002, 1003]
    assert data["ksm_shared_kib"] == [0, 4, 8, 12]
    assert data["guests"] == {
        "vm1": {"balloon_cur": [500, 499, 498, 497],
                # the target the policy last set, from when it set it
                "balloon_target": [None, 480, 480, 480]},
        # vm2 left after two samples; no controls recorded for it
        "vm2": {"balloon_cur": [300, 300, None, None]},
    }


def test_timeline_from_an_old_run_without_times(tmp_path):
    (tmp_path / "host.dat").write_text("mem_available\tmem_free\n4000\t1000\n4000\t900\n")
    (tmp_path / "vm1.dat").write_text("balloon_cur\n500\n450\n")
    data = timeline_data(read_plot_dir(str(tmp_path)))
    assert data["times"] == [0, 1]
    assert data["ksm_shared_kib"] == [None, None]
    assert data["guests"] == {"vm1": {"balloon_cur": [500, 450]}}


def test_a_host_file_without_memory_size_is_refused(tmp_path):
    (tmp_path / "host.dat").write_text("mem_free\n1000\n")
    with pytest.raises(PlotDataError, match="mem_available"):
        timeline_data(read_plot_dir(str(tmp_path)))


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_mom_plot_writes_a_png_of_the_picture_size(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    output = tmp_path / "run.png"
    assert main([recorded_run(tmp_path), "-o", str(output)]) == 0
    assert capsys.readouterr().out.strip() == str(output)
    assert png_size(output) == (1200, 900)


def test_mom_plot_names_the_png_after_the_run_by_default(tmp_path):
    pytest.importorskip("matplotlib")
    run = recorded_run(tmp_path)
    assert main([run + "/"]) == 0
    assert png_size(run + ".png") == (1200, 900)


def test_mom_plot_without_matplotlib_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    output = tmp_path / "run.png"
    assert main([recorded_run(tmp_path), "-o", str(output)]) == 2
    assert "mom-overcommit[plot]" in capsys.readouterr().err
    assert not output.exists()


def test_mom_plot_of_a_directory_that_is_no_recording(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "no host.dat" in capsys.readouterr().err
