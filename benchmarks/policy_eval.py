"""How fast the policy engine reads and evaluates VDSM's stock policy set.

Prints the time to read+compile a ~15 KB policy set and the time per guest
per cycle to evaluate the stock set (ballooning on, KSM, vCPU and I/O
tuning) for a host and 10, 100 and 500 guests, each with a history of 10
samples.  Entities are built outside the timed part, as the engine's
monitors build them (declaring every field of the built-in collectors);
the timed part is exactly ``PolicySet.evaluate``.

    .venv/bin/python benchmarks/policy_eval.py [--quick]
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time

from mom.collectors import BUILTIN_COLLECTORS
from mom.entity import Entity
from mom.iotune import IoTuneDevice
from mom.policy import PolicySet, compile_policy

HERE = os.path.dirname(os.path.abspath(__file__))
POLICY_DIR = os.path.join(HERE, "..", "vdsm_plugin", "mom.d")
HISTORY = 10
GIB = 1024 * 1024  # KiB


def declared(kind: str) -> frozenset[str]:
    """The fields a monitor running every built-in collector of ``kind`` declares."""
    return frozenset().union(*(c.fields for c in BUILTIN_COLLECTORS.values()
                               if getattr(c, "kind", None) == kind))


def stock_policies() -> dict[str, str]:
    policies = {}
    for filename in sorted(os.listdir(POLICY_DIR)):
        if filename.endswith(".policy"):
            with open(os.path.join(POLICY_DIR, filename), encoding="utf-8") as f:
                policies[filename[:-7]] = f.read()
    # As VDSM does when the engine enables ballooning.
    policies["01-parameters"] = "(set balloonEnabled True)\n(set ksmEnabled True)\n"
    return policies


def big_policy_set(size: int = 15 * 1024) -> dict[str, str]:
    """The stock set, repeated under new names until it is ``size`` bytes."""
    base = stock_policies()
    policies: dict[str, str] = {}
    round_ = 0
    while sum(len(t) for t in policies.values()) < size:
        for name, text in base.items():
            policies[f"{name}-{round_}"] = text
        round_ += 1
    return policies


def host_entity(rng: random.Random) -> Entity:
    total = 256 * GIB
    history = [{
        "mem_available": total, "mem_free": int(total * rng.uniform(0.1, 0.3)),
        "mem_unused": int(total * 0.1), "cpu_count": 32, "ksm_run": 1,
        "ksm_pages_to_scan": 100, "ksm_pages_sharing": 0, "ksm_merge_across_nodes": 1,
    } for _ in range(HISTORY)]
    return Entity({"name": "host"}, history, declared("host"))


def guest_entity(rng: random.Random, index: int) -> Entity:
    size = rng.choice([2, 4, 8, 16]) * GIB
    history = []
    for _ in range(HISTORY):
        history.append({
            "balloon_cur": size, "balloon_max": size, "balloon_min": size // 4,
            "mem_available": size, "mem_unused": int(size * rng.uniform(0.1, 0.6)),
            "mem_free": int(size * 0.3), "vcpu_user_limit": rng.choice([100, 50, 10]),
            "vcpu_count": rng.choice([1, 2, 4]), "vcpu_quota": -1, "vcpu_period": 100000,
            "io_tune": None,
        })
    devices = [IoTuneDevice(f"vd{chr(97 + d)}", f"/dev/vd{chr(97 + d)}",
                            maximum={"total_bytes_sec": 100_000_000, "total_iops_sec": 1000})
               for d in range(rng.choice([1, 2]))]
    history[-1]["io_tune"] = devices
    return Entity({"name": f"vm{index}", "uuid": f"u-{index}", "pid": 1000 + index}, history,
                  declared("guest"))


def time_parse(policies: dict[str, str], repeat: int) -> tuple[float, float]:
    """Seconds to read+compile every policy: the first time, and the best of ``repeat``.

    The first time is what MOM pays at start-up (it compiles each policy
    once); it runs on a cold interpreter, so it is a little slower.
    """
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for name, text in policies.items():
            compile_policy(text, name)
        times.append(time.perf_counter() - start)
    return times[0], min(times)


def time_eval(policy_set: PolicySet, guests: int, cycles: int, repeat: int) -> float:
    """Best seconds per cycle."""
    rng = random.Random(guests)
    host = host_entity(rng)
    entities = [guest_entity(rng, i) for i in range(guests)]
    policy_set.evaluate(host, entities)  # warm up
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(cycles):
            policy_set.evaluate(host, entities)
        best = min(best, (time.perf_counter() - start) / cycles)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args(argv)
    repeat = 3 if args.quick else 7

    big = big_policy_set()
    size = sum(len(t.encode()) for t in big.values())
    first, parse = time_parse(big, repeat * 3)
    stock = stock_policies()
    stock_size = sum(len(t.encode()) for t in stock.values())
    _, stock_parse = time_parse(stock, repeat * 3)
    print(f"Python {sys.version.split()[0]}")
    print(f"parse+compile {size / 1024:.1f} KB policy set ({len(big)} policies): "
          f"{parse * 1000:.2f} ms (first compile in this process: {first * 1000:.2f} ms)")
    print(f"parse+compile stock set ({stock_size / 1024:.1f} KB): {stock_parse * 1000:.2f} ms")

    policy_set = PolicySet(stock)
    for guests in (10, 100, 500):
        cycles = max(5, 4000 // guests) if not args.quick else max(3, 1000 // guests)
        per_cycle = time_eval(policy_set, guests, cycles, repeat)
        print(f"{guests:4d} guests: {per_cycle * 1e3:8.2f} ms per cycle, "
              f"{per_cycle / guests * 1e6:6.1f} us per guest per cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
