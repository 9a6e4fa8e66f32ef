"""VDSM's front object (vdsm_plugin.momif), without a real MOM behind it."""
from __future__ import annotations

import configparser
import logging
import os
import tempfile
import threading
import xmlrpc.client
import time
from typing import Any

import pytest

from vdsm_plugin import momif


# -- pure helpers -----------------------------------------------------------

def test_render_parameters_one_set_line_per_key() -> None:
    text = momif.render_parameters({"balloonEnabled": True, "ksmEnabled": False,
                                    "pressure": 0.25, "count": 3, "mode": "fast",
                                    "quoted": 'say "hi"'})
    assert text.splitlines() == [
        "(set balloonEnabled True)",
        "(set ksmEnabled False)",
        "(set pressure 0.25)",
        "(set count 3)",
        '(set mode "fast")',
        "(set quoted 'say \"hi\"')",
    ]


@pytest.mark.parametrize("value", [[1], {"a": 1}, None, (1,), object(), b"x",
                                   float("nan"), float("inf"), "both ' and \""])
def test_render_refuses_what_a_policy_cannot_hold(value: Any) -> None:
    with pytest.raises(momif.PolicyParameterError, match="'p'"):
        momif.render_parameters({"p": value})


@pytest.mark.parametrize("name", ["", "1abc", "a b", "Host.x", "a)", 3])
def test_render_refuses_bad_names(name: Any) -> None:
    with pytest.raises(momif.PolicyParameterError, match="name"):
        momif.render_parameters({name: 1})


def test_ksm_stats_units() -> None:
    host = {"ksm_run": 1, "ksm_pages_to_scan": 64, "ksm_merge_across_nodes": 0,
            "ksm_pages_sharing": 5120, "ksmd_cpu_usage": 7}
    assert momif.ksm_stats(host, page_size=4096) == {
        "ksmState": True, "ksmPages": 64, "ksmMergeAcrossNodes": False,
        "memShared": 20, "ksmCpu": 7}
    no_numa = dict(host, ksm_run=0)
    del no_numa["ksm_merge_across_nodes"]
    stats = momif.ksm_stats(no_numa, page_size=4096)
    assert stats["ksmState"] is False and stats["ksmMergeAcrossNodes"] is True
    assert momif.ksm_stats({"mem_free": 1}) == {}
    # real page size by default
    assert momif.ksm_stats(host)["memShared"] == 5120 * os.sysconf("SC_PAGE_SIZE") // 2**20


def test_options_from_configparser_dict_and_none() -> None:
    parser = configparser.ConfigParser()
    parser.read_string("[mom]\nmode = thread\nconf = /x/mom.conf\ntuning_policy =\n")
    assert momif._option(parser, "mode", "process") == "thread"
    assert momif._option(parser, "tuning_policy", "01-parameters") == "01-parameters"
    assert momif._option(configparser.ConfigParser(), "mode", "process") == "process"
    assert momif._option({"mom": {"conf": "/y"}}, "conf", "") == "/y"
    assert momif._option(None, "conf", "/d") == "/d"


# -- thread mode over a stub MOM ------------------------------------------

class StubMOM:
    """The slice of mom.MOM the front uses."""

    def __init__(self, conf: str, hypervisor: Any = None) -> None:
        self.conf = conf
        self.hypervisor = hypervisor
        self.named: dict[str, str | None] = {}
        self.policy: str | None = None
        self.host: dict[str, Any] = {}
        self._stopped = threading.Event()
        self.started = False

    def start(self) -> None:
        self.started = True

    def run(self) -> None:
        self.start()
        self._stopped.wait()

    def shutdown(self) -> None:
        self._stopped.set()

    def setNamedPolicy(self, name: str, text: str | None) -> bool:
        self.named[name] = text
        return True

    def setPolicy(self, text: str) -> bool:
        self.policy = text
        return True

    def getStatistics(self) -> dict[str, Any]:
        return {"host": dict(self.host), "guests": {}}

    def getHostStatistics(self) -> dict[str, Any]:
        return dict(self.host)


