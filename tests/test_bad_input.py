"""Bad input from outside gets a clear error and loses nothing: config
values, policy directories, hypervisor replies, misbehaving plug-ins."""
from __future__ import annotations

import configparser
import logging
import os
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "fake_vdsm"))

import fakehost  # noqa: E402
import fakevdsm  # noqa: E402

import mom  # noqa: E402
from mom import daemon  # noqa: E402
from mom.collectors.base import Collector  # noqa: E402
from mom.hypervisor import vdsm  # noqa: E402

GiB = 1024 * 1024


@pytest.fixture
def host(tmp_path):
    return fakehost.FakeHost(str(tmp_path / "host"), mem_total=16 * GiB, mem_free=GiB)


def conf(host, **main):
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read_dict({"main": {"controllers": "Balloon",
                               **{k.replace("_", "-"): v for k, v in main.items()}},
                      "host": {"collectors": "HostMemory", **host.mom_overrides()["host"]},
                      "guest": {"collectors": "GuestMemoryOptional, GuestBalloon"}})
    return parser


@pytest.mark.parametrize("value", ["inf", "1e10", "1e-9", "nan", "-5"])
def test_check_config_refuses_absurd_intervals(tmp_path, capsys, value):
    path = tmp_path / "mom.conf"
    path.write_text(f"[main]\nguest-monitor-interval = {value}\n")
    assert daemon.main(["-c", str(path), "--check-config"]) == 2
    err = capsys.readouterr().err
    assert "guest-monitor-interval" in err and repr(value) in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_fifo_in_the_policy_directory_is_skipped(tmp_path, host, caplog):
    policies = tmp_path / "mom.d"
    policies.mkdir()
    os.mkfifo(policies / "00-x.policy")
    (policies / "10-good.policy").write_text("(defvar good 1)\n")
    built: list[mom.MOM] = []
    maker = threading.Thread(target=lambda: built.append(
        mom.MOM("", conf(host, policy_dir=str(policies)),
                hypervisor=vdsm.VdsmHypervisor(*stub_vdsm({"statsList": []})))))
    maker.start()
    maker.join(5)
    assert not maker.is_alive(), "start-up hangs on the FIFO"
    assert list(built[0].getNamedPolicies()) == ["10-good"]
    assert "00-x.policy is not a regular file" in caplog.text


def stub_vdsm(reply):
    """API and supervdsm modules whose getAllVmStats answers ``reply[...]``."""
    class Global:
        def getAllVmStats(self):
            return {"status": {"code": 0, "message": "Done"}, **reply}

        def ping(self):
            return {"status": {"code": 0, "message": "Done"}}

    class API:
        @staticmethod
        def Global():
            return Global()

        @staticmethod
        def VM(vm_id):
            raise AssertionError("no per-VM call expected")

    return API, object()


COUNTING_POLICY = """
(with Guests guest
    (guest.SetVar "cycles" (+ 1 (if (null (guest.GetVar "cycles")) 0 (guest.GetVar "cycles")))))
"""


@pytest.mark.parametrize("bad", [
    {"statsList": "not a list"},
    {"statsList": None},
    {"statsList": [{"status": "Up", "vmName": "no id"}]},
])
def test_a_malformed_reply_keeps_guests_and_their_history(host, caplog, bad):
    vm = fakevdsm.FakeVdsm().add_vm(name="vm1")
    reply = {"statsList": [vm.stats()]}
    api, supervdsm = stub_vdsm(reply)
    instance = mom.MOM("", conf(host, policy_engine_interval="5"),
                       hypervisor=vdsm.VdsmHypervisor(api, supervdsm, iotune=False))
    assert instance.setNamedPolicy("10-count", COUNTING_POLICY)
    cycle = instance.cycle
    cycle.run(0.0)
    guest = cycle.guests.entities(0.0)[0]
    assert guest.GetVar("cycles") == 1
    reply.clear()
    reply.update(bad)
    for t in (5.0, 10.0):
        cycle.run(t)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "getAllVmStats reply is unusable" in warnings[0].getMessage()
    reply.clear()
    reply["statsList"] = [vm.stats()]
    cycle.run(15.0)
    # the same guest, with the variables it had before the bad replies
    assert instance.getActiveGuests() == ["vm1"]
    assert cycle.guests.entities(15.0)[0].GetVar("cycles") == 2


class Exiting(Collector):
    """A plug-in whose library calls sys.exit() now and then."""
    kind = "guest"
    fields = frozenset({"probe"})
    optional_fields = frozenset({"probe"})
    calls = 0

    def collect(self):
        Exiting.calls += 1
        if Exiting.calls == 1:
            raise SystemExit(3)
        return {"probe": 1}


def test_system_exit_from_a_collector_is_caught_and_reported(host, caplog, monkeypatch):
    from mom import collectors
    monkeypatch.setitem(collectors._registry.builtins, "Exiting", Exiting)
    vm = fakevdsm.FakeVdsm().add_vm(name="vm1")
    api, supervdsm = stub_vdsm({"statsList": [vm.stats()]})
    parser = conf(host)
    parser.set("guest", "collectors", "GuestMemoryOptional, GuestBalloon, Exiting")
    instance = mom.MOM("", parser, hypervisor=vdsm.VdsmHypervisor(api, supervdsm,
                                                                  iotune=False))
    instance.cycle.run(0.0)               # does not raise
    assert "collector Exiting crashed" in caplog.text
    instance.cycle.run(5.0)
    assert instance.getActiveGuests() == ["vm1"]
    assert instance.getStatistics()["guests"]["vm1"]["probe"] == 1


RUNAWAY = '(with (* "a" 100000) x { (with (* "a" 100000) y 0) 0 })'


def test_a_runaway_policy_is_stopped_within_the_configured_budget(host, caplog):
    vm = fakevdsm.FakeVdsm().add_vm(name="vm1")
    api, supervdsm = stub_vdsm({"statsList": [vm.stats()]})
    instance = mom.MOM("", conf(host, policy_max_seconds="0.3"),
                       hypervisor=vdsm.VdsmHypervisor(api, supervdsm, iotune=False))
    assert instance.setPolicy(RUNAWAY) is True        # it parses; it runs away
    started = time.monotonic()
    instance.cycle.run(0.0)
    assert time.monotonic() - started < 2.0
    assert "policy evaluation failed" in caplog.text and "50_main_" in caplog.text
    # the next cycle runs (and is stopped) again: MOM is not stuck in it
    instance.cycle.run(10.0)
    assert instance.policy_engine.evaluations == 0


def test_policy_budgets_are_checked_config_values(host):
    with pytest.raises(mom.ConfigError, match="policy-max-steps"):
        mom.MOM("", conf(host, policy_max_steps="0"))
