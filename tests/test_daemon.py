"""momd as a user runs it: the README's example, config checks, clear errors."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def momd(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "mom", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_readme_example_runs_and_balloons_the_test_guest():
    pytest.importorskip("libvirt")
    out = momd("-c", "examples/standalone-test-driver.conf", "--run-for", "4")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    guest = summary["statistics"]["guests"]["test"]
    # The test driver's domain starts at 8 GiB; the demo policy shrinks it
    # towards 1.33 x used memory, 10% per cycle.
    assert guest["balloon_cur"] < 8 * 1024 * 1024
    assert summary["statistics"]["host"]["mem_available"] > 0
    assert "balloon" in out.stdout + out.stderr


def test_check_config_lists_the_policies(tmp_path):
    (tmp_path / "a.policy").write_text("(defvar x 1)\n")
    conf = tmp_path / "mom.conf"
    conf.write_text(f"[main]\nhypervisor-interface: libvirt\n"
                    f"libvirt-hypervisor-uri: test:///default\npolicy-dir: {tmp_path}\n")
    pytest.importorskip("libvirt")
    out = momd("-c", str(conf), "--check-config")
    assert out.returncode == 0, out.stderr
    assert "policies: a" in out.stdout


def test_bad_config_exits_2_naming_the_key(tmp_path):
    conf = tmp_path / "mom.conf"
    conf.write_text("[main]\npolicy-engine-interval: soon\n")
    out = momd("-c", str(conf))
    assert out.returncode == 2
    assert "policy-engine-interval" in out.stderr and "'soon'" in out.stderr
