"""Real-browser tests: Debian's Chromium driven by Playwright (sync API) against ``trio-ws serve``.

The server runs the way a user runs it, as ``python -m trio_ws serve --port 0 ...`` in a
subprocess (killed in ``finally``); the browser is ``/usr/bin/chromium`` (never a downloaded one),
headless, with a fresh profile per test (one browser per session, one context per test).

Every test here skips, naming the missing program, when Chromium or Playwright is missing (and
the media tests when ffmpeg is). Every wait is bounded: Playwright actions by
:data:`ACTION_TIMEOUT_MS`, the JavaScript snippets by their own deadline (``page.evaluate`` itself
has none), the server's start-up by :data:`SERVER_START_TIMEOUT`.

When a test fails, a screenshot of each of its pages goes to ``test-artifacts/`` and the paths
(with the page's console errors) are printed in the failure report.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Error, Page, Playwright

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"

#: The browser under test: Debian's package ``chromium``; ``TRIO_WS_CHROMIUM`` overrides the path.
CHROMIUM = os.environ.get("TRIO_WS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Bound of every Playwright action and wait (milliseconds); also the JavaScript snippets' deadline.
ACTION_TIMEOUT_MS = 10_000
SERVER_START_TIMEOUT = 15.0


def missing_browser() -> str | None:
    """Why the browser tests cannot run here (naming the missing program), or ``None``."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"chromium not found at {CHROMIUM} (Debian package `chromium`; `bash .ci/run` installs it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"playwright (Python package) not importable ({exc}): pip install -e '.[test]'"
    return None


def require_ffmpeg() -> str:
    """The path of ``ffmpeg``, or skip the test naming it."""
    path = shutil.which("ffmpeg")
    if path is None:
        pytest.skip("ffmpeg not found (Debian package `ffmpeg`; `bash .ci/run` installs it)")
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test of this directory ``browser``; skip them all, with the reason, if they cannot run."""
    here = Path(__file__).parent
    reason = missing_browser()
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.browser)
            if reason is not None:
                item.add_marker(pytest.mark.skip(reason=reason))


# -- the server ------------------------------------------------------------------------------


@dataclass
class Server:
    """A running ``trio-ws serve``: its base URL (``http://127.0.0.1:PORT``, or ``https://`` when run
    with ``--certfile``/``--keyfile``; :attr:`ws_url` is then ``wss://``), process and log file."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")

    def terminate(self, timeout: float = SERVER_START_TIMEOUT) -> int:
        """SIGTERM (a graceful shutdown, like Ctrl-C); the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


def _read_first_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    """The first line the server prints, within ``timeout`` seconds."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"trio-ws serve printed no URL within {timeout} s: {buf!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            data = os.read(fd, 4096)
            if not data:
                raise RuntimeError(f"trio-ws serve exited ({proc.wait()}) before printing its URL: {buf!r}")
            buf += data
    return buf.split(b"\n", 1)[0].decode()


@contextlib.contextmanager
def run_server(*args: str, log_dir: Path) -> Iterator[Server]:
    """Run ``python -m trio_ws serve --port 0 *args``; yield it; kill it on exit."""
    log = log_dir / "server.log"
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "trio_ws", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=log_file,
            cwd=REPO,
        )
    try:
        try:
            line = _read_first_line(proc, SERVER_START_TIMEOUT)
        except (TimeoutError, RuntimeError) as exc:
            raise RuntimeError(f"{exc}\nserver log:\n{log.read_text(errors='replace')}") from None
        match = re.search(r"(https?://127\.0\.0\.1:\d+)/", line)
        assert match, line
        yield Server(match.group(1), proc, log)
    finally:
        proc.kill()
        proc.wait(timeout=SERVER_START_TIMEOUT)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[Server]:
    """The built-in demo (``trio-ws serve`` with no ROOT), taking echo messages of up to 8 MiB."""
    with run_server("--max-message-size", str(8 << 20), log_dir=tmp_path) as server:
        yield server


# -- the browser -----------------------------------------------------------------------------


@dataclass
class PageLog:
    """What one page reported: console errors and uncaught exceptions."""

    page: Page
    errors: list[str] = field(default_factory=list)


@dataclass
class Pages:
    """Opens pages in the test's browser context and keeps what each of them reported."""

    context: BrowserContext
    opened: list[PageLog] = field(default_factory=list)

    def new(self) -> Page:
        page = self.context.new_page()
        log = PageLog(page)

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                log.errors.append(f"console.error: {message.text} ({message.location['url']})")

        def on_pageerror(error: Error) -> None:
            log.errors.append(f"pageerror: {error.message}")

        page.on("console", on_console)
        page.on("pageerror", on_pageerror)
        self.opened.append(log)
        return page

    def errors(self) -> list[str]:
        """Console errors (a failed resource load included) and uncaught exceptions of every page."""
        return [error for log in self.opened for error in log.errors]


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    reason = missing_browser()
    if reason is not None:  # pragma: no cover - the collection hook skips first
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=ACTION_TIMEOUT_MS * 3
    )
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def pages(browser: Browser) -> Iterator[Pages]:
    """A fresh context (its own profile: cookies, cache, storage) for one test."""
    context = browser.new_context()
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    try:
        yield Pages(context)
    finally:
        context.close()


@pytest.fixture
def page(pages: Pages) -> Page:
    return pages.new()


# -- JavaScript helpers ----------------------------------------------------------------------


def evaluate(page: Page, body: str, arg: Any = None, timeout_ms: int = ACTION_TIMEOUT_MS) -> Any:
    """Run ``async (arg) => { body }`` in the page, failing after ``timeout_ms`` (evaluate has no timeout)."""
    script = f"""async ([arg, timeoutMs]) => {{
        const body = async (arg) => {{ {body} }};
        let timer;
        const deadline = new Promise((_, reject) => {{
            timer = setTimeout(() => reject(new Error("timed out after " + timeoutMs + " ms")), timeoutMs);
        }});
        try {{ return await Promise.race([body(arg), deadline]); }} finally {{ clearTimeout(timer); }}
    }}"""
    return page.evaluate(script, [arg, timeout_ms])


def wait_for_text(page: Page, element_id: str, text: str) -> None:
    """Wait until the element ``#element_id`` reads exactly ``text``.

    A function, not an expression: Playwright evaluates a bare expression with ``eval()``, which the
    demo pages' Content-Security-Policy forbids.
    """
    page.wait_for_function(
        "([id, text]) => document.getElementById(id)?.textContent === text", arg=[element_id, text]
    )


# -- screenshots of failing tests ------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    pages = getattr(item, "funcargs", {}).get("pages")
    if not isinstance(pages, Pages):
        return
    ARTIFACTS.mkdir(exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid)
    lines = []
    for number, log in enumerate(pages.opened):
        path = ARTIFACTS / f"{stem}-page{number}.png"
        try:
            log.page.screenshot(path=str(path), full_page=True, timeout=ACTION_TIMEOUT_MS)
        except Exception as exc:  # the page may be what broke
            lines.append(f"page {number}: no screenshot ({exc!r})")
        else:
            lines.append(f"page {number}: screenshot saved to {path}")
            print(f"\nbrowser screenshot: {path}", file=sys.__stderr__)
        lines.extend(f"page {number}: {error}" for error in log.errors)
    report.sections.append(("browser screenshots", "\n".join(lines)))
