"""CPU inside VDSM's process per MOM cycle: thread mode vs process mode.

The figure the move to process mode was made for.  One run, the same
scene for both modes (``--vms`` VMs, VDSM's shipped mom.conf of each mode
with every interval set to ``--interval``, stock policies, ballooning
enabled through ``setPolicyParameters``, a fake host's /proc and /sys):

thread mode
    ``vdsm_plugin.create_mom`` runs MOM in a thread of this process over
    the fake VDSM API of ``tests/fake_vdsm`` (as ``import API`` would).
    VDSM's CPU per cycle = that ``MOM`` thread's CPU (thread CPU clock)
    + VDSM's ``getKsmStats()`` call once per cycle (VDSM reads it for every
    host statistics report).
process mode
    ``momd -c CONF`` runs as a separate process and talks JSON-RPC over
    STOMP with mutual TLS to the fake VDSM server of
    ``tests/fake_vdsm_server`` (in this process); VDSM's front object
    (``ProcessMomFront``) calls momd's unix socket.  VDSM's CPU per cycle
    = the server thread serving momd's connection (thread CPU clock:
    getAllVmStats and every control call, JSON, STOMP, TLS) + the front's
    ``getKsmStats()`` once per cycle.  momd's own CPU per cycle comes from
    ``/proc/<pid>/stat`` (utime + stime).

In both modes the fake API builds VDSM's VmStats and records calls; that
work stands for VDSM's own API code, which runs in VDSM in either mode.
It is measured apart (``fake API``) and included in the VDSM figures.

Scenes: ``steady`` (plenty of free memory: after the first cycles no
control changes) and ``pressure`` (6% free and guests whose balloon creeps 1 MiB
per call towards its target, so every cycle sends one ``setBalloonTarget``
per VM with memory statistics).  Per-cycle figures are the median of
``--windows`` windows after warm-up.  The fake server pushes no VDSM
events here (``notify_every=0``).

    .venv/bin/python benchmarks/process_mode.py [--quick] [--vms 500]
"""
from __future__ import annotations

import argparse
import configparser
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "tests", "fake_vdsm"))

import fakehost
import fakevdsm
from fake_vdsm_server import FakeVdsmServer, make_pki

import vdsm_plugin
from mom import rpc

GIB = 1024 * 1024      # KiB
MIB = 1024
INTERVAL_KEYS = ("main-loop-interval", "host-monitor-interval", "guest-monitor-interval",
                 "guest-manager-interval", "policy-engine-interval")
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


# -- measuring ----------------------------------------------------------------

def thread_cpu(thread: threading.Thread) -> float:
    """CPU seconds a live thread of this process has used."""
    assert thread.ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of another process, from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK     # utime, stime


def fake_api_cost(fake: fakevdsm.FakeVdsm, balloon_calls: bool, repeat: int = 10) -> float:
    """CPU seconds per cycle the fake API itself spends: one getAllVmStats,
    and under pressure one setBalloonTarget per VM with memory stats."""
    api = fake.api
    vms = [vm for vm in fake.vms.values() if vm.agent]
    started = time.thread_time()
    for _ in range(repeat):
        api.Global().getAllVmStats()
        if balloon_calls:
            for vm in vms:
                api.VM(vm.vm_id).setBalloonTarget(vm.balloon_cur)
    cost = (time.thread_time() - started) / repeat
    fake.reset_counters()
    return cost


# -- the scene ------------------------------------------------------------------

class _SlowBalloonVM(fakevdsm._VM):
    """A guest whose balloon creeps towards its target, 1 MiB per call, so
    under pressure MOM sends it a new target every cycle (a balloon that
    does not move at all would be given up after a few cycles)."""

    def setBalloonTarget(self, target: Any) -> dict[str, Any]:
        vm = self._fake.vms.get(self._id)
        current = vm.balloon_cur if vm is not None else None
        reply = super().setBalloonTarget(target)
        if vm is not None and current is not None:
            step = MIB if int(target) < current else -MIB
            vm.balloon_cur = current - step
        return reply


