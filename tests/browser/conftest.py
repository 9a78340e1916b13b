"""Fixtures for tests in a real headless Chromium (the system's), driven by Playwright.

The browser is Debian's ``chromium`` at /usr/bin/chromium (``RELAYCAST_CHROMIUM`` points
elsewhere); Playwright's own browser downloads are never used. Outside CI a missing
Chromium skips these tests with the command that installs it; under CI it fails them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("RELAYCAST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _missing(message: str) -> None:
    if IN_CI:
        pytest.fail(message)  # under CI the browser tests must run
    pytest.skip(message)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """A headless system Chromium, closed after the test."""
    if not os.access(CHROMIUM, os.X_OK):
        _missing(
            f"no Chromium at {CHROMIUM}: install it with `sudo apt-get install chromium`"
            " (Debian/Ubuntu), or set RELAYCAST_CHROMIUM to a Chromium binary"
        )
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _missing("the playwright package is missing: pip install -e '.[dev]'")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    """A page whose uncaught JavaScript exceptions fail the test."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        await context.close()
    assert not errors, f"uncaught exceptions in the page: {errors}"


ALWAYS_RULE = """
[[rules]]
name = "always"
metric = "processes"
op = ">"
threshold = 0
severity = "critical"
message = "Test alert on {host}: {value:.0f} processes"
"""
"""An alert rule that holds on any host at once."""


class Stack:
    """Redis, two gateways and the publisher processes, as ``relaycast up`` runs them."""

    def __init__(self, redis_url: str, gateways: list[Any], tmp: Path) -> None:
        self.redis_url = redis_url
        self.gateways = gateways
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = dict(
            os.environ,
            RELAYCAST_REDIS_URL=redis_url,
            RELAYCAST_METRICS_HOST="web-1",
            RELAYCAST_METRICS_INTERVAL="0.5",
            RELAYCAST_ALERTS_INTERVAL="0.5",
        )

    def publisher(self, command: str, *args: str, **settings: str) -> subprocess.Popen[bytes]:
        """Start ``relaycast <command> <args>`` (``metrics``, ``alerts``, ``demo``...) with
        extra settings."""
        env = dict(self.env, **{f"RELAYCAST_{k.upper()}": v for k, v in settings.items()})
        log = open(self.tmp / f"{command}.log", "ab")  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen(
            [sys.executable, "-m", "shared.cli", command, *args], env=env, stdout=log, stderr=log
        )
        log.close()
        self.procs.append(proc)
        return proc

    def alerts(self, rules_text: str = ALWAYS_RULE) -> subprocess.Popen[bytes]:
        """Start ``relaycast alerts`` with these rules (by default, one that holds at once)."""
        rules = self.tmp / "rules.toml"
        rules.write_text(rules_text)
        return self.publisher("alerts", alerts_rules=str(rules))

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def stack(redis_server: Any, gateways: list[Any], tmp_path: Path) -> Iterator[Stack]:
    """Two gateways on a private Redis, and the metrics publisher for host ``web-1``. Each
    lets the dashboard it serves connect to the other (``?gateways=``)."""
    from shared.localredis import free_port
    from tests.helpers import GatewayProcess

    ports = [free_port(), free_port()]
    while ports[1] == ports[0]:
        ports[1] = free_port()
    both = ",".join(f"http://127.0.0.1:{port}" for port in ports)
    for port in ports:
        GatewayProcess.start(gateways, redis_server.url, port=port, dashboard_gateways=both)
    running = Stack(redis_server.url, gateways, tmp_path)
    running.publisher("metrics")
    try:
        yield running
    finally:
        running.close()