def test_create_mom_thread_mode_runs_a_thread_named_mom() -> None:
    config = {"mom": {"mode": "thread", "conf": "/etc/vdsm/mom.conf"}}
    front = momif.create_mom(config, mom_factory=StubMOM, hypervisor="hv")
    try:
        assert isinstance(front, momif.ThreadMomFront)
        assert front.mom.conf == "/etc/vdsm/mom.conf" and front.mom.hypervisor == "hv"
        assert front.mom.started
        assert front.thread.name == "MOM" and front.thread.is_alive()
        assert front.getStatus() == "active"
    finally:
        started = time.monotonic()
        front.stop()
    assert time.monotonic() - started < 5
    assert not front.thread.is_alive()
    assert front.getStatus() == "inactive"


def test_set_policy_parameters_merges_and_installs_tuning_policy() -> None:
    front = momif.create_mom({"mom": {"mode": "thread", "tuning_policy": "01-params"}},
                             mom_factory=StubMOM)
    try:
        assert front.setPolicyParameters({"balloonEnabled": True}) is True
        assert front.mom.named["01-params"] == "(set balloonEnabled True)\n"
        front.setPolicyParameters({"ksmEnabled": False, "balloonEnabled": False})
        assert front.mom.named["01-params"] == (
            "(set balloonEnabled False)\n(set ksmEnabled False)\n")
        with pytest.raises(momif.PolicyParameterError, match="list"):
            front.setPolicyParameters({"cpuTuneEnabled": True, "bad": [1]})
        # refused as a whole: nothing stored, nothing installed
        assert front.policy_parameters() == {"balloonEnabled": False, "ksmEnabled": False}
        assert "cpuTuneEnabled" not in front.mom.named["01-params"]
        assert front.setPolicy("(+ 1 1)") and front.mom.policy == "(+ 1 1)"
    finally:
        front.stop()


def test_default_tuning_policy_name() -> None:
    front = momif.create_mom({"mom": {"mode": "thread"}}, mom_factory=StubMOM)
    try:
        front.setPolicyParameters({"x": 1})
        assert list(front.mom.named) == ["01-parameters"]
    finally:
        front.stop()


def test_get_ksm_stats_thread_mode(caplog: pytest.LogCaptureFixture) -> None:
    front = momif.create_mom({"mom": {"mode": "thread"}}, mom_factory=StubMOM)
    try:
        caplog.set_level(logging.WARNING, logger="vdsm.mom")
        assert front.getKsmStats() == {}          # no host sample yet: quiet
        assert caplog.records == []
        front.mom.host = {"mem_free": 1}          # a host sample without KSM
        assert front.getKsmStats() == {}
        assert front.getKsmStats() == {}
        assert len(caplog.records) == 1 and "HostKSM" in caplog.records[0].getMessage()
        front.mom.host = {"ksm_run": 1, "ksm_pages_to_scan": 100,
                          "ksm_merge_across_nodes": 1, "ksm_pages_sharing": 256,
                          "ksmd_cpu_usage": 3}
        stats = front.getKsmStats()
        assert stats["ksmState"] is True and stats["ksmPages"] == 100
        assert stats["memShared"] == 256 * os.sysconf("SC_PAGE_SIZE") // 2**20
    finally:
        front.stop()
    assert front.getKsmStats() == {}              # MOM stopped: empty, no exception


def test_thread_mode_start_failure_is_raised() -> None:
    class Broken(StubMOM):
        def __init__(self, conf: str, hypervisor: Any = None) -> None:
            raise RuntimeError("cannot start")

    with pytest.raises(RuntimeError, match="cannot start"):
        momif.create_mom({"mom": {"mode": "thread"}}, mom_factory=Broken)


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="mode"):
        momif.create_mom({"mom": {"mode": "fibre"}})


# -- process mode: MOM down, then up ----------------------------------------

def test_process_mode_degrades_when_mom_is_down(caplog: pytest.LogCaptureFixture) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "mom.sock")
        front = momif.create_mom({"mom": {"socket": path}})
        assert isinstance(front, momif.ProcessMomFront)     # process is the default
        caplog.set_level(logging.WARNING, logger="vdsm.mom")
        assert front.getStatus() == "inactive"
        assert front.getKsmStats() == {}
        assert front.setPolicy("(+ 1 1)") is False
        assert front.setPolicyParameters({"balloonEnabled": True}) is False
        assert len(caplog.records) == 1           # one warning, not one per call
        front.stop()


class StubServed(StubMOM):
    """StubMOM with every method MOM's RPC server exports."""

    def ping(self) -> bool:
        return True

    def getActiveGuests(self) -> list[str]:
        return []

    def getPolicy(self) -> str:
        return ""

    def getNamedPolicies(self) -> dict[str, str]:
        return {k: v for k, v in self.named.items() if v is not None}

    def resetPolicies(self) -> bool:
        return True

    def setVerbosity(self, level: Any) -> bool:
        return True