def scene(root: str, count: int, pressure: bool) -> tuple[fakevdsm.FakeVdsm,
                                                          fakehost.FakeHost]:
    """A mixed population, as benchmarks/footprint.py: every 5th VM has a
    vCPU limit, every 10th a disk with an I/O QoS policy, every 20th no
    guest agent."""
    host_mem = max(64 * GIB, count * 3 * GIB)
    free = host_mem // 16 if pressure else host_mem * 3 // 4
    host = fakehost.FakeHost(root, mem_total=host_mem, mem_free=free, cpus=32)
    fake = fakevdsm.FakeVdsm()
    host.attach(fake)
    if pressure:
        fake.api.VM = lambda vm_id: _SlowBalloonVM(fake, vm_id)
    for index in range(count):
        policy = []
        if index % 10 == 0:
            policy = [{"name": "vda", "path": f"/rhev/data-center/vm{index}/vda",
                       "guaranteed": {"total_iops_sec": 100},
                       "maximum": {"total_iops_sec": 1000, "total_bytes_sec": 10**8}}]
        fake.add_vm(used=(512 + index % 7 * 64) * MIB, agent=index % 20 != 19,
                    vcpu_user_limit=50 if index % 5 == 0 else 100,
                    vcpu_count=1 + index % 4, io_policy=policy)
    return fake, host


def write_conf(name: str, path: str, host: fakehost.FakeHost, interval: float,
               **sections: dict[str, str]) -> str:
    """A shipped mom.conf with every interval ``interval``, the package's
    policies, the fake host, logging at warn, plus ``sections``."""
    config = configparser.ConfigParser(interpolation=None)
    config.optionxform = str
    config.read(vdsm_plugin.data_path(name))
    for key in INTERVAL_KEYS:
        config.set("main", key, str(interval))
    config.set("main", "policy-dir", vdsm_plugin.data_path(vdsm_plugin.POLICY_DIR))
    config.set("logging", "verbosity", "warn")
    for key, value in host.mom_overrides()["host"].items():
        config.set("host", key, value)
    for section, values in sections.items():
        for key, value in values.items():
            config.set(section, key, value)
    with open(path, "w", encoding="utf-8") as handle:
        config.write(handle)
    return path


def wait(condition: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


# -- windows ------------------------------------------------------------------

def windows(cycles: Callable[[], int], vdsm_cpu: Callable[[], float],
            momd_cpu: Callable[[], float] | None, front: Any, calls: Callable[[], int],
            count: int, length: float, interval: float) -> list[dict[str, float]]:
    """Per-cycle figures of ``count`` windows.  VDSM's getKsmStats is
    called once per cycle, right after each new cycle starts."""
    results = []
    for _ in range(count):
        c0, v0, k0 = cycles(), vdsm_cpu(), calls()
        m0 = momd_cpu() if momd_cpu else 0.0
        front_cpu, seen = 0.0, c0
        end = time.monotonic() + length
        while time.monotonic() < end:
            now = cycles()
            if now != seen:
                seen = now
                started = time.thread_time()
                front.getKsmStats()
                front_cpu += time.thread_time() - started
            time.sleep(interval / 25)
        done = max(1, cycles() - c0)
        results.append({
            "cycles": done,
            "vdsm_thread": (vdsm_cpu() - v0) / done,
            "front": front_cpu / done,
            "momd": ((momd_cpu() - m0) / done) if momd_cpu else float("nan"),
            "calls": (calls() - k0) / done,
        })
    return results


def median(results: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def run_thread_mode(tmp: str, count: int, pressure: bool, interval: float,
                    length: float, count_windows: int) -> dict[str, float]:
    fake, host = scene(os.path.join(tmp, "thread-host"), count, pressure)
    fakevdsm.install(fake)
    conf = write_conf(vdsm_plugin.THREAD_CONF, os.path.join(tmp, "thread.conf"), host,
                      interval)
    front = vdsm_plugin.create_mom({"mom": {"mode": "thread", "conf": conf}})
    try:
        front.setPolicyParameters({"balloonEnabled": True})
        wait(lambda: len(front.mom.getActiveGuests()) == count
             and front.mom.cycle.polls >= 4, 60, "thread-mode MOM managing the guests")
        found = windows(lambda: front.mom.cycle.polls, lambda: thread_cpu(front.thread),
                        None, front, lambda: fake.calls["setBalloonTarget"],
                        count_windows, length, interval)
    finally:
        front.stop()
    return median(found)


def run_process_mode(tmp: str, count: int, pressure: bool, interval: float,
                     length: float, count_windows: int) -> dict[str, float]:
    fake, host = scene(os.path.join(tmp, "process-host"), count, pressure)
    server = FakeVdsmServer(fake, pki=make_pki(os.path.join(tmp, "pki")),
                            notify_every=0).start()
    sock = os.path.join(tmp, "mom-vdsm.sock")
    conf = write_conf(vdsm_plugin.PROCESS_CONF, os.path.join(tmp, "process.conf"), host,
                      interval, main={"rpc-port": sock},
                      logging={"log": os.path.join(tmp, "mom.log")},
                      vdsm=server.vdsm_section())
    momd = subprocess.Popen([sys.executable, "-m", "mom", "-c", conf], cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    front = vdsm_plugin.create_mom({"mom": {"mode": "process", "socket": sock}})
    try:
        def serving() -> bool:
            try:
                return bool(rpc.connect(sock, timeout=30).ping())
            except OSError:
                return False
        wait(serving, 30, "momd serving")
        front.setPolicyParameters({"balloonEnabled": True})
        client = rpc.connect(sock, timeout=30)
        wait(lambda: len(client.getActiveGuests()) == count
             and server.count("Host.getAllVmStats") >= 4, 60, "momd managing the guests")
        served = [t for t in threading.enumerate() if t.name == "fake-vdsm-_serve"]
        if len(served) != 1:
            raise RuntimeError(f"expected one connection from momd, found {len(served)}")
        found = windows(lambda: server.count("Host.getAllVmStats"),
                        lambda: thread_cpu(served[0]), lambda: process_cpu(momd.pid),
                        front, lambda: server.count("VM.setBalloonTarget"),
                        count_windows, length, interval)
    finally:
        front.stop()
        momd.send_signal(signal.SIGTERM)
        try:
            momd.wait(20)
        except subprocess.TimeoutExpired:
            momd.kill()
            momd.wait()
        server.stop()
    return median(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short windows (smoke run)")
    parser.add_argument("--vms", type=int, default=500)
    parser.add_argument("--interval", type=float, help="cycle interval, s (default 1, "
                        "--quick 0.5)")
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--scenes", default="steady,pressure")
    args = parser.parse_args(argv)
    interval = args.interval or (0.5 if args.quick else 1.0)
    length = 6 * interval if args.quick else 8 * interval
    print(f"CPU per MOM cycle at {args.vms} VMs, thread mode vs process mode; cycle "
          f"interval {interval} s, median of {args.windows} windows of {length:g} s, "
          f"{os.cpu_count()} CPUs\n")
    header = (f"{'scene':>8} {'mode':>7} {'cycles':>6} | {'VDSM ms':>8} {'fake API':>8} "
              f"{'VDSM-API':>8} {'MOM/srv thr':>11} {'getKsmStats':>11} | {'momd ms':>7} "
              f"| {'setBalloon/cyc':>14}")
    print("VDSM ms: CPU inside VDSM's process per cycle (MOM thread, or the server thread "
          "serving momd, + getKsmStats);\nfake API: the part of it the fake API's own "
          "work stands for; momd ms: momd's own CPU per cycle.\n")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for scene_name in args.scenes.split(","):
            pressure = scene_name == "pressure"
            # The same work in both modes, measured once on a scene of its own.
            api = fake_api_cost(scene(os.path.join(tmp, f"{scene_name}-api"), args.vms,
                                      pressure)[0], pressure)
            for mode, runner in (("thread", run_thread_mode), ("process", run_process_mode)):
                work = os.path.join(tmp, f"{scene_name}-{mode}")
                os.makedirs(work)
                r = runner(work, args.vms, pressure, interval, length, args.windows)
                vdsm = r["vdsm_thread"] + r["front"]
                momd = "" if r["momd"] != r["momd"] else f"{r['momd'] * 1000:7.1f}"
                print(f"{scene_name:>8} {mode:>7} {r['cycles']:>6.0f} | {vdsm * 1000:8.1f} "
                      f"{api * 1000:8.1f} {(vdsm - api) * 1000:8.1f} "
                      f"{r['vdsm_thread'] * 1000:11.1f} {r['front'] * 1000:11.2f} | "
                      f"{momd:>7} | {r['calls']:>14.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
