"""The dashboard in headless Chromium, fed by real publishers through two real gateways:
charts move, tasks finish, alerts come and go, a dead gateway costs no task event, and the
page still works where WebSockets (and SSE) are blocked."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest

from publisher.tasks import Tasks
from tests.browser.pages import BLOCK_WEBSOCKET, block_sse, output_path, wait_for_js
from tests.helpers import GatewayProcess, open_ws, subscribe

PROJECT = "shop"


def gateway_id(gateway: GatewayProcess) -> str:
    return json.loads(gateway.get("/gateway")[1])["gateway"]  # type: ignore[no-any-return]


async def open_dashboard(
    page: Any, gateway: GatewayProcess, *also: GatewayProcess, query: str = ""
) -> None:
    """Load the dashboard from ``gateway`` (failing over to ``also``), following PROJECT."""
    urls = ",".join(g.url for g in (gateway, *also))
    await page.goto(f"{gateway.url}/?projects={PROJECT}&gateways={urls}&window=5{query}")
    await page.wait_for_selector("#connection[data-state=connected][data-gateway]", timeout=15_000)


async def chart_points(page: Any) -> int:
    value = await page.get_attribute("[data-host=web-1]", "data-points")
    return int(value or 0)


async def run_task(
    redis_url: str, task_id: str, steps: int, pause: float = 0.02, logs: int = 1
) -> None:
    """A task published through the library: started, ``steps`` progress steps with
    ``logs`` log lines each, completed."""
    name = f"Export {task_id}"
    async with (
        Tasks(redis_url) as tasks,
        tasks.run(PROJECT, name, id=task_id, total_steps=steps, type="export") as task,
    ):
        for step in range(1, steps + 1):
            await task.progress(step=step, step_name=f"batch {step}")
            for n in range(logs):
                await task.log(f"{task_id} line {step}.{n}")
            await asyncio.sleep(pause)


async def test_dashboard_shows_live_metrics_tasks_and_alerts(stack, page):
    a, b = stack.gateways
    await open_dashboard(page, a, b)
    assert await page.get_attribute("#connection", "data-gateway") == gateway_id(a)
    assert await page.get_attribute("#connection", "data-transport") == "websocket"

    # Metrics: the host appears, and its charts gain points as samples arrive.
    await page.wait_for_selector("[data-host=web-1] .chart canvas", timeout=15_000)
    first = await chart_points(page)
    await wait_for_js(
        page,
        "(n) => +document.querySelector('[data-host=web-1]').dataset.points > n + 1",
        arg=first,
    )

    # Alerts: a rule raises one; it shows with its severity and a toast.
    stack.alerts()
    alert = page.locator("#alerts-active .alert[data-severity=critical]")
    await alert.wait_for(timeout=15_000)
    await page.locator(".toast.critical", has_text="Test alert on web-1").wait_for()

    # Tasks: one published through the library runs to 100% and shows completed.
    await run_task(stack.redis_url, "export-1", steps=8, pause=0.1)
    row = page.locator("[data-task-id=export-1]")
    await page.wait_for_selector("[data-task-id=export-1][data-status=completed]", timeout=15_000)
    assert await row.get_attribute("data-percent") == "100"
    assert (await row.locator(".badge").inner_text()).lower() == "completed 100%"
    assert await row.locator(".bar > span").evaluate("(el) => el.style.width") == "100%"
    await page.wait_for_timeout(400)  # let the bar's transition end, for the screenshot
    await page.screenshot(path=str(output_path("dashboard.png")), full_page=True)

    # Resolving by hand: the alert leaves the active list for the recent one, with a toast.
    await alert.locator("button", has_text="Resolve").click()
    await alert.wait_for(state="detached", timeout=15_000)
    await page.locator(".toast.resolved", has_text="Test alert on web-1").wait_for()
    assert await page.locator("#alerts-recent .alert").count() == 1
    assert await page.inner_text("#alerts-count") == "0 active"


async def test_killing_the_pages_gateway_moves_it_to_the_other_with_no_task_event_lost(stack, page):
    a, b = stack.gateways
    await open_dashboard(page, a, b)
    await page.evaluate(
        """() => {
          const box = document.getElementById("connection");
          window.shown = [];  // every state the indicator showed
          new MutationObserver(() => shown.push(box.dataset.state))
            .observe(box, { attributes: true, attributeFilter: ["data-state"] });
        }"""
    )
    steps, logs = 40, 2
    runner = asyncio.ensure_future(run_task(stack.redis_url, "export-2", steps, 0.03, logs))
    await page.wait_for_selector("[data-task-id=export-2]", timeout=15_000)
    a.kill()
    await runner
    await page.wait_for_selector("[data-task-id=export-2][data-status=completed]", timeout=20_000)
    await page.wait_for_selector("#connection[data-state=connected]", timeout=15_000)
    await wait_for_js(
        page,
        "(id) => document.getElementById('connection').dataset.gateway === id",
        arg=gateway_id(b),
    )

    shown = await page.evaluate("shown")
    assert "reconnecting" in shown and shown[-1] == "connected", shown
    # Every event of the project reached the page exactly once: its count is the channel's
    # last offset, and the log holds every line in order.
    ws = await open_ws(b.ws_url)
    published = (await subscribe(ws, f"tasks.{PROJECT}"))["offset"]
    await ws.close()
    row = page.locator("[data-task-id=export-2]")
    assert await row.get_attribute("data-events") == str(published)
    await row.locator("summary", has_text="log").click()  # expand the live log
    lines = await row.locator(".task-log li").all_inner_texts()
    logged = [m.group() for line in lines if (m := re.search(r"export-2 line \S+", line))]
    assert logged == [f"export-2 line {s}.{n}" for s in range(1, steps + 1) for n in range(logs)]


@pytest.mark.parametrize("blocked", [["websocket"], ["websocket", "sse"]], ids=["sse", "poll"])
async def test_page_falls_back_when_transports_are_blocked(stack, page, blocked):
    a, _ = stack.gateways
    await page.add_init_script(BLOCK_WEBSOCKET)
    if "sse" in blocked:
        await block_sse(page)
    # The blocking applies to the page, not to a shared worker: this tab connects by itself.
    await open_dashboard(page, a, query="&share=0")
    expected = "poll" if "sse" in blocked else "sse"
    assert await page.get_attribute("#connection", "data-transport") == expected
    assert await page.get_attribute("#connection", "data-gateway") == gateway_id(a)

    await page.wait_for_selector("[data-host=web-1]", timeout=15_000)
    first = await chart_points(page)
    await run_task(stack.redis_url, "export-3", steps=5, pause=0.1)
    await page.wait_for_selector("[data-task-id=export-3][data-status=completed]", timeout=15_000)
    await wait_for_js(
        page, "(n) => +document.querySelector('[data-host=web-1]').dataset.points > n", arg=first
    )
    assert await page.get_attribute("[data-task-id=export-3]", "data-events") == str(
        1 + 1 + 5 + 5 + 1  # queued, started, 5 x (progress, log), completed
    )


async def test_tabs_of_the_dashboard_share_one_connection(stack, page):
    a, _ = stack.gateways
    tabs = [page, await page.context.new_page()]
    for tab in tabs:
        await open_dashboard(tab, a)
    connections = 'relaycast_connections{transport="websocket"}'
    assert a.metric(connections) == 1
    await run_task(stack.redis_url, "export-4", steps=3)
    for tab in tabs:
        await tab.wait_for_selector("[data-task-id=export-4][data-status=completed]")
    # The connection outlives the tab that opened it, and serves the tabs left.
    await tabs[0].close()
    await run_task(stack.redis_url, "export-5", steps=3)
    await tabs[1].wait_for_selector("[data-task-id=export-5][data-status=completed]")
    assert a.metric(connections) == 1
    await tabs[1].close()
    await wait_for_js_metric(a, connections, 0)


async def wait_for_js_metric(gateway: GatewayProcess, name: str, value: float) -> None:
    for _ in range(200):
        if gateway.metric(name) == value:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} stayed at {gateway.metric(name)}, not {value}")
