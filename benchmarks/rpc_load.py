"""MOM's RPC server under load: many clients on the unix socket at once.

Runs a whole MOM as in process mode (VDSM's mom.conf and stock policies,
``rpc-port`` a unix socket) over the fake VDSM of ``tests/fake_vdsm`` and a
fake host, with ``--vms`` VMs, and lets ``--clients`` concurrent clients
(threads spread over ``--processes`` client processes, so the clients do
not share MOM's interpreter lock) call it in a loop for ``--seconds``:
``getStatistics`` (VDSM's getKsmStats; a reply with every guest's sample)
and, every tenth call, ``ping`` (VDSM's getStatus).  Each call opens its own
connection, as VDSM's client does.  Clients send the request bytes and
check the reply without decoding it, so that on a small machine the
figures are the server's, not the clients' XML parsing (``--decode`` uses
Python's xmlrpc client instead).  Reports the latency percentiles, calls
per second, failures, and the RPC server's thread count before, during and
after the load.

    .venv/bin/python benchmarks/rpc_load.py [--clients 50] [--seconds 10] [--vms 100]
"""
from __future__ import annotations

import argparse
import configparser
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests", "fake_vdsm"))

GIB = 1024 * 1024      # KiB
MIB = 1024


def raw_call(path: str, request: bytes) -> bytes:
    """One call as bytes on the wire: the reply is checked, not decoded, so
    the client's own cost stays small and the figures are the server's."""
    from mom.rpc import _connect_unix

    sock = _connect_unix(path, 30)
    try:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(262144):
            chunks.append(chunk)
    finally:
        sock.close()
    reply = b"".join(chunks)
    if not reply.startswith(b"HTTP/1.1 200 ") or b"<fault>" in reply:
        raise RuntimeError(reply[:200].decode("latin-1"))
    return reply


def http_request(method: str) -> bytes:
    import xmlrpc.client

    body = xmlrpc.client.dumps((), method).encode()
    return b"POST /RPC2 HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body


def client_process(path: str, threads: int, start_at: float, stop_at: float,
                   decode: bool, results: Any) -> None:
    """``threads`` clients in one process; sends (latencies, failures)."""
    from mom import rpc

    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    requests = {name: http_request(name) for name in ("ping", "getStatistics")}

    def run() -> None:
        proxy = rpc.connect(path, timeout=30)
        mine: list[float] = []
        errors: list[str] = []
        count = 0
        time.sleep(max(0.0, start_at - time.time()))
        while time.time() < stop_at:
            count += 1
            method = "ping" if count % 10 == 0 else "getStatistics"
            began = time.perf_counter()
            try:
                if decode:
                    assert getattr(proxy, method)()
                else:
                    raw_call(path, requests[method])
            except Exception as err:          # counted and reported
                errors.append(f"{type(err).__name__}: {err}")
                continue
            mine.append(time.perf_counter() - began)
        with lock:
            latencies.extend(mine)
            failures.extend(errors)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    results.put((latencies, failures))


def write_conf(path: str, socket_path: str, host: Any) -> str:
    import vdsm_plugin

    config = configparser.ConfigParser(interpolation=None)
    config.optionxform = str
    config.read(vdsm_plugin.data_path(vdsm_plugin.THREAD_CONF))
    for key in ("main-loop-interval", "host-monitor-interval", "guest-monitor-interval",
                "guest-manager-interval"):
        config.set("main", key, "1")
    config.set("main", "policy-engine-interval", "2")
    config.set("main", "rpc-port", socket_path)
    config.set("main", "policy-dir", vdsm_plugin.data_path(vdsm_plugin.POLICY_DIR))
    config.set("logging", "verbosity", "warn")
    for key, value in host.mom_overrides()["host"].items():
        config.set("host", key, value)
    with open(path, "w", encoding="utf-8") as handle:
        config.write(handle)
    return path


def rpc_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("RPC"))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--processes", type=int, default=5,
                        help="client processes the clients are spread over")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--vms", type=int, default=100)
    parser.add_argument("--decode", action="store_true",
                        help="clients decode every reply with Python's xmlrpc client "
                             "(then the clients' own CPU dominates on a small machine)")
    args = parser.parse_args(argv)

    import fakehost
    import fakevdsm

    import mom

    with tempfile.TemporaryDirectory() as tmp:
        host = fakehost.FakeHost(os.path.join(tmp, "host"), mem_total=max(64, 3 * args.vms) * GIB,
                                 mem_free=32 * GIB, cpus=32)
        fake = fakevdsm.install(fakevdsm.FakeVdsm())
        host.attach(fake)
        for index in range(args.vms):
            fake.add_vm(used=(512 + index % 7 * 64) * MIB)
        socket_path = os.path.join(tmp, "mom-vdsm.sock")
        instance = mom.MOM(write_conf(os.path.join(tmp, "mom.conf"), socket_path, host))
        instance.start()
        try:
            deadline = time.monotonic() + 30
            while len(instance.getActiveGuests()) < args.vms:
                if time.monotonic() > deadline:
                    raise RuntimeError("MOM did not pick up the guests in time")
                time.sleep(0.1)
            reply = len(raw_call(socket_path, http_request("getStatistics")))
            idle_threads = rpc_threads()
            context = multiprocessing.get_context("spawn")     # MOM's threads run here
            results = context.Queue()
            start_at = time.time() + 2.0 + 0.3 * args.processes   # once all have started
            stop_at = start_at + args.seconds
            shares = [args.clients // args.processes
                      + (1 if i < args.clients % args.processes else 0)
                      for i in range(args.processes)]
            procs = [context.Process(target=client_process,
                                     args=(socket_path, n, start_at, stop_at, args.decode,
                                           results))
                     for n in shares if n]
            for proc in procs:
                proc.start()
            cpu_before = time.process_time()
            time.sleep(max(0.0, start_at - time.time()) + args.seconds / 2)
            load_threads = rpc_threads()
            collected = [results.get(timeout=args.seconds + 60) for _ in procs]
            cpu = time.process_time() - cpu_before
            for proc in procs:
                proc.join()
            after_threads = rpc_threads()
        finally:
            instance.shutdown()

    latencies = [value for part, _ in collected for value in part]
    failures = [value for _, part in collected for value in part]
    print(f"MOM RPC server on a unix socket, {args.vms} VMs (getStatistics reply "
          f"{reply // 1024} KiB), {args.clients} clients in {len(procs)} processes "
          f"({'decoding' if args.decode else 'checking'} replies), "
          f"{args.seconds:.0f} s, {os.cpu_count()} CPUs")
    print(f"calls: {len(latencies)} ok, {len(failures)} failed; "
          f"{len(latencies) / args.seconds:.0f} calls/s")
    if latencies:
        print(f"latency: p50 {percentile(latencies, 0.50) * 1000:.1f} ms, "
              f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, "
              f"max {max(latencies) * 1000:.1f} ms, mean "
              f"{statistics.fmean(latencies) * 1000:.1f} ms")
    print(f"MOM process CPU during the load: {cpu:.1f} s "
          f"({cpu / args.seconds * 100:.0f}% of one CPU)")
    print(f"RPC server threads: idle {idle_threads}, under load {load_threads}, "
          f"after {after_threads}")
    for failure in sorted(set(failures))[:5]:
        print(f"  failure: {failure}")
    return 0 if not failures and idle_threads == load_threads == after_threads else 1


if __name__ == "__main__":
    sys.exit(main())
