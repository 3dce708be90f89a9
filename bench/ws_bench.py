"""WebSocket echo: trio_ws vs websockets (asyncio and trio), trio-websocket, aiohttp, a raw trio echo.

``python bench/ws_bench.py [--runs 3] [--duration 5] [--only SCENARIO]``

Scenarios (the issue's), each against an echo endpoint (text stays text, binary
stays binary):

* ``pingpong``  64 connections, one 32-byte text in flight each (msg/s);
* ``pipeline``  8 connections, 100 binary 256-byte messages in flight each (msg/s);
* ``big-1MiB``, ``big-16MiB``  one connection echoing one binary message at a time (MB/s
  of payload echoed, 1 MB = 10^6 bytes);
* ``handshake`` 32 parallel loops of connect, upgrade, one 32-byte echo, close
  handshake, wait for the server's EOF (handshakes/s);
* ``idle``      5,000 connections (upgrade + one echo each) held open: server memory
  per connection (RSS delta / 5,000; fresh server per run, warmed up by 0.5 s of
  handshakes before the baseline).

With ``--compression``: the same scenarios with permessage-deflate negotiated
(``deflate-pingpong`` ... ``deflate-idle``) against trio_ws, websockets (asyncio
and trio, ``compression="deflate"``) and aiohttp (``compress=15``): the load
generator offers ``permessage-deflate; client_max_window_bits``, requires it in
every 101, compresses every message it sends and inflates and checks every echo;
the messages are distinct JSON-like text / half-random binary instead of one
repeated pattern. With ``--tls``: ``wss-pingpong`` and ``wss-big-1MiB``, the
plain scenarios over TLS (a trustme certificate in ``bench/.work/tls``; no
compression). Without ``--compression``, ``--tls`` or ``--only``: the plain
scenarios, as before. Target of every compression row: trio_ws >= websockets
(asyncio) with the same setting. The TLS rows are reported against the same
peer without a target: the issue sets its target on the compression rows and
asks for TLS rows against the same peers; they measure ``trio.SSLStream``, the
TLS layer the project brief names (bench/README.md, "Third session").

Every server runs pinned to core 0, the load generator (``bench/ws_load/wsload.c``,
compiled here with gcc into ``bench/.work/``) to core 1. Every server has
compression off and a max message size of 32 MiB. The raw trio TCP echo has no
WebSocket at all: the load generator sends it the same masked frames with
``--raw`` and checks that they come back; it is the ceiling of the runtime.

Runs are interleaved per scenario (run 1 of every server, then run 2, ...); the
table gives the median, every run, the ratio to the target peer(s), and the
server's CPU time (user + system, ``/proc``, whole process group) per message,
per handshake; the idle row gives KiB per connection. Any echo that differs from
what was sent, or a connection error, voids that run (shown as ``err``). Every
server started is stopped on the way out (its process group is killed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import select
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from common import (
    BENCH_DIR,
    CLIENT_CORE,
    PYTHON,
    ServerProcess,
    ensure_header,
    ensure_tls_certs,
    format_table,
    free_port,
    median,
    pinned,
    raise_nofile_limit,
    ratio,
)

WORK_DIR = BENCH_DIR / ".work"
WSLOAD_SRC = BENCH_DIR / "ws_load" / "wsload.c"
WSLOAD = WORK_DIR / "wsload"
SERVER_DIR = BENCH_DIR / "ws_servers"
TLS_DIR = WORK_DIR / "tls"
MAX_MESSAGE = 32 * 1024 * 1024
IDLE_CONNECTIONS = 5000

#: Server/client settings of a scenario: no extension over TCP, permessage-deflate, TLS.
PLAIN, DEFLATE, TLS = "plain", "deflate", "tls"

TRIO_WS = "trio_ws"
WS_ASYNCIO = "websockets (asyncio)"
WS_TRIO = "websockets (trio)"
TRIO_WEBSOCKET = "trio-websocket"
AIOHTTP = "aiohttp"
RAW = "raw trio echo"


@dataclass(frozen=True)
class Server:
    argv: Callable[[int], list[str]]
    raw: bool = False  # no WebSocket: the load generator sends frames with --raw
    #: extra arguments per variant; a variant missing here is not available
    variants: dict[str, list[str]] = field(default_factory=lambda: {PLAIN: []})

    def command(self, port: int, variant: str) -> list[str]:
        extra = self.variants[variant]
        if variant == TLS:
            tls = ensure_tls_certs(TLS_DIR)
            extra = [a.replace("@CERT@", str(tls.cert)).replace("@KEY@", str(tls.key)) for a in extra]
        return [*self.argv(port), *extra]


#: trio_ws accepts permessage-deflate by default (it needs an offer); the scripts take flags.
_TLS_ARGS = ["--certfile", "@CERT@", "--keyfile", "@KEY@"]
_TRIO_WS_VARIANTS = {PLAIN: [], DEFLATE: [], TLS: _TLS_ARGS}
_SCRIPT_VARIANTS = {PLAIN: [], DEFLATE: ["--compression"], TLS: _TLS_ARGS}


def _script(name: str) -> Callable[[int], list[str]]:
    return lambda port: [PYTHON, str(SERVER_DIR / name), str(port)]


SERVERS = {
    # The stable way to run trio_ws's echo: its CLI.
    TRIO_WS: Server(
        lambda port: [
            *(PYTHON, "-m", "trio_ws", "serve", "--echo", "/ws", "--port", str(port)),
            *("--no-access-log", "--log-level", "warning"),
            *("--max-message-size", str(MAX_MESSAGE), "--max-connections", str(4 * IDLE_CONNECTIONS)),
        ],
        variants=_TRIO_WS_VARIANTS,
    ),
    WS_ASYNCIO: Server(_script("websockets_asyncio.py"), variants=_SCRIPT_VARIANTS),
    WS_TRIO: Server(_script("websockets_trio.py"), variants=_SCRIPT_VARIANTS),
    TRIO_WEBSOCKET: Server(_script("trio_websocket_echo.py")),
    AIOHTTP: Server(_script("aiohttp_echo.py"), variants=_SCRIPT_VARIANTS),
    RAW: Server(_script("raw_trio_echo.py"), raw=True),
}


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    client: list[str]  # wsload arguments
    servers: list[str]
    targets: list[tuple[str, float]]  # (peer, minimum ratio of trio_ws's figure to the peer's)
    unit: str = "msg/s"
    cpu_unit: str = "us CPU/msg"
    megabytes: bool = False  # figure = payload MB/s instead of messages/s
    variant: str = PLAIN
    reported: list[str] = field(default_factory=list)  # peers compared with, without a target

    @property
    def idle(self) -> bool:
        return self.key.endswith("idle")

    @property
    def wsload_args(self) -> list[str]:
        if self.variant == DEFLATE:
            return [*self.client, "--deflate"]
        if self.variant == TLS:
            return [*self.client, "--tls", "--cafile", str(TLS_DIR / "ca.pem")]
        return self.client


SCENARIOS = [
    Scenario(
        "pingpong",
        "64 conns ping-pong, 32 B text",
        ["--mode", "pingpong", "--conns", "64", "--size", "32", "--text"],
        [TRIO_WS, WS_TRIO, TRIO_WEBSOCKET, RAW, WS_ASYNCIO, AIOHTTP],
        [(WS_TRIO, 2.5), (TRIO_WEBSOCKET, 2.5), (RAW, 0.8)],
    ),
    Scenario(
        "pipeline",
        "8 conns x 100 in flight, 256 B binary",
        ["--mode", "pipeline", "--conns", "8", "--depth", "100", "--size", "256", "--binary"],
        [TRIO_WS, WS_ASYNCIO, AIOHTTP, RAW],
        [(WS_ASYNCIO, 1.0)],
    ),
    Scenario(
        "big-1MiB",
        "1 conn, 1 MiB binary",
        ["--mode", "big", "--conns", "1", "--size", str(1 << 20), "--binary"],
        [TRIO_WS, WS_ASYNCIO, RAW],
        [(WS_ASYNCIO, 1.0)],
        unit="MB/s",
        megabytes=True,
    ),
    Scenario(
        "big-16MiB",
        "1 conn, 16 MiB binary",
        ["--mode", "big", "--conns", "1", "--size", str(16 << 20), "--binary"],
        [TRIO_WS, WS_ASYNCIO, RAW],
        [(WS_ASYNCIO, 1.0)],
        unit="MB/s",
        megabytes=True,
    ),
    Scenario(
        "handshake",
        "connect + 1 echo + close, 32 parallel",
        ["--mode", "handshake", "--conns", "32", "--size", "32", "--text"],
        [TRIO_WS, WS_ASYNCIO, AIOHTTP],
        [(WS_ASYNCIO, 1.0)],
        unit="handshakes/s",
        cpu_unit="us CPU/handshake",
    ),
    Scenario(
        "idle",
        f"{IDLE_CONNECTIONS:,} idle conns",
        ["--mode", "idle", "--conns", str(IDLE_CONNECTIONS), "--size", "32", "--text"],
        [TRIO_WS, WS_ASYNCIO, AIOHTTP],
        [(WS_ASYNCIO, 1.0)],  # lower is better: trio_ws <= websockets
        unit="KiB/conn",
        cpu_unit="s to open all",
    ),
]
#: The plain scenarios with permessage-deflate negotiated: every row against websockets (asyncio).
DEFLATE_SERVERS = [TRIO_WS, WS_ASYNCIO, WS_TRIO, AIOHTTP]
SCENARIOS += [
    Scenario(
        f"deflate-{s.key}",
        f"{s.title}, deflate",
        s.client,
        DEFLATE_SERVERS if not s.idle else [TRIO_WS, WS_ASYNCIO, AIOHTTP],
        [(WS_ASYNCIO, 1.0)],
        unit=s.unit,
        cpu_unit=s.cpu_unit,
        megabytes=s.megabytes,
        variant=DEFLATE,
    )
    for s in list(SCENARIOS)
]
#: wss:// (TLS, no compression): ping-pong and 1 MiB.
SCENARIOS += [
    Scenario(
        f"wss-{s.key}",
        f"{s.title}, wss",
        s.client,
        [TRIO_WS, WS_ASYNCIO, WS_TRIO, AIOHTTP],
        [],
        unit=s.unit,
        cpu_unit=s.cpu_unit,
        megabytes=s.megabytes,
        variant=TLS,
        reported=[WS_ASYNCIO],
    )
    for s in list(SCENARIOS)
    if s.key in ("pingpong", "big-1MiB")
]
BY_KEY = {s.key: s for s in SCENARIOS}
#: Warm-up/check scenario per variant (ping-pong), and the idle warm-up (handshakes).
WARMUP = {PLAIN: "pingpong", DEFLATE: "deflate-pingpong", TLS: "wss-pingpong"}
IDLE_WARMUP = {PLAIN: "handshake", DEFLATE: "deflate-handshake"}


@dataclass
class Sample:
    value: float  # msg/s, MB/s, handshakes/s or KiB per connection
    cpu: float  # server CPU us per message/handshake (idle: seconds to open every connection)
    client_cpu: float = 0.0  # load generator CPU seconds / wall seconds of the window
    wire: float = 0.0  # bytes read by the client / payload bytes echoed (deflate: < 1 when compressed)
    compressed: float = 0.0  # share of the echoes that came compressed (RSV1)


@dataclass
class Cell:
    samples: list[Sample] = field(default_factory=list)
    errors: int = 0


def ensure_wsload() -> Path:
    """Compile the load generator when missing or older than its source."""
    if WSLOAD.exists() and WSLOAD.stat().st_mtime >= WSLOAD_SRC.stat().st_mtime:
        return WSLOAD
    WORK_DIR.mkdir(exist_ok=True)
    ensure_header("zlib.h", "zlib1g-dev")  # permessage-deflate
    ensure_header("openssl/ssl.h", "libssl-dev")  # wss://
    argv = ["gcc", "-O2", "-Wall", "-o", str(WSLOAD), str(WSLOAD_SRC), "-lz", "-lssl", "-lcrypto"]
    subprocess.run(argv, check=True)
    return WSLOAD


def wsload_argv(server: ServerProcess, raw: bool, args: list[str], duration: float) -> list[str]:
    argv = [str(WSLOAD), "--port", str(server.port), "--path", "/ws", "--duration", f"{duration:g}", *args]
    return pinned([*argv, "--raw"] if raw else argv, CLIENT_CORE)


def run_client(server: ServerProcess, raw: bool, scenario: Scenario, duration: float) -> tuple[dict, float]:
    """One load-generator run; returns its JSON report and the server CPU seconds it cost."""
    cpu_before = server.cpu_seconds()
    proc = subprocess.run(
        wsload_argv(server, raw, scenario.wsload_args, duration),
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=False,
    )
    cpu = server.cpu_seconds() - cpu_before
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"wsload failed ({proc.returncode}): {proc.stderr.strip()}")
    report = json.loads(lines[-1])
    if proc.returncode != 0 or report["errors"]:
        raise RuntimeError(f"{report['errors']} connection error(s): {proc.stderr.strip()[:300]}")
    return report, cpu


def measure(server: ServerProcess, raw: bool, scenario: Scenario, duration: float) -> Sample:
    report, cpu = run_client(server, raw, scenario, duration)
    count = max(report["messages"], 1)
    elapsed = report["elapsed"]
    value = report["bytes"] / elapsed / 1e6 if scenario.megabytes else report["messages"] / elapsed
    echoes = max(report.get("rx_msgs", 0), 1)
    return Sample(
        value,
        cpu / count * 1e6,
        report["client_cpu"] / max(report["wall"], 1e-9),
        wire=report.get("rx_bytes", 0) / (echoes * _size(scenario)),
        compressed=report.get("rx_compressed", 0) / echoes,
    )


def _size(scenario: Scenario) -> int:
    return int(scenario.client[scenario.client.index("--size") + 1])


def check_negotiated(name: str, variant: str, report: dict) -> str:
    """What the warm-up's 101 / TLS handshake negotiated; raises if it is not what the variant needs."""
    if variant == DEFLATE:
        if not report.get("extensions", "").startswith("permessage-deflate"):
            raise RuntimeError(f"{name}: no permessage-deflate in the 101: {report.get('extensions')!r}")
        return report["extensions"]
    if variant == TLS:
        if not report.get("tls"):
            raise RuntimeError(f"{name}: no TLS")
        return report["tls"]
    return ""


