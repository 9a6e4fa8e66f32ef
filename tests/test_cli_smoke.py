"""The installed console scripts start and answer --help."""
import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["mom", "mom.policy.cli"])
def test_help_exits_zero(module):
    out = subprocess.run([sys.executable, "-m", module, "--help"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout
