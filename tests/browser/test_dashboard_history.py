"""The dashboard's charts draw history the moment the page opens, switch to a day and to
30 days, and grow with live samples; a service's own series come with its units."""

from __future__ import annotations

import time
from typing import Any

import httpx

from publisher.metrics import MetricsPublisher
from shared.settings import Settings
from tests.helpers import GatewayProcess


async def points(page: Any, name: str) -> int:
    return int(await page.get_attribute(f"[data-host={name}]", "data-points") or 0)


async def test_charts_open_with_history_switch_ranges_and_grow_live(redis_server, gateways, page):
    gateway = GatewayProcess.start(gateways, redis_server.url)
    metrics = MetricsPublisher(Settings.load({"redis_url": redis_server.url}), host="box-z")
    now = time.time()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        for depth in (3, 5, 8):
            batch = {"samples": [{"metric": "queue.depth", "value": depth, "unit": "jobs"}]}
            assert (await http.post("/api/metrics/billing", json=batch)).status_code == 200
        try:
            for i, cpu in enumerate((10.0, 20.0, 30.0, 40.0)):
                # four samples a minute apart: four raw points, and buckets for the day
                await metrics.publish({"time": now - 240 + 60 * i, "cpu": {"percent": cpu}})

            await page.goto(f"{gateway.url}/?hosts=box-z&projects=shop")
            await page.wait_for_selector("#connection[data-state=connected]")
            # No new sample since the page opened: what the charts hold is history.
            await page.wait_for_function(
                "document.querySelector('[data-host=billing]')?.dataset.points === '3'",
                timeout=15_000,
            )
            await page.wait_for_function(
                "document.querySelector('[data-host=box-z]')?.dataset.points === '4'",
                timeout=15_000,
            )
            source = page.locator("[data-host=billing][data-kind=source]")
            title = source.locator(".chart-title span").first
            assert await title.inner_text() == "queue.depth (jobs)"
            assert await source.locator(".legend").inner_text() == "8 jobs"
            await page.locator("[data-host=box-z] .chart[data-chart=cpu] canvas").wait_for()

            await page.click("#metrics-ranges button[data-range='1d']")
            await page.wait_for_selector("[data-host=box-z][data-range='1d']", timeout=15_000)
            assert 1 <= await points(page, "box-z") <= 5  # minute buckets now
            assert await page.inner_text("#metrics-window") == "last 1d"
            await page.click("#metrics-ranges button[data-range='30d']")
            await page.wait_for_selector("[data-host=billing][data-range='30d']", timeout=15_000)
            assert await points(page, "billing") == 1  # one 15-minute bucket

            await page.click("#metrics-ranges button[data-range='1h']")
            await page.wait_for_selector("[data-host=billing][data-range='1h']", timeout=15_000)
            batch = {"samples": [{"metric": "queue.depth", "value": 13, "unit": "jobs"}]}
            assert (await http.post("/api/metrics/billing", json=batch)).status_code == 200
            await page.wait_for_function(
                "document.querySelector('[data-host=billing]').dataset.points === '4'",
                timeout=15_000,
            )
            assert await source.locator(".legend").inner_text() == "13 jobs"
        finally:
            await metrics.close()
