"""``vdsmjsonrpcclient``: MOM -> VDSM over JSON-RPC/STOMP against a fake
VDSM on a real socket (mutual TLS with certificates made here, or plain)."""
from __future__ import annotations

import errno
import logging
import os
import socket
import threading
from typing import Any

import pytest

from fake_vdsm_server import FakeVdsmServer
from fake_vdsm_server.helpers import Clock, endpoint, log_lines
from fake_vdsm_server.server import read_stomp_frame, _Reader
from waiting import wait_for

from mom import config as mom_config
from mom import hypervisor
from mom.hypervisor import vdsm, vdsm_jsonrpc, vdsm_link
from mom.hypervisor.base import GuestGoneError, HypervisorError
from mom.hypervisor.stomp_frames import encode_frame
from mom.hypervisor.vdsm_jsonrpc import VdsmJsonRpcHypervisor
from mom.hypervisor.vdsm_link import Endpoint

IO_POLICY = [{"name": "vda", "path": "/rhev/a",
              "guaranteed": {"total_bytes_sec": "1000"},
              "maximum": {"total_bytes_sec": "5000", "read_iops_sec": 300}}]


class Counting(VdsmJsonRpcHypervisor):
    """Counts connection attempts."""
    attempts = 0

    def _open(self) -> Any:
        self.attempts += 1
        return super()._open()


def backend(server: FakeVdsmServer, clock: Clock | None = None,
            cls: type[VdsmJsonRpcHypervisor] = VdsmJsonRpcHypervisor,
            **changes: Any) -> Any:
    kwargs: dict[str, Any] = {"clock": clock} if clock is not None else {}
    return cls(endpoint(server, **changes), **kwargs)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return log_lines(caplog.records, logging.WARNING)


def infos(caplog: pytest.LogCaptureFixture) -> list[str]:
    return log_lines(caplog.records, logging.INFO)


def populate(state: Any) -> None:
    """VMs covering every case the conversion knows."""
    state.add_vm(name="full", io_policy=IO_POLICY,
                 io_current={"vda": {"total_bytes_sec": 4000}})
    state.add_vm(name="no-agent", agent=False)
    state.add_vm(name="no-balloon", balloon=False)
    state.add_vm(name="balloon-off", ballooning_enabled=False, vcpu_user_limit=50,
                 vcpu_count=4)
    state.add_vm(name="down", status="Down")
    state.add_vm(name="paused", status="Paused")
    state.add_vm(name="io-in-stats", io_policy=IO_POLICY, iotune_in_stats=True)


# -- stats ----------------------------------------------------------------------

def test_poll_gives_what_thread_mode_gives_for_the_same_vdsm(server: FakeVdsmServer) -> None:
    populate(server.state)
    thread_mode = vdsm.VdsmHypervisor(server.state.api, server.state.supervdsm, iotune=True)
    expected = thread_mode.poll()
    hv = backend(server)
    got = hv.poll()
    assert [g.info.name for g in got] == ["full", "no-agent", "no-balloon", "balloon-off",
                                          "io-in-stats"]
    assert got == expected
    full = got[0].stats
    assert full["iotune"][0]["maximum"]["total_bytes_sec"] == 5000
    assert full["iotune"][0]["current"]["total_bytes_sec"] == 4000
    assert "memory" not in got[1].stats and "balloon" not in got[2].stats
    hv.close()


@pytest.mark.parametrize("count", [1, 100])
def test_one_stats_call_per_poll_and_policies_at_most_every_300_s(
        server: FakeVdsmServer, clock: Clock, count: int) -> None:
    server.state.add_vms(count, io_policy=IO_POLICY)
    hv = backend(server, clock)
    assert len(hv.poll()) == count
    assert server.methods() == ["Host.getAllVmStats", "Host.getAllVmIoTunePolicies"]
    for _ in range(4):              # cycles of 60 s: 240 s
        clock.advance(60)
        assert len(hv.poll()) == count
    assert server.count("Host.getAllVmStats") == 5
    assert server.count("Host.getAllVmIoTunePolicies") == 1
    clock.advance(59)
    hv.poll()
    assert server.count("Host.getAllVmIoTunePolicies") == 1
    clock.advance(1)              # 300 s after the first fetch
    hv.poll()
    assert server.count("Host.getAllVmIoTunePolicies") == 2
    assert set(server.methods()) == {"Host.getAllVmStats", "Host.getAllVmIoTunePolicies"}
    assert server.state.calls["getStats"] == 0
    hv.close()


def test_no_iotune_calls_without_an_iotune_collector(server: FakeVdsmServer) -> None:
    server.state.add_vm(io_policy=IO_POLICY)
    hv = VdsmJsonRpcHypervisor(endpoint(server), iotune=False)
    assert "iotune" not in hv.poll()[0].stats
    assert server.methods() == ["Host.getAllVmStats"]
    hv.close()


def test_malformed_stats_reply_fails_the_poll(
        server: FakeVdsmServer, caplog: pytest.LogCaptureFixture) -> None:
    server.override("Host.getAllVmStats", {"statsList": []})
    hv = backend(server)
    for _ in range(3):
        with pytest.raises(HypervisorError, match="not a list"):
            hv.poll()
    assert warnings(caplog) == []       # MOM's cycle reports it, once


def test_a_reply_with_bad_entries_is_refused_whole(
        server: FakeVdsmServer, caplog: pytest.LogCaptureFixture) -> None:
    # Which guest is which cannot be told: the cycle is skipped and every
    # guest (and its history) is kept, rather than some being forgotten.
    vm = server.state.add_vm(name="good")
    server.override("Host.getAllVmStats", [vm.stats(), {"status": "Up"}, "junk"])
    hv = backend(server)
    for _ in range(2):
        with pytest.raises(HypervisorError, match="2 of 3 entries"):
            hv.poll()
    server.heal("Host.getAllVmStats")
    assert [g.info.name for g in hv.poll()] == ["good"]
    hv.close()


# -- setters ----------------------------------------------------------------------

def test_setters_send_vdsm_verbs_with_named_params(server: FakeVdsmServer) -> None:
    vm = server.state.add_vm(io_policy=IO_POLICY)
    hv = backend(server)
    hv.poll()
    server.clear_calls()
    assert hv.ping() is True
    hv.set_balloon_target(vm.vm_id, 1500000)
    hv.set_vcpu_tune(vm.vm_id, quota=50000, period=100000)
    tunables = [{"name": "vda", "path": "/rhev/a",
                 "ioTune": {"total_bytes_sec": 5000, "read_iops_sec": 300}}]
    hv.set_io_tune(vm.vm_id, tunables)
    hv.ksm_tune({"run": 1, "pages_to_scan": 64})
    assert server.methods() == ["Host.ping2", "VM.setBalloonTarget", "VM.setCpuTunePeriod",
                                "VM.setCpuTuneQuota", "VM.setIoTune", "Host.setKsmTune"]
    assert server.calls_of("VM.setBalloonTarget") == [{"vmID": vm.vm_id, "target": 1500000}]
    assert server.calls_of("VM.setCpuTunePeriod") == [{"vmID": vm.vm_id, "period": 100000}]
    assert server.calls_of("VM.setCpuTuneQuota") == [{"vmID": vm.vm_id, "quota": 50000}]
    assert server.calls_of("VM.setIoTune") == [{"vmID": vm.vm_id, "tunables": tunables}]
    assert server.calls_of("Host.setKsmTune") == [{"tuningParams": {"run": 1,
                                                                    "pages_to_scan": 64}}]
    # They took effect, and the next poll shows it (the limits in force
    # without a new policy fetch, so the IoTune controller does not resend).
    assert server.state.ksm["run"] == 1
    [guest] = hv.poll()
    assert guest.stats["balloon"]["balloon_cur"] == 1500000
    assert guest.stats["cputune"]["vcpu_quota"] == 50000
    assert guest.stats["iotune"][0]["current"]["total_bytes_sec"] == 5000
    assert server.count("Host.getAllVmIoTunePolicies") == 0
    hv.close()


