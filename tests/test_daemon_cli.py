"""momd as upstream runs it: options, signals, -d with a pid file, one-line
start-up errors (real processes against libvirt's test:///default), and
--check-config connecting to nothing."""
from __future__ import annotations

import configparser
import fnmatch
import os
import signal
import socket
import stat
import subprocess
import sys
import tomllib

import pytest
from waiting import wait_for

from mom import daemon, rpc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_conf(tmp_path, rpc_port: str, **main: str) -> str:
    policies = tmp_path / "policies"
    policies.mkdir(exist_ok=True)
    (policies / "00-a.policy").write_text("(defvar a 1)\n")
    lines = {"host-monitor-interval": "0.1", "guest-monitor-interval": "0.1",
             "guest-manager-interval": "0.1", "policy-engine-interval": "0.2",
             "main-loop-interval": "0.2", "hypervisor-interface": "libvirt",
             "libvirt-hypervisor-uri": "test:///default", "controllers": "",
             "rpc-port": rpc_port, "policy-dir": str(policies), **main}
    conf = tmp_path / "mom.conf"
    conf.write_text("[main]\n" + "".join(f"{k} = {v}\n" for k, v in lines.items())
                    + "[logging]\nverbosity = info\n"
                    + "[host]\ncollectors = HostMemory\n"
                    + "[guest]\ncollectors = GuestQemuProcOptional\n")
    return str(conf)


def momd_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "mom", *args]


def start(*args: str, log: str | None = None) -> subprocess.Popen:
    return subprocess.Popen(momd_command(*args, *(("-l", log) if log else ())), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def answers(path: str) -> bool:
    try:
        return rpc.connect(path, timeout=2).ping()
    except OSError:
        return False


@pytest.fixture
def sock(tmp_path) -> str:
    return str(tmp_path / "mom.sock")


# -- signals ------------------------------------------------------------------

def test_sigterm_stops_cleanly_and_removes_the_socket(tmp_path, sock):
    gid = os.getgid()
    proc = start("-c", write_conf(tmp_path, sock, **{"rpc-socket-group": str(gid)}))
    try:
        wait_for(lambda: answers(sock), timeout=10, what="momd answering")
        st = os.lstat(sock)
        assert (stat.S_IMODE(st.st_mode), st.st_gid) == (0o660, gid)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert not os.path.exists(sock)
    assert "SIGTERM: stopping" in err


def test_sighup_reloads_the_policy_dir_and_keeps_it_when_a_file_is_broken(tmp_path, sock):
    conf = write_conf(tmp_path, sock)
    log = str(tmp_path / "mom.log")
    policies = tmp_path / "policies"
    proc = start("-c", conf, log=log)
    try:
        wait_for(lambda: answers(sock), timeout=10, what="momd answering")
        assert stat.S_IMODE(os.lstat(sock).st_mode) == 0o600
        client = rpc.connect(sock)
        assert client.getNamedPolicies() == {"00-a": "(defvar a 1)\n"}

        (policies / "10-b.policy").write_text("(defvar b 2)\n")
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "10-b" in client.getNamedPolicies(), what="reload")

        (policies / "00-a.policy").write_text("(defvar a 3)\n")
        (policies / "10-b.policy").write_text("(defvar b\n  (+ 1\n")     # half edited
        proc.send_signal(signal.SIGHUP)
        broken = f"{policies / '10-b.policy'}:2:3: "
        wait_for(lambda: broken in open(log).read(), what="the refusal in the log")
        assert client.getNamedPolicies() == {"00-a": "(defvar a 1)\n",
                                             "10-b": "(defvar b 2)\n"}
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0


def test_daemon_mode_writes_the_pid_file_and_removes_it_on_sigterm(tmp_path, sock):
    pid_file = tmp_path / "momd.pid"
    out = subprocess.run(momd_command("-c", write_conf(tmp_path, sock), "-d",
                                      "--pid-file", str(pid_file)),
                         cwd=ROOT, capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert (out.stdout, out.stderr) == ("", "")
    pid = int(pid_file.read_text())
    try:
        assert answers(sock)            # running when -d returned
        assert os.getsid(pid) not in (pid, os.getsid(0))   # a new session, not its leader
        assert os.readlink(f"/proc/{pid}/cwd") == "/"
        assert os.readlink(f"/proc/{pid}/fd/1") == "/dev/null"
    finally:
        os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not pid_file.exists() and not os.path.exists(sock), timeout=10,
             what="pid file and socket removed")
    wait_for(lambda: not os.path.exists(f"/proc/{pid}")
             or open(f"/proc/{pid}/stat").read().split()[2] == "Z", what="daemon gone")


