"""MOM's footprint in thread mode: CPU per full cycle and threads, by VMs.

Runs MOM as VDSM does in thread mode (``vdsm_plugin.create_mom`` with
VDSM's shipped mom.conf and stock policies, ballooning enabled through
``setPolicyParameters``) over the fake VDSM of ``tests/fake_vdsm`` and a
fake host (/proc, /sys files), with 10, 100 and 500 VMs, in two scenes:

- ``steady``: plenty of free host memory; after the first cycles nothing
  changes, so a cycle is collect + evaluate with no VDSM action calls;
- ``pressure``: the host is short of memory, so every cycle every guest's
  balloon moves (one ``setBalloonTarget`` per VM) and KSM is tuned.

A full cycle is one host collection, one guest collection (one
``getAllVmStats``) and one policy evaluation with its controls applied.
CPU is measured per MOM thread (``pthread_getcpuclockid``) over five
windows after warm-up, divided by that loop's completed rounds; the median
window is reported.  The fake
VDSM's own work (building the VM stats, recording calls) runs inside MOM's
threads, as VDSM's would; it is measured apart and shown separately, and
"MOM" is the total without it.

    .venv/bin/python benchmarks/footprint.py [--quick] [--vms 10,100,500]
"""
from __future__ import annotations

import argparse
import configparser
import os
import sys
import tempfile
import threading
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests", "fake_vdsm"))

import fakehost  # noqa: E402
import fakevdsm  # noqa: E402

import vdsm_plugin  # noqa: E402

GIB = 1024 * 1024      # KiB
MIB = 1024
LOOPS = ("HostMonitor", "GuestManager", "PolicyEngine")
WINDOWS = 5


def thread_cpu(thread: threading.Thread) -> float:
    """CPU seconds a live thread has used."""
    assert thread.ident is not None
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def write_conf(path: str, host: fakehost.FakeHost, interval: float) -> str:
    config = configparser.ConfigParser(interpolation=None)
    config.optionxform = str
    config.read(vdsm_plugin.data_path(vdsm_plugin.THREAD_CONF))
    for key in ("main-loop-interval", "host-monitor-interval", "guest-monitor-interval",
                "guest-manager-interval", "policy-engine-interval"):
        config.set("main", key, str(interval))
    config.set("main", "policy-dir", vdsm_plugin.data_path(vdsm_plugin.POLICY_DIR))
    config.set("logging", "verbosity", "warn")
    for key, value in host.mom_overrides()["host"].items():
        config.set("host", key, value)
    with open(path, "w", encoding="utf-8") as handle:
        config.write(handle)
    return path


def populate(fake: fakevdsm.FakeVdsm, count: int) -> None:
    """A mixed population: every 5th VM has a vCPU limit, every 10th a disk
    with an I/O QoS policy, every 20th no guest agent."""
    for index in range(count):
        policy = []
        if index % 10 == 0:
            policy = [{"name": "vda", "path": f"/rhev/data-center/vm{index}/vda",
                       "guaranteed": {"total_iops_sec": 100},
                       "maximum": {"total_iops_sec": 1000, "total_bytes_sec": 10**8}}]
        fake.add_vm(used=(512 + index % 7 * 64) * MIB, agent=index % 20 != 19,
                    vcpu_user_limit=50 if index % 5 == 0 else 100,
                    vcpu_count=1 + index % 4, io_policy=policy)


def fake_vdsm_cost(fake: fakevdsm.FakeVdsm, balloon_calls: bool, repeat: int = 5) -> float:
    """CPU seconds per cycle that the fake VDSM itself spends: one
    getAllVmStats, plus one setBalloonTarget per VM under pressure."""
    api = fake.api
    vms = list(fake.vms.values())
    started = time.thread_time()
    for _ in range(repeat):
        api.Global().getAllVmStats()
        if balloon_calls:
            for vm in vms:
                api.VM(vm.vm_id).setBalloonTarget(vm.balloon_cur)
    cost = (time.thread_time() - started) / repeat
    fake.reset_counters()
    return cost