def test_unknown_ksm_keys_are_refused_without_a_call(server: FakeVdsmServer) -> None:
    hv = backend(server)
    with pytest.raises(HypervisorError, match="unknown KSM settings: bogus"):
        hv.ksm_tune({"run": 1, "bogus": 2})
    assert server.calls == []


def test_errors_map_per_vm_and_one_failing_vm_does_not_stop_others(
        server: FakeVdsmServer) -> None:
    a, b = server.state.add_vms(2)
    hv = backend(server)
    server.state.fail("setBalloonTarget", a.vm_id, code=99, message="balloon is stuck")
    with pytest.raises(HypervisorError, match="code 99: balloon is stuck") as info:
        hv.set_balloon_target(a.vm_id, 1200000)
    assert not isinstance(info.value, GuestGoneError) and info.value.guest_id == a.vm_id
    hv.set_balloon_target(b.vm_id, 1200000)
    assert b.balloon_cur == 1200000
    server.state.remove_vm(a.vm_id)
    with pytest.raises(GuestGoneError, match="is gone") as gone:
        hv.set_vcpu_tune(a.vm_id, quota=1000)
    assert gone.value.guest_id == a.vm_id
    server.fail("Host.setKsmTune", -32603, "supervdsm is down")
    with pytest.raises(HypervisorError, match="supervdsm is down"):
        hv.ksm_tune({"run": 0})
    assert server.accepted == 1     # errors are answers: the connection stays
    hv.close()


def test_a_request_that_times_out_fails_alone(server: FakeVdsmServer) -> None:
    a, b = server.state.add_vms(2)
    hv = backend(server, timeout=0.3)
    release = server.hang("VM.setBalloonTarget")
    with pytest.raises(HypervisorError, match="no reply to VM.setBalloonTarget"):
        hv.set_balloon_target(a.vm_id, 1200000)
    hv.set_vcpu_tune(b.vm_id, quota=2000)   # answered, despite the late reply pending
    release.set()
    assert len(hv.poll()) == 2
    assert server.accepted == 1
    hv.close()


def test_notifications_on_the_connection_are_ignored(server: FakeVdsmServer) -> None:
    server.notify_every = 1
    vms = server.state.add_vms(3)
    hv = backend(server)
    for vm in vms:
        assert len(hv.poll()) == 3
        hv.set_balloon_target(vm.vm_id, 1100000)
        assert vm.balloon_cur == 1100000
    assert server.events_sent >= 6
    assert hv._client.ignored == server.events_sent
    hv.close()


# -- the STOMP session VDSM requires ----------------------------------------------

def test_connect_frame_is_what_vdsm_accepts(server: FakeVdsmServer) -> None:
    hv = backend(server)
    assert hv.ping()
    assert server.connect_headers == [{"accept-version": "1.2", "host": "127.0.0.1",
                                       "heart-beat": "0,0"}]
    assert server.refused == []
    hv.close()


@pytest.mark.parametrize("command, version", [("STOMP", "1.2"), ("CONNECT", "1.1,1.2")])
def test_fake_refuses_what_vdsm_refuses(command: str, version: str) -> None:
    with FakeVdsmServer() as srv, socket.create_connection(srv.address, timeout=5) as sock:
        sock.sendall(encode_frame(command, [("accept-version", version)]))
        reply, headers, _ = read_stomp_frame(_Reader(sock))
        assert reply == "ERROR" and headers["message"]
        assert sock.recv(10) == b""
    assert len(srv.refused) == 1