# -- start-up errors: one line, exit 2 ------------------------------------------

def _error_cases(tmp_path):
    """name -> (argv, expected in the line, what to close after); run all at
    once, each a whole process."""
    cases = {}
    live = tmp_path / "live"
    live.mkdir()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(live / "mom.sock"))
    listener.listen()
    cases["live socket"] = (["-c", write_conf(live, str(live / "mom.sock"))],
                            "another process", listener)
    regular = tmp_path / "regular"
    regular.mkdir()
    (regular / "mom.sock").write_text("precious\n")
    cases["regular file"] = (["-c", write_conf(regular, str(regular / "mom.sock"))],
                             "not a socket", None)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    cases["port in use"] = (["-c", write_conf(tmp_path, str(busy.getsockname()[1]))],
                            "Address already in use", busy)
    bad = tmp_path / "bad.conf"
    bad.write_text("[main]\npolicy-engine-interval = soon\n")
    cases["config value"] = (["-c", str(bad)], "policy-engine-interval", None)
    cases["unknown option"] = (["--policy-directory", "x"], "unrecognized arguments", None)
    cases["daemon, bad config"] = (["-c", str(bad), "-d", "--pid-file",
                                    str(tmp_path / "d.pid")], "policy-engine-interval", None)
    return cases


@pytest.fixture(scope="module")
def error_runs(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("errors")
    cases = _error_cases(tmp_path)
    procs = {name: start(*argv) for name, (argv, _, _) in cases.items()}
    try:
        results = {name: (*proc.communicate(timeout=20), proc.returncode)
                   for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            proc.kill()
    for _, _, held in cases.values():
        if held is not None:
            held.close()
    return tmp_path, {name: (results[name], cases[name][1]) for name in cases}


@pytest.mark.parametrize("case", ["live socket", "regular file", "port in use",
                                  "config value", "unknown option", "daemon, bad config"])
def test_a_startup_error_is_one_line_and_exit_2(error_runs, case):
    _, results = error_runs
    (out, err, code), expected = results[case]
    assert code == 2
    lines = [line for line in err.splitlines() if " - mom." not in line]   # log records
    assert len(lines) == 1 and lines[0].startswith("momd: "), err
    assert expected in lines[0]
    assert "Traceback" not in err and out == ""


def test_a_regular_file_at_the_socket_path_is_left_untouched(error_runs):
    tmp_path, _ = error_runs
    assert (tmp_path / "regular" / "mom.sock").read_text() == "precious\n"


@pytest.fixture
def own_signals():
    """main() installs momd's signal handlers; give pytest its own back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.mark.parametrize("case, expected", [
    ("missing directory", "directory"), ("missing config", "does not exist"),
    ("bad verbosity", "verbosity"), ("plot-dir", "plot-dir"), ("pid file", "pid file")])
def test_more_startup_errors_in_process(tmp_path, own_signals, capsys, case, expected):
    no_rpc = write_conf(tmp_path, "-1")
    missing_dir = tmp_path / "missing"
    missing_dir.mkdir()
    argv = {
        "missing directory": ["-c", write_conf(missing_dir, str(tmp_path / "no" / "x.sock"))],
        "missing config": ["-c", str(tmp_path / "nope.conf")],
        "bad verbosity": ["-c", no_rpc, "-v", "7"],
        "plot-dir": ["-c", no_rpc, "-p", str(tmp_path / "np")],
        "pid file": ["-c", no_rpc, "--pid-file", str(tmp_path / "no" / "momd.pid")],
    }[case]
    assert daemon.main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("momd: ") and expected in err[0]


# -- options ------------------------------------------------------------------

def test_upstream_options_map_to_the_configuration(tmp_path):
    args = daemon.build_parser().parse_args(
        ["-c", "x.conf", "-P", "/pol", "-p", "/plot", "-l", "stdio", "-v", "0", "-d",
         "--pid-file", "/p.pid"])
    assert (args.config_file, args.daemon, args.pid_file) == ("x.conf", True, "/p.pid")
    overrides = daemon.overrides_from(args)
    assert dict(overrides.items("main")) == {"policy-dir": "/pol", "plot-dir": "/plot",
                                             "policy": ""}
    assert dict(overrides.items("logging")) == {"log": "stdio", "verbosity": "0"}
    rules = daemon.overrides_from(daemon.build_parser().parse_args(["-r", "/main.policy"]))
    assert dict(rules.items("main")) == {"policy": "/main.policy", "policy-dir": ""}


def test_verbosity_0_silences_mom():
    from mom.config import parse_verbosity

    assert parse_verbosity("0") > parse_verbosity("critical")


def test_default_config_file_is_etc_mom_conf_when_it_exists(tmp_path, monkeypatch):
    parser = daemon.build_parser()
    monkeypatch.setattr(daemon, "DEFAULT_CONFIG", str(tmp_path / "mom.conf"))
    assert daemon.config_file(parser.parse_args([])) == ""
    (tmp_path / "mom.conf").write_text("[main]\n")
    assert daemon.config_file(parser.parse_args([])) == str(tmp_path / "mom.conf")
    assert daemon.config_file(parser.parse_args(["-c", "other.conf"])) == "other.conf"


def test_the_shipped_units_run_momd_with_options_it_knows():
    import vdsm_plugin

    for name in (vdsm_plugin.SERVICE_UNIT, vdsm_plugin.STANDALONE_UNIT):
        unit = configparser.ConfigParser(strict=False, interpolation=None)
        unit.optionxform = str
        unit.read(vdsm_plugin.data_path(name))
        command = unit.get("Service", "ExecStart").split()
        assert command[0] == "/usr/bin/momd"
        daemon.build_parser().parse_args(command[1:])          # exits 2 if unknown
        assert unit.get("Service", "ExecReload") == "/bin/kill -HUP $MAINPID"
    vdsm = configparser.ConfigParser(strict=False, interpolation=None)
    vdsm.optionxform = str
    vdsm.read(vdsm_plugin.data_path(vdsm_plugin.SERVICE_UNIT))
    assert vdsm.get("Service", "ExecStart") == "/usr/bin/momd -c /etc/vdsm/mom.conf"
    assert (vdsm.get("Service", "Restart"), vdsm.get("Service", "RestartSec")) == ("always", "5")
    assert set(vdsm.get("Unit", "Conflicts").split()) == {"momd.service", "ksmtuned.service"}
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as handle:
        patterns = tomllib.load(handle)["tool"]["setuptools"]["package-data"]["vdsm_plugin"]
    assert any(fnmatch.fnmatch(vdsm_plugin.STANDALONE_UNIT, p) for p in patterns)


# -- --check-config -------------------------------------------------------------

@pytest.fixture
def no_hypervisor(monkeypatch):
    from mom import hypervisor

    def refuse(config):
        raise AssertionError("--check-config built the hypervisor")
    monkeypatch.setattr(hypervisor, "create", refuse)


def test_check_config_connects_to_nothing_and_lists_the_policies(
        tmp_path, sock, no_hypervisor, capsys):
    conf = write_conf(tmp_path, sock, **{"libvirt-hypervisor-uri": "qemu+tcp://192.0.2.1/x"})
    assert daemon.main(["-c", conf, "--check-config"]) == 0
    assert capsys.readouterr().out == "configuration OK; policies: 00-a\n"
    assert not os.path.exists(sock)


def test_check_config_reports_policy_errors_by_file_line_col(tmp_path, no_hypervisor, capsys):
    conf = write_conf(tmp_path, "-1")
    (tmp_path / "policies" / "10-b.policy").write_text("(defvar b 1)\n(+ b\n")
    assert daemon.main(["-c", conf, "--check-config"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"momd: {tmp_path / 'policies' / '10-b.policy'}:2:1: ")


def test_check_config_checks_a_single_rules_file(tmp_path, no_hypervisor, capsys):
    rules = tmp_path / "main.policy"
    rules.write_text("(+ 1\n")
    assert daemon.main(["-r", str(rules), "--check-config"]) == 2
    assert capsys.readouterr().err.startswith(f"momd: {rules}:1:1: ")


def test_check_config_checks_plot_dir(tmp_path, no_hypervisor, capsys):
    conf = write_conf(tmp_path, "-1")
    assert daemon.main(["-c", conf, "-p", str(tmp_path / "missing"), "--check-config"]) == 2
    assert "plot-dir" in capsys.readouterr().err
    assert daemon.main(["-c", conf, "-p", str(tmp_path), "--check-config"]) == 0