def test_process_mode_reconnects_and_resends_parameters(
        caplog: pytest.LogCaptureFixture) -> None:
    from mom.rpc import RpcServer

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "mom-vdsm.sock")
        front = momif.create_mom({"mom": {"mode": "process", "socket": path,
                                          "tuning_policy": "01-parameters"}})
        caplog.set_level(logging.INFO, logger="vdsm.mom")
        # MOM down: the parameters are kept for later.
        assert front.setPolicyParameters({"balloonEnabled": True}) is False

        served = StubServed("")
        served.host = {"ksm_run": 0, "ksm_pages_to_scan": 64, "ksm_pages_sharing": 0,
                       "ksmd_cpu_usage": 0, "ksm_merge_across_nodes": 1}
        server = RpcServer(served, path)
        server.start()
        try:
            assert front.getStatus() == "active"
            # coming back, MOM got the stored parameters first
            assert served.named["01-parameters"] == "(set balloonEnabled True)\n"
            assert front.getKsmStats()["ksmPages"] == 64
            assert front.setPolicyParameters({"ksmEnabled": False}) is True
            assert served.named["01-parameters"] == (
                "(set balloonEnabled True)\n(set ksmEnabled False)\n")
            assert front.setPolicy("(+ 1 1)") is True and served.policy == "(+ 1 1)"
        finally:
            server.stop()
        # MOM restarts: down for a while, then a fresh MOM without parameters.
        assert front.getStatus() == "inactive"
        fresh = StubServed("")
        server = RpcServer(fresh, path)
        server.start()
        try:
            assert front.getStatus() == "active"
            assert fresh.named["01-parameters"] == (
                "(set balloonEnabled True)\n(set ksmEnabled False)\n")
        finally:
            server.stop()
            front.stop()
        messages = [r.getMessage() for r in caplog.records]
        assert sum("not available" in m for m in messages) == 2   # once per outage
        assert sum("available again" in m for m in messages) == 2


# -- the shipped files -----------------------------------------------------

import fnmatch  # noqa: E402
import glob  # noqa: E402
import tomllib  # noqa: E402

import vdsm_plugin  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_thread_mode_conf_loads_and_names_vdsm() -> None:
    from mom import config

    conf = config.load(vdsm_plugin.data_path(vdsm_plugin.THREAD_CONF))
    assert conf.hypervisor_interface == "vdsm"
    assert conf.rpc is None
    assert conf.policy_dir == "/etc/vdsm/mom.d"
    assert {"Balloon", "KSM", "CpuTune", "IoTune"} == set(conf.controllers)
    assert "HostKSM" in conf.host_collectors      # getKsmStats needs it


def test_process_mode_conf_loads_and_serves_vdsms_socket() -> None:
    from mom import config

    conf = config.load(vdsm_plugin.data_path(vdsm_plugin.PROCESS_CONF))
    assert conf.rpc == momif.DEFAULT_SOCKET
    assert conf.policy_dir == "/etc/vdsm/mom.d"


def test_systemd_unit_runs_momd_with_vdsms_conf() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(vdsm_plugin.data_path(vdsm_plugin.SERVICE_UNIT))
    assert unit.get("Service", "ExecStart").split() == [
        "/usr/bin/momd", "-c", "/etc/vdsm/mom.conf"]
    assert unit.get("Service", "User") == "vdsm"
    assert unit.has_option("Install", "WantedBy")


def stock_policies() -> list[str]:
    return sorted(glob.glob(vdsm_plugin.data_path(os.path.join(vdsm_plugin.POLICY_DIR,
                                                               "*.policy"))))


def test_all_stock_policies_are_shipped() -> None:
    names = [os.path.basename(p) for p in stock_policies()]
    assert names == ["00-defines.policy", "01-parameters.policy", "02-balloon.policy",
                     "03-ksm.policy", "04-cputune.policy", "05-iotune.policy"]


def test_mom_policy_check_passes_on_every_shipped_policy() -> None:
    from mom.policy import cli

    assert cli.main(["check", "--strict", *stock_policies()]) == 0