def test_fake_ignores_batches_and_requests_without_reply_to() -> None:
    with FakeVdsmServer(notify_every=0) as srv, \
            socket.create_connection(srv.address, timeout=5) as sock:
        reader = _Reader(sock)
        sock.sendall(encode_frame("CONNECT", [("accept-version", "1.2"), ("host", "x")]))
        assert read_stomp_frame(reader)[0] == "CONNECTED"
        sock.sendall(encode_frame("SUBSCRIBE", {"destination": "q", "id": "s", "ack": "auto"}))
        request = b'{"jsonrpc": "2.0", "method": "Host.ping2", "params": {}, "id": "%s"}'
        send = {"destination": "jms.topic.vdsm_requests", "content-type": "application/json"}
        sock.sendall(encode_frame("SEND", send, request % b"1"))          # no reply-to
        sock.sendall(encode_frame("SEND", {**send, "reply-to": "q"},
                                  b"[" + request % b"2" + b"," + request % b"3" + b"]"))
        sock.sendall(encode_frame("SEND", {**send, "reply-to": "q"}, request % b"4"))
        command, _, body = read_stomp_frame(reader)
        assert command == "MESSAGE" and b'"id": "4"' in body
    assert srv.methods() == ["Host.ping2", "<batch>", "Host.ping2"]


# -- TLS and connection failures ----------------------------------------------------

def test_plain_tcp(clock: Clock) -> None:
    with FakeVdsmServer(notify_every=2) as srv:
        srv.state.add_vms(2)
        hv = backend(srv, clock)
        assert len(hv.poll()) == 2 and hv.ping()
        assert srv.pki is None and srv.refused == []
        hv.close()


def test_tls_failures_give_one_clear_line(server: FakeVdsmServer, pki: Any,
                                          caplog: pytest.LogCaptureFixture,
                                          clock: Clock) -> None:
    where = f"127.0.0.1:{server.port}"
    cases = [
        ({"ca_file": pki.other_ca_cert},
         ["not accepted with the CA file", pki.other_ca_cert]),
        ({"key_file": pki.other_client_key, "cert_file": pki.other_client_cert},
         ["refused MOM's certificate", pki.other_client_cert]),
        ({"key_file": "/nonexistent/vdsmkey.pem"},
         ["cannot read the key file /nonexistent/vdsmkey.pem: No such file",
          "[vdsm] pki-dir"]),
        ({"key_file": pki.client_cert},
         ["do not load together", pki.client_cert]),
        ({"tls": False}, ["closed the connection before answering CONNECT",
                          "if VDSM expects TLS"]),
    ]
    for changes, expected in cases:
        caplog.clear()
        hv = backend(server, clock, **changes)
        for _ in range(3):      # the same failure again: no new line
            with pytest.raises(HypervisorError, match="unreachable"):
                hv.poll()
            clock.advance(61)
        [line] = warnings(caplog)
        assert where in line
        for text in expected:
            assert text in line, (changes, line)
        if changes.get("tls", True):
            assert f"key {hv.endpoint.key_file}" in line and f"CA {hv.endpoint.ca_file}" in line
        hv.close()
    assert server.calls == []


def test_tls_client_to_plain_vdsm(clock: Clock, caplog: pytest.LogCaptureFixture,
                                  pki: Any) -> None:
    with FakeVdsmServer() as plain:
        hv = backend(plain, clock, tls=True, key_file=pki.client_key,
                     cert_file=pki.client_cert, ca_file=pki.ca_cert)
        with pytest.raises(HypervisorError):
            hv.poll()
    [line] = warnings(caplog)
    assert "does not use TLS on this port (then set [vdsm] ssl = false)" in line


def test_a_port_that_accepts_but_never_answers(clock: Clock,
                                               caplog: pytest.LogCaptureFixture) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:     # never accepts
        hv = VdsmJsonRpcHypervisor(Endpoint(port=silent.getsockname()[1], tls=False,
                                            timeout=0.2), clock=clock)
        with pytest.raises(HypervisorError, match="did not answer STOMP CONNECT"):
            hv.poll()
    [line] = warnings(caplog)
    assert "within 0.2 s ([vdsm] request-timeout)" in line


