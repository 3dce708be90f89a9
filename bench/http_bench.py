"""HTTP/1.1 keep-alive throughput: trio_ws vs hypercorn (trio worker) vs a bare h11 loop.

``python bench/http_bench.py [--runs 5] [--duration 5] [--connections 50]``

Each server answers ``GET /`` with the same 1 KiB ``text/plain`` body. Every
server is started pinned to core 0 (``taskset -c 0``) and checked once with
``curl`` (200, 1024-byte body); ``wrk`` (Debian's, installed when missing)
runs pinned to core 1: ``wrk -t1 -c<connections> -d<duration>s``. After a 1 s
warm-up each, the runs are *interleaved* (run 1 of every server, then run 2,
...), so drift on the machine hits every server alike; the servers not under
load are idle in ``epoll``.

The table gives the median requests/second, every run, the ratios to hypercorn
and to the bare loop, and the server's CPU time per request (user + system,
from ``/proc``; much less disturbed than req/s when other processes share the
cores), then PASS/FAIL of the targets, judged on the req/s medians. Every
server started is stopped on the way out (its process group is killed),
whatever happens.

``--extra NAME=SCRIPT`` adds a server (``python SCRIPT PORT``), e.g. a patched
trio_ws; ``--only NAME`` restricts the built-in ones; ``--check`` exits with
status 1 when a target is missed; ``--json PATH`` writes the raw numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from common import (
    BENCH_DIR,
    PYTHON,
    ServerProcess,
    ensure_wrk,
    fetch,
    format_table,
    free_port,
    median,
    ratio,
    run_wrk,
)

BODY_SIZE = 1024
#: name → script in bench/ taking the port as its only argument.
SERVERS = {
    "trio_ws": "trio_ws_app.py",
    "hypercorn (trio)": "hypercorn_app.py",
    "bare h11 loop": "bare_h11_server.py",
}
SUBJECT, BASELINE, CEILING = "trio_ws", "hypercorn (trio)", "bare h11 loop"
#: (reference server, minimum ratio of trio_ws to it)
TARGETS = [(BASELINE, 3.5), (CEILING, 0.8)]


@dataclass
class Sample:
    rps: float  # requests per second reported by wrk
    cpu_us: float  # server CPU time (user + system) per request, in microseconds


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="wrk runs per server (median reported)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (-c)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of wrk warm-up per server")
    parser.add_argument("--only", action="append", choices=list(SERVERS), help="restrict to these servers")
    parser.add_argument(
        "--extra",
        action="append",
        metavar="NAME=SCRIPT",
        help="also measure SCRIPT (run as `python SCRIPT PORT`), e.g. a patched trio_ws",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    return parser.parse_args(argv)


def verify(server: ServerProcess) -> str:
    got = fetch(server.url)
    if got.status != 200 or len(got.body) != BODY_SIZE:
        raise RuntimeError(
            f"{server.name}: expected 200 with {BODY_SIZE} bytes, got {got.status} with {len(got.body)} bytes"
        )
    return f"{got.status}, {len(got.body)} B, server={got.headers.get('server', '-')}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = ensure_wrk()
    scripts = {name: BENCH_DIR / SERVERS[name] for name in (args.only or SERVERS)}
    for extra in args.extra or ():
        name, _, path = extra.partition("=")
        scripts[name] = Path(path).resolve()
    results: dict[str, list[Sample]] = {name: [] for name in scripts}
    started = time.monotonic()
    print(
        f"python {platform.python_version()}, wrk -t1 -c{args.connections} -d{args.duration:g}s, "
        f"{args.runs} interleaved runs per server, servers on core 0, wrk on core 1",
        flush=True,
    )
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"  warning: load average is {load:.2f}: other processes compete for the cores", flush=True)

    with ExitStack() as stack:
        servers: dict[str, ServerProcess] = {}
        for name, script in scripts.items():
            port = free_port()
            server = stack.enter_context(ServerProcess(name, [PYTHON, str(script), str(port)], port))
            servers[name] = server
            print(f"  {name:<18} :{port}  {verify(server)}", flush=True)
        for server in servers.values():
            run_wrk(server.url, duration=args.warmup, connections=args.connections, wrk=wrk)
        for run in range(1, args.runs + 1):
            for name, server in servers.items():
                cpu_before = server.cpu_seconds()
                result = run_wrk(server.url, duration=args.duration, connections=args.connections, wrk=wrk)
                cpu_us = (server.cpu_seconds() - cpu_before) / max(result.requests, 1) * 1e6
                if not result.clean:
                    raise RuntimeError(f"{name}: wrk saw errors or non-2xx responses:\n{result.output}")
                results[name].append(Sample(result.requests_per_sec, cpu_us))
                print(
                    f"  run {run}/{args.runs} {name:<18} {result.requests_per_sec:>10,.0f} req/s  "
                    f"{cpu_us:6.0f} us CPU/req  (avg latency {result.latency_avg})",
                    flush=True,
                )

    rps = {name: median([s.rps for s in samples]) for name, samples in results.items()}
    cpu = {name: median([s.cpu_us for s in samples]) for name, samples in results.items()}

    def vs(name: str, reference: str) -> str:
        return f"{ratio(rps[name], rps[reference]):.2f}x" if reference in rps else "-"

    rows = [
        [
            name,
            f"{rps[name]:,.0f}",
            " ".join(f"{s.rps:,.0f}" for s in samples),
            vs(name, BASELINE),
            vs(name, CEILING),
            f"{cpu[name]:,.0f}",
        ]
        for name, samples in results.items()
    ]
    header = ["server", "median req/s", "all runs (req/s)", "vs hypercorn", "vs bare h11", "CPU us/req"]
    print()
    print(format_table(header, rows))
    print()

    failed = False
    if SUBJECT in rps:
        for reference, minimum in TARGETS:
            if reference not in rps:
                continue
            got = ratio(rps[SUBJECT], rps[reference])
            by_cpu = ratio(cpu[reference], cpu[SUBJECT])
            verdict = "PASS" if got >= minimum else "FAIL"
            failed |= verdict == "FAIL"
            print(
                f"target: {SUBJECT} >= {minimum}x {reference}: {got:.2f}x  {verdict}"
                f"   (by CPU time per request: {by_cpu:.2f}x)"
            )
    print(f"\n(total time {time.monotonic() - started:.0f}s, load average now {os.getloadavg()[0]:.2f})")

    if args.json:
        raw = {
            "args": {k: str(v) for k, v in vars(args).items()},
            "median_rps": rps,
            "median_cpu_us_per_request": cpu,
            "runs": {name: [vars(s) for s in samples] for name, samples in results.items()},
        }
        args.json.write_text(json.dumps(raw, indent=2) + "\n")
    return 1 if (failed and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
