"""Helpers shared by the benchmarks in ``bench/``.

Everything a benchmark needs to compare servers fairly on a small machine:

* :func:`ensure_wrk` — find ``wrk`` (installing Debian's package when root);
  :func:`ensure_command` does the same for any command and package,
  :func:`ensure_header` for a C library's headers;
* :func:`free_port`, :class:`ServerProcess` — start a server script pinned to
  one CPU core in its own process group, wait until it accepts, and always
  stop it (``with`` block: SIGTERM, then SIGKILL, to the whole group);
* :func:`fetch` — one request with ``curl`` to check what a server answers;
* :func:`run_wrk` — one ``wrk`` run pinned to another core, parsed;
* :func:`median`, :func:`format_table` — summarise and print side by side;
* :func:`process_group_rss_bytes`, :func:`raise_nofile_limit` — memory of a
  server, and file descriptors for many connections;
* :func:`ensure_tls_certs` — a test CA and a certificate for 127.0.0.1 (trustme).

The scripts in ``bench/`` run as ``python bench/<name>.py`` so this module is
imported as ``common`` (``bench/`` is ``sys.path[0]``).
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
PYTHON = sys.executable

#: Core the server under test runs on, and the core the load generator runs on.
SERVER_CORE = 0
CLIENT_CORE = 1


def ensure_wrk() -> str:
    """Path of ``wrk``; installs Debian's ``wrk`` with apt-get when missing and root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit("wrk is not installed and we are not root: run `apt-get install -y wrk`")
    print("wrk not found: installing it with apt-get ...", file=sys.stderr, flush=True)
    subprocess.run(
        ["sh", "-c", "command -v wrk || (apt-get update && apt-get install -y wrk)"],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("apt-get install wrk did not provide a wrk binary")
    return found


def ensure_command(command: str, package: str, extra_paths: Sequence[str] = ()) -> str:
    """Path of ``command`` (also looked for in ``extra_paths``, e.g. ``/usr/sbin``);
    installs Debian's ``package`` with apt-get when missing and root."""
    search = os.pathsep.join([os.environ.get("PATH", os.defpath), *extra_paths])
    found = shutil.which(command, path=search)
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit(f"{command} is not installed and we are not root: `apt-get install -y {package}`")
    print(f"{command} not found: installing {package} with apt-get ...", file=sys.stderr, flush=True)
    subprocess.run(
        ["sh", "-c", f"apt-get update && apt-get install -y {package}"],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    found = shutil.which(command, path=search)
    if not found:
        raise SystemExit(f"apt-get install {package} did not provide {command}")
    return found


def ensure_header(header: str, package: str) -> Path:
    """``/usr/include/<header>`` (a C library's development files); installs Debian's
    ``package`` with apt-get when missing and root."""
    path = Path("/usr/include", header)
    if path.exists():
        return path
    if os.geteuid() != 0:
        raise SystemExit(f"{path} is missing and we are not root: `apt-get install -y {package}`")
    print(f"{path} not found: installing {package} with apt-get ...", file=sys.stderr, flush=True)
    subprocess.run(
        ["sh", "-c", f"apt-get update && apt-get install -y {package}"],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    if not path.exists():
        raise SystemExit(f"apt-get install {package} did not provide {path}")
    return path


def pinned(argv: Sequence[str], core: int) -> list[str]:
    """``argv`` prefixed with ``taskset -c core`` when taskset exists and the core does."""
    if shutil.which("taskset") and core < (os.cpu_count() or 1):
        return ["taskset", "-c", str(core), *argv]
    return list(argv)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """A server subprocess pinned to ``core``, in its own process group.

    Use as a context manager: ``__enter__`` starts it and waits until it
    accepts TCP connections on ``port``; ``__exit__`` (also on errors and
    Ctrl-C) stops the whole process group.
    """

    name: str
    argv: list[str]
    port: int
    core: int = SERVER_CORE
    host: str = "127.0.0.1"
    start_timeout: float = 15.0
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _log: tempfile._TemporaryFileWrapper[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        self._log = tempfile.NamedTemporaryFile(prefix=f"bench-{self.name}-", suffix=".log")  # noqa: SIM115
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            pinned(self.argv, self.core),
            cwd=REPO_DIR,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: killpg reaches every child
            env=env,
        )
        self.wait_accepting()

    def wait_accepting(self) -> None:
        """Block until a TCP connect to ``port`` succeeds (or the process died / timed out)."""
        assert self.proc is not None
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.output()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{self.name} did not accept on port {self.port} within {self.start_timeout}s:\n"
                        f"{self.output()}"
                    ) from None
                time.sleep(0.05)

    def output(self) -> str:
        """What the server printed so far (stdout and stderr)."""
        if self._log is None:
            return ""
        return Path(self._log.name).read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it after 3 s; idempotent."""
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                _killpg(proc.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=3)
            # Whatever the leader did, make sure no child of the group survives.
            _killpg(proc.pid, signal.SIGKILL)
            if proc.poll() is None:
                proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far by every live process of the server's group.

        CPU time per request is much less sensitive than req/s to other
        processes competing for the server's core.
        """
        if self.proc is None:
            return 0.0
        return process_group_cpu_seconds(self.proc.pid)

    def rss_bytes(self) -> int:
        """Resident memory of every live process of the server's group."""
        return process_group_rss_bytes(self.proc.pid) if self.proc is not None else 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def __enter__(self) -> ServerProcess:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_group_cpu_seconds(pgid: int) -> float:
    """utime + stime of the processes in process group ``pgid`` (Linux ``/proc``)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        # fields[0] is field 3 (state): pgrp is field 5, utime 14, stime 15.
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / _CLOCK_TICKS


def process_group_rss_bytes(pgid: int) -> int:
    """Resident set size (``VmRSS``) summed over the processes in process group ``pgid`` (Linux)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[2]) != pgid:
                continue
            status = (stat.parent / "status").read_text()
        except OSError:
            continue
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        total += int(found.group(1)) * 1024 if found else 0
    return total


def raise_nofile_limit() -> int:
    """Raise this process's soft ``RLIMIT_NOFILE`` to the hard limit (children inherit it); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass(frozen=True)
class TlsFiles:
    ca: Path  # the CA certificate (PEM), for clients
    cert: Path  # the server's certificate chain (PEM)
    key: Path  # the server's private key (PEM)


def ensure_tls_certs(directory: Path) -> TlsFiles:
    """A trustme CA and a server certificate for ``127.0.0.1`` / ``localhost`` in ``directory``.

    Made once and reused (the same files for every server, so every TLS row uses
    the same key type: trustme's default ECDSA P-256)."""
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    if not all(p.is_file() for p in (files.ca, files.cert, files.key)):
        import trustme  # only the TLS benchmarks need it

        directory.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA()
        leaf = ca.issue_cert("127.0.0.1", "localhost")
        ca.cert_pem.write_to_path(str(files.ca))
        files.cert.write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
        leaf.private_key_pem.write_to_path(str(files.key))
    return files


def _killpg(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@dataclass
class Fetched:
    status: int
    headers: dict[str, str]
    body: bytes


def fetch(url: str, timeout: float = 5.0, headers: Sequence[str] = ()) -> Fetched:
    """One GET with ``curl`` (a client that is not ours): status, headers, body.

    ``headers`` are extra request header lines (``"Range: bytes=0-9"``).
    """
    extra = [arg for line in headers for arg in ("-H", line)]
    with tempfile.NamedTemporaryFile() as head, tempfile.NamedTemporaryFile() as body:
        subprocess.run(
            ["curl", "-sS", "--max-time", str(timeout), *extra, "-D", head.name, "-o", body.name, url],
            check=True,
        )
        raw_head = Path(head.name).read_bytes().decode("latin-1")
        data = Path(body.name).read_bytes()
    lines = raw_head.split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return Fetched(status, headers, data)


@dataclass
class WrkResult:
    requests_per_sec: float
    requests: int
    latency_avg: str
    socket_errors: int
    non_2xx: int
    output: str

    @property
    def clean(self) -> bool:
        return self.socket_errors == 0 and self.non_2xx == 0


_UNITS = {"": 1, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6}


def run_wrk(
    url: str,
    *,
    duration: float,
    connections: int,
    threads: int = 1,
    core: int = CLIENT_CORE,
    wrk: str = "wrk",
    headers: Sequence[str] = (),
) -> WrkResult:
    """One ``wrk`` run pinned to ``core``; raises if wrk fails or reports nothing.

    ``headers`` are extra request header lines (``wrk -H``), e.g. ``"Range: bytes=0-9"``.
    """
    extra = [arg for line in headers for arg in ("-H", line)]
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--timeout", "5s", *extra, url]
    proc = subprocess.run(
        pinned(argv, core), capture_output=True, text=True, timeout=duration + 30, check=False
    )
    out = proc.stdout + proc.stderr
    rps = re.search(r"Requests/sec:\s*([\d.]+)([kKmM]?)", out)
    total = re.search(r"(\d+) requests in", out)
    if proc.returncode != 0 or rps is None or total is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{out}")
    latency = re.search(r"Latency\s+(\S+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return WrkResult(
        requests_per_sec=float(rps.group(1)) * _UNITS[rps.group(2)],
        requests=int(total.group(1)),
        latency_avg=latency.group(1) if latency else "?",
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        output=out,
    )


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def ratio(value: float, reference: float) -> float:
    return value / reference if reference else float("nan")


def format_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table (readable as plain text too)."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])
