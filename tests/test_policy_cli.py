"""mom-policy check / eval / repl."""
import io
import json
import subprocess
import sys

import pytest

from mom.policy import cli


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_passes_on_good_files(tmp_path, capsys):
    a = tmp_path / "a.policy"
    a.write_text("(defvar x 1)\n")
    assert run_cli(capsys, "check", str(a)) == (0, "", "")


def test_check_reports_every_bad_file_as_file_line_col(tmp_path, capsys):
    good = tmp_path / "good.policy"
    good.write_text("1")
    bad1 = tmp_path / "bad1.policy"
    bad1.write_text("(defvar a 1)\n  (+ a\n")
    bad2 = tmp_path / "bad2.policy"
    bad2.write_text("(x))")
    code, out, _ = run_cli(capsys, "check", str(bad1), str(good), str(bad2))
    assert code == 1
    assert out.splitlines() == [
        f"{bad1}:2:3: unclosed '(' (the text ends before its ')')",
        f"{bad2}:1:4: unexpected ')' (nothing is open here)",
    ]


def test_check_unreadable_file(tmp_path, capsys):
    code, out, _ = run_cli(capsys, "check", str(tmp_path / "missing.policy"))
    assert code == 1 and "cannot read" in out


def test_check_prints_warnings_and_strict_fails_on_them(tmp_path, capsys):
    p = tmp_path / "w.policy"
    p.write_text("(def f () (not))")
    code, out, _ = run_cli(capsys, "check", str(p))
    assert code == 0
    assert out == f"{p}:1:11: warning: 'not' takes 1 argument, got 0\n"
    code, _, _ = run_cli(capsys, "check", "--strict", str(p))
    assert code == 1


def test_eval_prints_the_dry_run_as_json(tmp_path, capsys):
    p = tmp_path / "p.policy"
    p.write_text('(Host.Control "ksm_run" 1) (with Guests g (g.Control "t" (+ 1 g.x)))')
    guest_file = tmp_path / "g.json"
    guest_file.write_text('{"x": 41, "name": "vm2"}')
    code, out, _ = run_cli(capsys, "eval", "--host", '{"mem_free": 1}',
                           "--guest", '[{"x": 1}, {"x": 2}]', "--guest", str(guest_file), str(p))
    assert code == 0
    assert json.loads(out) == {"host": {"ksm_run": 1}, "guests": [{"t": 3}, {"t": 42}]}


def test_eval_error_is_reported_with_file_line_col(tmp_path, capsys):
    p = tmp_path / "p.policy"
    p.write_text("\n(+ 1 'a')")
    code, _, err = run_cli(capsys, "eval", "--host", "{}", str(p))
    assert code == 1
    assert err.startswith(f"{p}:2:1: (+ 1 \"a\") failed")


def test_eval_bad_json(tmp_path, capsys):
    p = tmp_path / "p.policy"
    p.write_text("1")
    code, _, err = run_cli(capsys, "eval", "--host", "{not json", str(p))
    assert code == 2 and "mom-policy:" in err


def test_repl_evaluates_lines_and_continues_open_forms(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("(defvar x 5)\n(+ x\n 1)\nnope\nHost.a\n"))
    code, out, _ = run_cli(capsys, "repl", "--host", '{"a": 9}')
    assert code == 0
    assert out.splitlines() == ["5", "6", "repl: undefined symbol 'nope' at line 1 col 1", "9"]


@pytest.mark.parametrize("args", [["--help"], ["check", "--help"], ["eval", "--help"]])
def test_help(args):
    out = subprocess.run([sys.executable, "-m", "mom.policy.cli", *args],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "usage: mom-policy" in out.stdout