def measure(count: int, scene: str, interval: float, window: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        host_mem = max(64 * GIB, count * 3 * GIB)
        free = host_mem // 16 if scene == "pressure" else host_mem * 3 // 4
        host = fakehost.FakeHost(os.path.join(tmp, "host"), mem_total=host_mem,
                                 mem_free=free, cpus=32)
        fake = fakevdsm.install(fakevdsm.FakeVdsm())
        host.attach(fake)
        populate(fake, count)
        conf = write_conf(os.path.join(tmp, "mom.conf"), host, interval)

        threads_before = threading.active_count()
        front = vdsm_plugin.create_mom({"mom": {"mode": "thread", "conf": conf}})
        try:
            front.setPolicyParameters({"balloonEnabled": True})
            loops = {t.name: t for t in front.mom.threads() if t.name in LOOPS}
            # warm-up: discovery, first samples, I/O-tune policies read
            deadline = time.monotonic() + 30
            while (len(front.mom.getActiveGuests()) < count
                   or loops["PolicyEngine"].rounds < 3):
                if time.monotonic() > deadline:
                    raise RuntimeError("MOM did not pick up the guests in time")
                time.sleep(interval / 5)
            fake.reset_counters()
            threads = [t for t in threading.enumerate()]
            mom_threads = threading.active_count() - threads_before
            # Several short windows; the median resists the noise of other
            # processes sharing the machine.
            samples = []
            cycles = 0
            for _ in range(WINDOWS):
                start_cpu = {n: thread_cpu(t) for n, t in loops.items()}
                start_rounds = {n: t.rounds for n, t in loops.items()}
                start_front = thread_cpu(front.thread)
                time.sleep(window / WINDOWS)
                cpu = {n: thread_cpu(t) - start_cpu[n] for n, t in loops.items()}
                rounds = {n: t.rounds - start_rounds[n] for n, t in loops.items()}
                front_cpu = thread_cpu(front.thread) - start_front
                per_loop = {n: cpu[n] / max(1, rounds[n]) for n in LOOPS}
                total = sum(per_loop.values()) + front_cpu / max(1, rounds["GuestManager"])
                samples.append((total, per_loop))
                cycles += rounds["GuestManager"]
            calls = dict(fake.calls)
            names = sorted({t.name for t in threads} - {"MainThread"})
        finally:
            front.stop()
        samples.sort(key=lambda sample: sample[0])
        total, per_loop = samples[len(samples) // 2]
        fake_cost = fake_vdsm_cost(fake, scene == "pressure")
        return {
            "vms": count, "scene": scene, "threads": mom_threads, "thread_names": names,
            "cycles": cycles, "total_ms": total * 1000, "fake_ms": fake_cost * 1000,
            "mom_ms": max(0.0, total - fake_cost) * 1000,
            "per_loop_ms": {n: v * 1000 for n, v in per_loop.items()},
            "getAllVmStats_per_cycle": calls.get("getAllVmStats", 0) / max(1, cycles),
            "getStats": calls.get("getStats", 0),
            "setBalloonTarget_per_cycle": calls.get("setBalloonTarget", 0) / max(1, cycles),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short windows (CI smoke run)")
    parser.add_argument("--vms", default="10,100,500", help="comma-separated VM counts")
    args = parser.parse_args(argv)
    interval, window = (0.2, 2.0) if args.quick else (0.5, 10.0)
    counts = [int(c) for c in args.vms.split(",")]
    print(f"MOM thread mode over the fake VDSM; loop interval {interval} s, "
          f"{window} s measured per run, {os.cpu_count()} CPUs\n")
    header = (f"{'VMs':>5} {'scene':>9} {'threads':>7} {'cycles':>6} {'MOM ms':>8} "
              f"{'fake VDSM':>9} {'total':>8} {'host':>6} {'guests':>7} {'policy':>7} "
              f"{'getAll/cyc':>10} {'getStats':>8} {'setBalloon/cyc':>14}")
    print(header)
    results = []
    for count in counts:
        for scene in ("steady", "pressure"):
            r = measure(count, scene, interval, window)
            results.append(r)
            loop = r["per_loop_ms"]
            print(f"{r['vms']:>5} {r['scene']:>9} {r['threads']:>7} {r['cycles']:>6} "
                  f"{r['mom_ms']:>8.1f} {r['fake_ms']:>9.1f} {r['total_ms']:>8.1f} "
                  f"{loop['HostMonitor']:>6.1f} {loop['GuestManager']:>7.1f} "
                  f"{loop['PolicyEngine']:>7.1f} {r['getAllVmStats_per_cycle']:>10.2f} "
                  f"{r['getStats']:>8} {r['setBalloonTarget_per_cycle']:>14.1f}",
                  flush=True)
    print("\nMOM ms: CPU per full cycle (host + guest collection + policy evaluation "
          "and controls), without the fake VDSM's own work.")
    threads = {r["threads"] for r in results}
    print(f"threads started by MOM: {sorted(threads)} "
          f"({', '.join(n for n in results[0]['thread_names'] if n in LOOPS + ('MOM',))})")
    worst = max((r for r in results if r["vms"] == max(counts)), key=lambda r: r["mom_ms"])
    ok = len(threads) == 1 and worst["mom_ms"] <= 50.0
    print(f"targets (same threads at every size; <= 50 ms per cycle at {max(counts)} VMs): "
          f"{'met' if ok else 'NOT met'} (worst {worst['mom_ms']:.1f} ms, {worst['scene']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
