"""Fixtures for tests in a real headless Chromium (the system's), driven by Playwright.

The browser is Debian's ``chromium`` at /usr/bin/chromium (``RELAYCAST_CHROMIUM`` points
elsewhere); Playwright's own browser downloads are never used. Outside CI a missing
Chromium skips these tests with the command that installs it; under CI it fails them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
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