def test_unreadable_key_names_the_file_and_the_user_to_run_as(
        server: FakeVdsmServer, pki: Any, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    # Tests run as root, who reads any file: make the key unreadable by hand.
    real_open = open

    def deny_key(path: Any, *args: Any, **kwargs: Any) -> Any:
        if path == pki.client_key:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(vdsm_link, "open", deny_key, raising=False)
    hv = backend(server)
    with pytest.raises(HypervisorError, match="Permission denied"):
        hv.poll()
    [line] = warnings(caplog)
    assert f"cannot read the key file {pki.client_key}: Permission denied" in line
    assert "run it as VDSM's user" in line
    hv.close()


def test_vdsm_down_at_start_then_up(server: FakeVdsmServer, clock: Clock,
                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mom.hypervisor")
    server.stop()
    server.state.add_vms(2)
    hv = backend(server, clock, cls=Counting)
    with pytest.raises(HypervisorError, match="connection refused"):
        hv.poll()
    assert hv.attempts == 1
    [line] = warnings(caplog)
    assert f"127.0.0.1:{server.port}" in line and "connection refused" in line
    assert "retrying in 1 s" in line
    # Backing off: no attempt, the call fails at once, with the same message
    with pytest.raises(HypervisorError, match="connection refused"):
        hv.poll()
    assert not hv.ping()
    assert hv.attempts == 1
    clock.advance(1)
    with pytest.raises(HypervisorError):
        hv.poll()               # second attempt, next one in 2 s
    assert hv.attempts == 2
    server.start()
    clock.advance(1.5)
    with pytest.raises(HypervisorError):
        hv.poll()               # still backing off although VDSM is up
    assert hv.attempts == 2
    clock.advance(0.5)
    assert len(hv.poll()) == 2
    assert hv.attempts == 3
    assert len(warnings(caplog)) == 1
    assert any("answers again" in message and "2 failed attempts" in message
               for message in infos(caplog))
    hv.close()


def test_backoff_doubles_up_to_60_s(server: FakeVdsmServer, clock: Clock) -> None:
    server.stop()
    hv = backend(server, clock, cls=Counting)
    attempts_at = []
    while len(attempts_at) < 10:
        before = hv.attempts
        with pytest.raises(HypervisorError):
            hv.poll()
        if hv.attempts > before:
            attempts_at.append(clock.now)
        clock.advance(0.5)
    delays = [later - earlier for earlier, later in zip(attempts_at, attempts_at[1:])]
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    hv.close()


def test_vdsm_restarted_between_cycles_is_invisible(server: FakeVdsmServer,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    server.state.add_vms(2)
    hv = backend(server)
    assert len(hv.poll()) == 2
    server.restart()
    assert len(hv.poll()) == 2
    assert server.accepted == 2
    assert warnings(caplog) == []
    hv.close()


def test_vdsm_outage_then_back(server: FakeVdsmServer, clock: Clock,
                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mom.hypervisor")
    vm = server.state.add_vm()
    hv = backend(server, clock)
    hv.poll()
    server.stop()
    with pytest.raises(HypervisorError, match="unreachable"):
        hv.poll()
    with pytest.raises(HypervisorError, match="unreachable"):
        hv.set_balloon_target(vm.vm_id, 1100000)    # fails at once
    [line] = warnings(caplog)
    assert "connection refused" in line
    server.start()
    clock.advance(1)
    assert len(hv.poll()) == 1
    hv.set_balloon_target(vm.vm_id, 1100000)
    assert vm.balloon_cur == 1100000
    assert len(warnings(caplog)) == 1
    assert any("answers again" in message for message in infos(caplog))
    hv.close()


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_no_fd_or_thread_growth_over_failed_attempts(server: FakeVdsmServer, pki: Any,
                                                     clock: Clock) -> None:
    refused = backend(server, clock, key_file=pki.other_client_key,
                      cert_file=pki.other_client_cert)      # VDSM refuses MOM's cert
    down = backend(server, clock)                           # VDSM will not listen

    def settled() -> tuple[int, int]:
        wait_for(server.idle, what="the fake's connections closed")
        return _fds(), threading.active_count()

    def fail_50_times(hv: VdsmJsonRpcHypervisor) -> None:
        for _ in range(50):
            with pytest.raises(HypervisorError):
                hv.poll()
            clock.advance(61)

    with pytest.raises(HypervisorError):    # warm up (imports, logging)
        refused.poll()
    clock.advance(61)
    before = settled()
    fail_50_times(refused)
    assert settled() == before
    assert len(server.refused) == 51
    server.stop()
    before = settled()
    fail_50_times(down)
    assert settled() == before


# -- configuration ------------------------------------------------------------------

VDSM_MOM_CONF = """\
[main]
hypervisor-interface = vdsmjsonrpcclient
controllers = Balloon, KSM, CpuTune, IoTune
[host]
collectors = HostMemory, HostKSM, HostCpu
[guest]
collectors = GuestMemoryOptional, GuestBalloonOptional, GuestCpuTune, GuestIoTuneOptional
[vdsm]
pki-dir = /etc/pki/vdsm
key-file = keys/vdsmkey.pem
cert-file = certs/vdsmcert.pem
ca-cert-file = certs/cacert.pem
host = 127.0.0.1
port = 54321
request-timeout = 10
"""


@pytest.mark.parametrize("name", ["vdsmjsonrpcclient", "vdsmjsonrpc", "vdsmjsonrpcbulk"])
def test_vdsm_shipped_mom_conf_builds_the_json_rpc_backend(tmp_path: Any, name: str) -> None:
    path = tmp_path / "mom.conf"
    path.write_text(VDSM_MOM_CONF.replace("vdsmjsonrpcclient", name))
    config = mom_config.load(str(path))
    hv = hypervisor.create(config)
    assert isinstance(hv, VdsmJsonRpcHypervisor)
    assert hv.endpoint == Endpoint("127.0.0.1", 54321, hv.endpoint.tls,
                                   "/etc/pki/vdsm/keys/vdsmkey.pem",
                                   "/etc/pki/vdsm/certs/vdsmcert.pem",
                                   "/etc/pki/vdsm/certs/cacert.pem", 10.0)
    assert hv.iotune is True


@pytest.mark.parametrize("mom_ssl, vdsm_conf, expected", [
    ("", None, True),                               # no vdsm.conf: VDSM's default
    ("", "[vars]\nssl = false\n", False),
    ("", "[vars]\nssl = true\n", True),
    ("", "[vars]\nother = 1\n", True),
    ("", "[irs]\nx = 1\n", True),
    ("true", "[vars]\nssl = false\n", True),        # mom.conf says: it wins
    ("false", None, False),
])
def test_tls_follows_mom_conf_then_vdsm_conf(tmp_path: Any, mom_ssl: str,
                                             vdsm_conf: str | None, expected: bool) -> None:
    conf = tmp_path / "vdsm.conf"
    if vdsm_conf is not None:
        conf.write_text(vdsm_conf)
    path = tmp_path / "mom.conf"
    path.write_text(VDSM_MOM_CONF + f"ssl = {mom_ssl}\n")
    config = mom_config.load(str(path))
    assert vdsm_jsonrpc.create(config, vdsm_conf=str(conf)).endpoint.tls is expected


def test_config_accepts_empty_ssl_and_refuses_nonsense(tmp_path: Any) -> None:
    path = tmp_path / "mom.conf"
    path.write_text(VDSM_MOM_CONF)
    assert mom_config.load(str(path)).vdsm.ssl is None
    path.write_text(VDSM_MOM_CONF + "ssl = maybe\n")
    with pytest.raises(mom_config.ConfigError, match=r"\[vdsm\] ssl = 'maybe'"):
        mom_config.load(str(path))
