"""plot-dir: one momplot-NNN directory per run, one tab-separated file per entity."""
import os

from mom.plotter import Plotter, new_run_dir


def test_run_directories_are_numbered(tmp_path):
    first = new_run_dir(str(tmp_path))
    second = new_run_dir(str(tmp_path))
    assert os.path.basename(first) == "momplot-001"
    assert os.path.basename(second) == "momplot-002"


def test_header_then_one_row_per_sample(tmp_path):
    plotter = Plotter(str(tmp_path), "vm/1")
    plotter.plot({"mem_free": 10, "balloon_cur": 200, "io_tune": [object()]})
    plotter.plot({"mem_free": 11, "balloon_cur": None})
    lines = open(os.path.join(str(tmp_path), "vm_1.dat")).read().splitlines()
    assert lines == ["balloon_cur\tmem_free", "200\t10", "\t11"]
