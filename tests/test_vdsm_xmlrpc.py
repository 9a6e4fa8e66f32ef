"""``vdsmxmlrpc``: MOM -> VDSM over XML-RPC/HTTPS against a fake VDSM on a
real socket (mutual TLS with certificates made here, or plain HTTP)."""
from __future__ import annotations

import logging
import os
import threading
from typing import Any

import pytest

from fake_vdsm_server import FakeVdsmServer
from fake_vdsm_server.helpers import Clock, endpoint, log_lines
from waiting import wait_for

from mom import config as mom_config
from mom import hypervisor
from mom.hypervisor import vdsm
from mom.hypervisor.base import GuestGoneError, HypervisorError
from mom.hypervisor.vdsm_xmlrpc import VdsmXmlRpcHypervisor

IO_POLICY = [{"name": "vda", "path": "/rhev/a",
              "guaranteed": {"total_bytes_sec": "1000"},
              "maximum": {"total_bytes_sec": "5000", "read_iops_sec": 300}}]


class Counting(VdsmXmlRpcHypervisor):
    """Counts connection attempts."""
    attempts = 0

    def _open(self) -> Any:
        self.attempts += 1
        return super()._open()


def backend(server: FakeVdsmServer, clock: Clock | None = None,
            cls: type[VdsmXmlRpcHypervisor] = VdsmXmlRpcHypervisor, **changes: Any) -> Any:
    kwargs: dict[str, Any] = {"clock": clock} if clock is not None else {}
    return cls(endpoint(server, **changes), **kwargs)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return log_lines(caplog.records, logging.WARNING)


def test_poll_gives_what_thread_mode_gives_for_the_same_vdsm(server: FakeVdsmServer) -> None:
    state = server.state
    state.add_vm(name="full", io_policy=IO_POLICY)
    state.add_vm(name="no-agent", agent=False)
    state.add_vm(name="no-balloon", balloon=False)
    state.add_vm(name="down", status="Down")
    state.add_vm(name="io-in-stats", io_policy=IO_POLICY, iotune_in_stats=True,
                 io_current={"vda": {"total_bytes_sec": 4000}})
    expected = vdsm.VdsmHypervisor(state.api, state.supervdsm, iotune=True).poll()
    hv = backend(server)
    got = hv.poll()
    assert [g.info.name for g in got] == ["full", "no-agent", "no-balloon", "io-in-stats"]
    assert got == expected
    assert got[-1].stats["iotune"][0]["current"]["total_bytes_sec"] == 4000
    hv.close()


@pytest.mark.parametrize("count", [1, 100])
def test_one_stats_call_per_poll_and_each_policy_at_most_every_300_s(
        server: FakeVdsmServer, clock: Clock, count: int) -> None:
    vms = server.state.add_vms(count, io_policy=IO_POLICY)
    hv = backend(server, clock)
    assert len(hv.poll()) == count
    assert server.count("getAllVmStats") == 1
    assert sorted(args[0] for args in server.calls_of("getIoTunePolicy")) == sorted(
        vm.vm_id for vm in vms)
    for _ in range(4):              # cycles of 60 s: 240 s
        clock.advance(60)
        hv.poll()
    assert server.count("getAllVmStats") == 5
    clock.advance(59)
    hv.poll()
    assert server.count("getIoTunePolicy") == count
    clock.advance(1)
    hv.poll()
    assert server.count("getIoTunePolicy") == 2 * count
    assert set(server.methods()) == {"getAllVmStats", "getIoTunePolicy"}
    hv.close()


