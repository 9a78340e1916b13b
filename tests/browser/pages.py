"""Helpers for the browser tests: blocking transports, waiting on the page, saving output."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"

BLOCK_WEBSOCKET = """
(() => {
  // Like a proxy that refuses upgrades: every WebSocket fails before it opens.
  const Real = window.WebSocket;
  const Blocked = function (url, protocols) {
    return new Real("ws://127.0.0.1:9/blocked", protocols);
  };
  Object.assign(Blocked, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
  window.WebSocket = Blocked;
})();
"""
"""An init script that makes every WebSocket of the page fail to open."""


async def block_sse(page: Any) -> None:
    """Refuse every ``/sse`` request of the page, as a buffering proxy might."""
    await page.route("**/sse?**", lambda route: route.abort())


def output_path(name: str) -> Path:
    """A file under test-output/ (gitignored), for a person to look at."""
    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT / name


async def wait_for_js(page: Any, expression: str, timeout: float = 15.0, arg: Any = None) -> Any:
    """Evaluate ``expression`` until it is truthy; return its value (a hang guard)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await page.evaluate(expression, arg)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {expression}")
        await page.wait_for_timeout(50)
