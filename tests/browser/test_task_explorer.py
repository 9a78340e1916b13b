"""The dashboard's task explorer in headless Chromium against a real gateway and Redis:
filters, the status and duration charts, paging, a task's paged log, JSON and CSV export."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from publisher.tasks import Tasks
from tests.browser.pages import wait_for_js
from tests.helpers import GatewayProcess


async def seed(redis_url: str) -> None:
    """60 tasks in "lab": 40 completed builds of alice, 5 failed tests, 15 queued."""
    async with Tasks(redis_url) as tasks:
        for i in range(60):
            kind = "build" if i < 40 else "test"
            task = await tasks.create(
                "lab", f"job {i}", id=f"j{i:02}", type=kind, owner="alice" if i < 40 else "bob"
            )
            if i < 45:
                await task.start()
            if i < 40:
                await task.complete()
            elif i < 45:
                await task.fail("red")
        noisy = await tasks.create("lab", "noisy", id="noisy", owner="carol")
        await noisy.start()
        for n in range(120):
            await noisy.log(f"line {n}", "warning" if n % 10 == 0 else "info", n=n)


def read(path: Path) -> str:
    """A downloaded file's text (small: reading it does not hold the loop up)."""
    return path.read_text(encoding="utf-8")


async def rows(page: Any) -> list[str]:
    return await page.eval_on_selector_all(  # type: ignore[no-any-return]
        "#explorer-table tbody tr", "rows => rows.map(r => r.dataset.taskId)"
    )


async def apply(page: Any, **fields: str) -> None:
    before = await page.get_attribute("#explorer-form", "data-loaded")
    for name, value in fields.items():
        selector = f"#explorer-form [name={name}]"
        if await page.eval_on_selector(selector, "el => el.tagName") == "SELECT":
            await page.select_option(selector, value)
        else:
            await page.fill(selector, value)
    await page.click("#explorer-form button[type=submit]")
    await wait_for_js(
        page,
        "(before) => document.querySelector('#explorer-form').dataset.loaded !== before",
        arg=before,
    )


async def test_the_explorer_filters_charts_pages_reads_logs_and_exports(
    redis_server, gateways, page
):
    gateway = GatewayProcess.start(gateways, redis_server.url)
    await seed(redis_server.url)
    await page.goto(f"{gateway.url}/?projects=lab")
    await page.wait_for_selector("#explorer-table tbody tr", timeout=15_000)

    await apply(page, project="lab", owner="alice", status="completed")
    assert len(await rows(page)) == 40  # one page of 50 holds them
    assert await page.is_hidden("#explorer-more")
    count = await page.get_attribute("#status-chart [data-status=completed]", "data-count")
    assert count == "40"
    assert await page.get_attribute("#status-chart [data-status=failed]", "data-count") == "5"
    assert await page.get_attribute("#duration-chart [data-type=build]", "data-p50") != ""

    await apply(page, owner="", status="")  # 61 tasks: a page of 50, then "More"
    assert len(await rows(page)) == 50
    await page.click("#explorer-more")
    await wait_for_js(page, "document.querySelectorAll('#explorer-table tbody tr').length === 61")
    assert len(set(await rows(page))) == 61

    await apply(page, type="test", status="failed")
    assert sorted(await rows(page)) == [f"j{i}" for i in range(40, 45)]

    async with page.expect_download() as info:
        await page.click("#export-csv")
    download = await info.value
    text = read(await download.path())
    table = list(csv.DictReader(io.StringIO(text)))
    assert sorted(r["id"] for r in table) == [f"j{i}" for i in range(40, 45)]
    assert {r["status"] for r in table} == {"failed"} and {r["error"] for r in table} == {"red"}
    async with page.expect_download() as info:
        await page.click("#export-json")
    exported = json.loads(read(await (await info.value).path()))
    assert sorted(t["id"] for t in exported) == [f"j{i}" for i in range(40, 45)]

    # A task's log, 50 lines a page, newest first; older pages on demand; level filter.
    await apply(page, type="", status="", owner="carol")
    await page.click("#explorer-table tbody tr[data-task-id=noisy]")
    await wait_for_js(page, "document.querySelector('#task-log-view').dataset.lines === '50'")
    first = await page.inner_text("#task-log-view .log-lines li:first-child")
    assert "line 119" in first
    await page.click("#task-log-view .log-older")
    await wait_for_js(page, "document.querySelector('#task-log-view').dataset.lines === '100'")
    await page.click("#task-log-view .log-older")
    await wait_for_js(page, "document.querySelector('#task-log-view').dataset.lines === '120'")
    assert await page.is_hidden("#task-log-view .log-older")
    await page.select_option("#task-log-view [name=level]", "warning")
    await page.click("#task-log-view .log-filter button[type=submit]")
    await wait_for_js(page, "document.querySelector('#task-log-view').dataset.lines === '12'")
    assert '{"n":110}' in await page.inner_text("#task-log-view .log-lines li:first-child")