def test_shipped_files_are_package_data() -> None:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as handle:
        patterns = tomllib.load(handle)["tool"]["setuptools"]["package-data"]["vdsm_plugin"]
    shipped = [vdsm_plugin.THREAD_CONF, vdsm_plugin.PROCESS_CONF, vdsm_plugin.SERVICE_UNIT,
               *(os.path.relpath(p, vdsm_plugin.data_path()) for p in stock_policies())]
    for name in shipped:
        assert os.path.isfile(vdsm_plugin.data_path(name)), name
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), name


@pytest.mark.parametrize("enabled", [True, False])
def test_parameters_written_by_the_front_switch_the_stock_policies(enabled: bool) -> None:
    """What setPolicyParameters installs works with the stock defines:
    (set balloonEnabled True) turns ballooning on, False leaves it off."""
    from mom.policy import dry_run

    policies = {}
    for path in stock_policies():
        with open(path, encoding="utf-8") as handle:
            policies[os.path.basename(path)[:-len(".policy")]] = handle.read()
    policies["01-parameters"] = momif.render_parameters(
        {"balloonEnabled": enabled, "ksmEnabled": False, "cpuTuneEnabled": True,
         "ioTuneEnabled": True, "ksmMergeAcrossNodes": True})
    host = {"mem_available": 16 * 2**20, "mem_free": 2**20, "mem_unused": 2**20,
            "cpu_count": 1, "ksm_run": 0, "ksm_pages_to_scan": 100, "ksm_pages_sharing": 0,
            "ksm_merge_across_nodes": 1}
    guest = {"balloon_cur": 2 * 2**20, "balloon_max": 2 * 2**20, "balloon_min": 2**20,
             "mem_available": 2 * 2**20, "mem_unused": 3 * 2**19, "mem_free": 3 * 2**19,
             "vcpu_user_limit": 100, "vcpu_count": 1, "vcpu_quota": -1,
             "vcpu_period": 100000, "io_tune": []}
    result = dry_run(policies, host, [guest])
    assert ("balloon_target" in result["guests"][0]) is enabled
    assert result["host"]["ksm_run"] == 0                    # ksmEnabled False


class Recording(StubServed):
    """Records which statistics call reached MOM."""

    def __init__(self, conf: str, hypervisor: Any = None) -> None:
        super().__init__(conf, hypervisor)
        self.asked: list[str] = []

    def getStatistics(self) -> dict[str, Any]:
        self.asked.append("getStatistics")
        return super().getStatistics()

    def getHostStatistics(self) -> dict[str, Any]:
        self.asked.append("getHostStatistics")
        return super().getHostStatistics()


def test_process_mode_ksm_stats_ask_for_the_host_sample_only() -> None:
    from mom.rpc import RpcServer

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "mom-vdsm.sock")
        served = Recording("")
        served.host = {"ksm_run": 1, "ksm_pages_to_scan": 64, "ksm_pages_sharing": 0,
                       "ksmd_cpu_usage": 3}
        server = RpcServer(served, path)
        server.start()
        front = momif.create_mom({"mom": {"mode": "process", "socket": path}})
        try:
            for _ in range(3):
                assert front.getKsmStats()["ksmCpu"] == 3
            # every guest's samples stay in MOM: VDSM parses only the host's
            assert served.asked == ["getHostStatistics"] * 3
        finally:
            front.stop()
            server.stop()


def test_process_mode_falls_back_for_a_mom_without_get_host_statistics(
        caplog: pytest.LogCaptureFixture) -> None:
    class OlderMom:
        """An older MOM's proxy: no getHostStatistics."""
        asked: list[str] = []

        def getHostStatistics(self) -> dict[str, Any]:
            raise xmlrpc.client.Fault(-32601, "method 'getHostStatistics' is not supported")

        def getStatistics(self) -> dict[str, Any]:
            self.asked.append("getStatistics")
            return {"host": {"ksm_run": 0, "ksm_pages_to_scan": 64, "ksm_pages_sharing": 0,
                             "ksmd_cpu_usage": 0}, "guests": {}}

    front = momif.create_mom({"mom": {"mode": "process", "socket": "/nonexistent.sock"}})
    front._proxy = OlderMom()
    caplog.set_level(logging.INFO, logger="vdsm.mom")
    assert front.getKsmStats()["ksmState"] is False
    assert front.getKsmStats()["ksmPages"] == 64
    assert OlderMom.asked == ["getStatistics", "getStatistics"]
    assert caplog.text.count("has no getHostStatistics") == 1