def test_setters_send_vdsm_xmlrpc_verbs(server: FakeVdsmServer) -> None:
    vm = server.state.add_vm(io_policy=IO_POLICY)
    hv = backend(server)
    hv.poll()
    server.clear_calls()
    assert hv.ping() is True
    hv.set_balloon_target(vm.vm_id, 1500000)
    hv.set_vcpu_tune(vm.vm_id, quota=50000, period=100000)
    tunables = [{"name": "vda", "path": "/rhev/a", "ioTune": {"total_bytes_sec": 5000}}]
    hv.set_io_tune(vm.vm_id, tunables)
    hv.ksm_tune({"run": 1, "sleep_millisecs": 10})
    assert server.methods() == ["ping", "setBalloonTarget", "vmSetCpuTunePeriod",
                                "vmSetCpuTuneQuota", "setIoTune", "setKsmTune"]
    assert server.calls_of("setBalloonTarget") == [(vm.vm_id, 1500000)]
    assert server.calls_of("vmSetCpuTunePeriod") == [(vm.vm_id, 100000)]
    assert server.calls_of("vmSetCpuTuneQuota") == [(vm.vm_id, 50000)]
    assert server.calls_of("setIoTune") == [(vm.vm_id, tunables)]
    assert server.calls_of("setKsmTune") == [({"run": 1, "sleep_millisecs": 10},)]
    assert server.state.ksm["sleep_millisecs"] == 10
    [guest] = hv.poll()
    assert guest.stats["balloon"]["balloon_cur"] == 1500000
    assert guest.stats["cputune"]["vcpu_quota"] == 50000
    assert guest.stats["iotune"][0]["current"]["total_bytes_sec"] == 5000
    hv.close()


def test_status_codes_map_to_errors_per_vm(server: FakeVdsmServer) -> None:
    a, b = server.state.add_vms(2)
    hv = backend(server)
    server.state.fail("setBalloonTarget", a.vm_id, code=42, message="balloon is stuck")
    with pytest.raises(HypervisorError, match="code 42: balloon is stuck") as info:
        hv.set_balloon_target(a.vm_id, 1200000)
    assert not isinstance(info.value, GuestGoneError)
    hv.set_balloon_target(b.vm_id, 1200000)
    assert b.balloon_cur == 1200000
    server.state.remove_vm(a.vm_id)
    with pytest.raises(GuestGoneError):
        hv.set_vcpu_tune(a.vm_id, period=50000)
    server.state.raise_on("ksmTune", exc=RuntimeError("supervdsm is down"))
    with pytest.raises(HypervisorError, match="supervdsm is down"):
        hv.ksm_tune({"run": 0})
    server.fail("getAllVmStats", 16, "Unexpected exception")
    with pytest.raises(HypervisorError, match="code 16"):
        hv.poll()
    hv.close()


def test_missing_stats_list_fails_the_poll(
        server: FakeVdsmServer, caplog: pytest.LogCaptureFixture) -> None:
    server.override("getAllVmStats", {"status": {"code": 0, "message": "Done"}})
    hv = backend(server)
    for _ in range(3):
        with pytest.raises(HypervisorError, match="not a list"):
            hv.poll()
    assert warnings(caplog) == []       # MOM's cycle reports it, once


