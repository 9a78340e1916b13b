"""The dashboard's notification bell in headless Chromium: the unread count and list, read
by the page from a real gateway, kept live, marked read from the page; toasts for new
notifications and when a followed task completes or fails."""

from __future__ import annotations

from typing import Any

import httpx

from publisher.tasks import Tasks
from tests.helpers import GatewayProcess


async def toasts(page: Any) -> list[str]:
    return await page.eval_on_selector_all(
        "#toasts .toast .title", "els => els.map(e => e.textContent)"
    )  # type: ignore[no-any-return]


async def test_the_bell_counts_lists_marks_read_and_toasts(redis_server, gateways, page):
    gateway = GatewayProcess.start(gateways, redis_server.url)
    async with (
        httpx.AsyncClient(base_url=gateway.url, timeout=10) as http,
        Tasks(redis_server.url) as tasks,
    ):
        post = "/api/notifications"
        await http.post(post, json={"user": "alice", "title": "Before the page", "type": "info"})
        followed = await tasks.create("shop", "Reindex", id="reindex")
        await tasks.create("shop", "Other", id="other")

        await page.goto(f"{gateway.url}/?user=alice&follow=shop/reindex&projects=shop")
        await page.wait_for_selector("#connection[data-state=connected]", timeout=15_000)
        await page.wait_for_selector("#bell[data-unread='1']", timeout=10_000)
        await page.click("#bell")
        assert await page.is_visible("#bell-panel")
        await page.wait_for_selector("#bell-list li.unread >> text=Before the page")

        # Live: a new notification raises the count, lists it, and shows a toast.
        body = {"user": "alice", "title": "Build broke", "body": "main", "type": "error"}
        created = (await http.post(post, json=body)).json()
        await page.wait_for_selector("#bell[data-unread='2']", timeout=10_000)
        await page.wait_for_selector("#toasts .toast.critical >> text=Build broke")
        item = f"#bell-list li[data-id='{created['id']}']"
        await page.click(f"{item} button.mark-read")
        await page.wait_for_selector("#bell[data-unread='1']", timeout=10_000)
        await page.wait_for_selector(f"{item}.read")
        await page.click("#bell-read-all")
        await page.wait_for_selector("#bell[data-unread='0']", timeout=10_000)
        assert await page.is_hidden("#bell-count")
        unread = (await http.get("/api/notifications/users/alice/unread")).json()
        assert unread["unread"] == 0  # marked in Redis, not only on the page

        # A followed task's failure is a toast; a task nobody follows ends quietly.
        await followed.start()
        other = await tasks.get("shop", "other")
        await other.start()
        await other.complete()
        await followed.fail("disk full")
        await page.wait_for_selector("#toasts .toast.critical >> text=Reindex failed")
        # The task's owner is notified too: a task of alice's completes.
        async with tasks.run("shop", "Nightly", owner="alice"):
            pass
        await page.wait_for_selector("#bell[data-unread='1']", timeout=10_000)
        await page.wait_for_selector("#toasts .toast.resolved >> text=Nightly completed")
        assert not any("Other" in title for title in await toasts(page))