def measure_idle(name: str, scenario: Scenario) -> Sample:
    """Fresh server; warm up with handshakes; RSS before/after opening the connections."""
    spec = SERVERS[name]
    port = free_port()
    with ServerProcess(name, spec.command(port, scenario.variant), port) as server:
        run_client(server, False, BY_KEY[IDLE_WARMUP[scenario.variant]], 0.5)
        time.sleep(0.5)
        rss_before = server.rss_bytes()
        started = time.monotonic()
        proc = subprocess.Popen(
            wsload_argv(server, False, [*scenario.wsload_args, "--timeout", "90"], 0),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdin is not None
            ready = ""
            while not ready.startswith(("READY", "{")) and time.monotonic() - started < 100:
                readable, _, _ = select.select([proc.stdout], [], [], 1.0)
                if readable:
                    ready = proc.stdout.readline() or "{}"
            opened = time.monotonic() - started
            if not ready.startswith("READY") or int(ready.split()[1]) != IDLE_CONNECTIONS:
                raise RuntimeError(f"only {ready.strip()!r} connections opened: {proc.stderr.read()[:300]}")
            time.sleep(1.0)
            rss_after = server.rss_bytes()
            proc.stdin.close()  # the load generator closes every connection and exits
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return Sample((rss_after - rss_before) / IDLE_CONNECTIONS / 1024, opened)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs per server (median reported)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measured run")
    parser.add_argument("--only", action="append", choices=list(BY_KEY), help="restrict to these scenarios")
    parser.add_argument(
        "--compression", action="store_true", help="run the deflate-* scenarios (permessage-deflate)"
    )
    parser.add_argument("--tls", action="store_true", help="run the wss-* scenarios (TLS)")
    parser.add_argument("--servers", action="append", choices=list(SERVERS), help="restrict to these servers")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    keys = list(args.only or ())
    keys += [s.key for s in SCENARIOS if (args.compression and s.variant == DEFLATE)]
    keys += [s.key for s in SCENARIOS if (args.tls and s.variant == TLS)]
    if not keys:
        keys = [s.key for s in SCENARIOS if s.variant == PLAIN]
    scenarios = [BY_KEY[key] for key in dict.fromkeys(keys)]
    wanted = set(args.servers or SERVERS)
    ensure_wsload()
    nofile = raise_nofile_limit()
    if nofile < IDLE_CONNECTIONS + 100 and any(s.idle for s in scenarios):
        raise SystemExit(f"RLIMIT_NOFILE is {nofile}: `ulimit -n 65536` first")
    started = time.monotonic()
    print(
        f"python {platform.python_version()}, {args.runs} interleaved runs x {args.duration:g}s, "
        f"servers on core 0, wsload (C, epoll) on core 1",
        flush=True,
    )
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"  warning: load average is {load:.2f}: other processes compete for the cores", flush=True)

    results: dict[str, dict[str, Cell]] = {
        s.key: {n: Cell() for n in s.servers if n in wanted} for s in scenarios
    }
    with ExitStack() as stack:
        servers: dict[tuple[str, str], ServerProcess] = {}
        needed = {(n, s.variant) for s in scenarios if not s.idle for n in s.servers if n in wanted}
        for variant in (PLAIN, DEFLATE, TLS):
            for name in (n for n in SERVERS if (n, variant) in needed):
                port = free_port()
                command = SERVERS[name].command(port, variant)
                server = stack.enter_context(ServerProcess(name, command, port))
                servers[name, variant] = server
                # Warm-up, and a check that it echoes text as text (and negotiated
                # what the variant needs): 1 s of ping-pong.
                try:
                    report, _ = run_client(server, SERVERS[name].raw, BY_KEY[WARMUP[variant]], 1.0)
                    got = check_negotiated(name, variant, report)
                    print(f"  {name:<22} {variant:<8} :{port}  ok  {got}", flush=True)
                except RuntimeError as exc:
                    print(f"  {name:<22} {variant:<8} :{port}  warm-up FAILED: {exc}", flush=True)
        for scenario in scenarios:
            for run in range(1, args.runs + 1):
                for name, cell in results[scenario.key].items():
                    try:
                        if scenario.idle:
                            sample = measure_idle(name, scenario)
                        else:
                            server = servers[name, scenario.variant]
                            sample = measure(server, SERVERS[name].raw, scenario, args.duration)
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:
                        cell.errors += 1
                        print(
                            f"  {scenario.key:<10} run {run}/{args.runs} {name:<22} ERROR {exc}", flush=True
                        )
                        continue
                    cell.samples.append(sample)
                    extra = (
                        f"{sample.cpu:5.1f} {scenario.cpu_unit}"
                        if scenario.idle
                        else f"{sample.cpu:8.1f} {scenario.cpu_unit}  (client CPU {sample.client_cpu:.0%})"
                    )
                    if scenario.variant == DEFLATE and not scenario.idle:
                        extra += f"  wire/payload {sample.wire:.2f}, {sample.compressed:.0%} compressed"
                    print(
                        f"  {scenario.key:<10} run {run}/{args.runs} {name:<22} "
                        f"{sample.value:>10,.1f} {scenario.unit}  {extra}",
                        flush=True,
                    )

    print()
    rows, verdicts, failed = [], [], False
    # deflate rows: bytes on the wire back / payload (how much each server compresses its echoes)
    with_wire = any(s.variant == DEFLATE and not s.idle for s in scenarios)
    for scenario in scenarios:
        cells = results[scenario.key]
        med = {n: median([s.value for s in c.samples]) for n, c in cells.items() if c.samples}
        cpu = {n: median([s.cpu for s in c.samples]) for n, c in cells.items() if c.samples}
        wire = {n: median([s.wire for s in c.samples]) for n, c in cells.items() if c.samples}
        peers = [peer for peer, _ in scenario.targets] + scenario.reported
        for name, cell in cells.items():
            all_runs = " ".join(f"{s.value:,.1f}" for s in cell.samples) + " err" * cell.errors
            vs = [
                f"{ratio(med[name], med[p]):.2f}x {p}" if name in med and p in med and p != name else ""
                for p in peers
            ]
            rows.append(
                [
                    scenario.title if name == next(iter(cells)) else "",
                    name,
                    f"{med[name]:,.1f} {scenario.unit}" if name in med else "err",
                    all_runs,
                    "; ".join(v for v in vs if v) if name == TRIO_WS else "",
                    f"{cpu[name]:,.1f} {scenario.cpu_unit}" if name in cpu else "",
                    *([f"{wire[name]:.2f}" if name in wire else ""] if with_wire else []),
                ]
            )
        for peer, minimum in scenario.targets:
            if TRIO_WS not in cells or peer not in cells:
                continue
            if TRIO_WS not in med or peer not in med:
                verdicts.append(f"{scenario.key}: trio_ws vs {peer}: no result  FAIL")
                failed = True
                continue
            if scenario.idle:  # memory: lower is better
                got, by_cpu = ratio(med[TRIO_WS], med[peer]), None
                ok = med[TRIO_WS] <= med[peer]
                goal = f"<= {minimum:g}x (memory per connection)"
            else:
                got, by_cpu = ratio(med[TRIO_WS], med[peer]), ratio(cpu[peer], cpu[TRIO_WS])
                ok = got >= minimum
                goal = f">= {minimum:g}x"
            failed |= not ok
            cpu_note = f"   (by server CPU per unit: {by_cpu:.2f}x)" if by_cpu is not None else ""
            verdicts.append(
                f"{scenario.key}: trio_ws {goal} {peer}: {got:.2f}x  {'PASS' if ok else 'FAIL'}{cpu_note}"
            )
        for peer in scenario.reported:
            if TRIO_WS in med and peer in med:
                got, by_cpu = ratio(med[TRIO_WS], med[peer]), ratio(cpu[peer], cpu[TRIO_WS])
                verdicts.append(
                    f"{scenario.key}: trio_ws vs {peer}: {got:.2f}x  (reported, no target)"
                    f"   (by server CPU per unit: {by_cpu:.2f}x)"
                )
    header = ["scenario", "server", "median", "all runs", "trio_ws vs target", "server CPU (median)"]
    header += ["wire/payload"] if with_wire else []
    print(format_table(header, rows))
    print()
    print("\n".join(verdicts))
    print(f"\n(total time {time.monotonic() - started:.0f}s, load average now {os.getloadavg()[0]:.2f})")

    if args.json:
        raw = {
            "args": {k: str(v) for k, v in vars(args).items()},
            "results": {
                key: {
                    n: {"samples": [vars(s) for s in c.samples], "errors": c.errors} for n, c in cells.items()
                }
                for key, cells in results.items()
            },
        }
        args.json.write_text(json.dumps(raw, indent=2) + "\n")
    return 1 if (failed and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