def test_a_failing_policy_fetch_keeps_the_vm_managed(server: FakeVdsmServer, clock: Clock,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    a, b = server.state.add_vms(2, io_policy=IO_POLICY)
    server.state.fail("getIoTunePolicy", a.vm_id)
    hv = backend(server, clock)
    for _ in range(3):
        guests = {g.info.id: g for g in hv.poll()}
        clock.advance(15)
    assert guests[a.vm_id].stats["iotune"] == [] and "balloon" in guests[a.vm_id].stats
    assert guests[b.vm_id].stats["iotune"][0]["name"] == "vda"
    assert len(warnings(caplog)) == 1
    assert server.count("getIoTunePolicy") == 2      # a retried in 60 s, not every cycle
    hv.close()


def test_vdsm_gone_during_policy_fetches_logs_one_line(
        server: FakeVdsmServer, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    first = server.state.add_vms(5, io_policy=IO_POLICY)[0]
    server.drop("getIoTunePolicy")          # VDSM hangs up on these
    hv = backend(server, clock)
    guests = hv.poll()
    assert len(guests) == 5 and all(g.stats["iotune"] == [] for g in guests)
    # Tried (and resent) for the first VM only: no attempt per VM
    assert {args[0] for args in server.calls_of("getIoTunePolicy")} == {first.vm_id}
    [line] = warnings(caplog)
    assert "closed the connection" in line
    hv.close()


def test_plain_http(clock: Clock) -> None:
    with FakeVdsmServer() as srv:
        srv.state.add_vms(2)
        hv = backend(srv, clock)
        assert len(hv.poll()) == 2 and hv.ping()
        hv.close()


def test_tls_failures_give_one_clear_line(server: FakeVdsmServer, pki: Any, clock: Clock,
                                          caplog: pytest.LogCaptureFixture) -> None:
    cases = [
        ({"ca_file": pki.other_ca_cert}, ["not accepted with the CA file", pki.other_ca_cert]),
        ({"key_file": "/nonexistent/key.pem"},
         ["cannot read the key file /nonexistent/key.pem: No such file"]),
    ]
    for changes, expected in cases:
        caplog.clear()
        hv = backend(server, clock, **changes)
        for _ in range(3):
            with pytest.raises(HypervisorError, match="unreachable over XML-RPC"):
                hv.poll()
            clock.advance(61)
        [line] = warnings(caplog)
        assert f"127.0.0.1:{server.port}" in line
        for text in expected:
            assert text in line, (changes, line)
        hv.close()


def test_vdsm_down_at_start_then_up(server: FakeVdsmServer, clock: Clock,
                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mom.hypervisor")
    server.stop()
    server.state.add_vms(2)
    hv = backend(server, clock, cls=Counting)
    with pytest.raises(HypervisorError, match="connection refused"):
        hv.poll()
    with pytest.raises(HypervisorError, match="connection refused"):
        hv.poll()               # backing off: no new attempt
    server.start()
    clock.advance(1)
    assert len(hv.poll()) == 2
    assert len(warnings(caplog)) == 1
    assert any("answers again" in m for m in log_lines(caplog.records, logging.INFO))
    hv.close()


def test_vdsm_restarted_between_cycles_is_invisible(server: FakeVdsmServer,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    server.state.add_vms(2)
    hv = backend(server)
    assert len(hv.poll()) == 2
    server.restart()
    assert len(hv.poll()) == 2
    assert warnings(caplog) == []
    hv.close()


def test_a_request_that_times_out_fails_alone(server: FakeVdsmServer) -> None:
    a, b = server.state.add_vms(2)
    hv = backend(server, timeout=0.3)
    release = server.hang("setBalloonTarget")
    with pytest.raises(HypervisorError, match="no reply to setBalloonTarget"):
        hv.set_balloon_target(a.vm_id, 1200000)
    release.set()
    hv.set_vcpu_tune(b.vm_id, quota=2000)
    assert b.vcpu_quota == 2000
    hv.close()


def test_no_fd_or_thread_growth_over_failed_attempts(server: FakeVdsmServer,
                                                     clock: Clock) -> None:
    hv = backend(server, clock)
    server.stop()
    with pytest.raises(HypervisorError):
        hv.poll()
    clock.advance(61)
    wait_for(server.idle, what="the fake's connections closed")
    before = len(os.listdir("/proc/self/fd")), threading.active_count()
    for _ in range(50):
        with pytest.raises(HypervisorError):
            hv.poll()
        clock.advance(61)
    assert (len(os.listdir("/proc/self/fd")), threading.active_count()) == before


@pytest.mark.parametrize("name", ["vdsmxmlrpc", "vdsmxmlrpcbulk"])
def test_config_names_build_the_xmlrpc_backend(tmp_path: Any, name: str) -> None:
    path = tmp_path / "mom.conf"
    path.write_text(f"[main]\nhypervisor-interface = {name}\n"
                    "[vdsm]\nssl = false\nport = 8080\nrequest-timeout = 3\n")
    hv = hypervisor.create(mom_config.load(str(path)))
    assert isinstance(hv, VdsmXmlRpcHypervisor)
    assert (hv.endpoint.port, hv.endpoint.tls, hv.endpoint.timeout) == (8080, False, 3.0)
    assert hv.iotune is False       # no I/O-tune collector configured
