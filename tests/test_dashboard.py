"""gateway/dashboard.py: the page, the browser client's files (at their new and their old
URLs), and the config that tells the dashboard which gateways may have its token.

The app is called in process (httpx's ASGI transport); none of these routes needs the
broker, so the lifespan does not run."""

from __future__ import annotations

import httpx
import pytest

from gateway.app import create_app
from gateway.dashboard import SDK_FILES
from shared.settings import Settings, SettingsError


def client_for(**settings: str) -> httpx.AsyncClient:
    app = create_app(Settings.load({"redis_url": "memory://", "mode": "development", **settings}))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


async def test_the_dashboard_and_the_client_are_served() -> None:
    async with client_for() as client:
        page = await client.get("/")
        assert page.status_code == 200 and "/static/dashboard/main.js" in page.text
        for name in ("relaycast.js", "base.js", "link.js", "websocket.js", "sse.js", "poll.js"):
            script = await client.get(f"/static/sdk/{name}")
            assert script.status_code == 200, name
            assert "javascript" in script.headers["content-type"], name


async def test_the_clients_old_urls_redirect_into_sdk() -> None:
    async with client_for() as client:
        for name in SDK_FILES:
            response = await client.get(f"/static/{name}")
            assert response.status_code == 308, name
            assert response.headers["location"] == f"/static/sdk/{name}"
            assert (await client.get(response.headers["location"])).status_code == 200, name


async def test_the_dashboard_may_connect_only_to_its_own_gateway_by_default() -> None:
    async with client_for() as client:
        assert (await client.get("/dashboard/config")).json() == {"gateways": []}


async def test_the_dashboard_config_lists_the_gateways_the_operator_named() -> None:
    named = " https://RT-2.example.com/ , http://10.0.0.7:8000"
    async with client_for(dashboard_gateways=named) as client:
        body = (await client.get("/dashboard/config")).json()
    assert body == {"gateways": ["https://rt-2.example.com", "http://10.0.0.7:8000"]}


@pytest.mark.parametrize(
    "entry", ["rt-2.example.com", "ftp://rt-2.example.com", "https://rt.example.com/ws", "*"]
)
def test_a_dashboard_gateway_that_is_not_an_origin_is_refused(entry: str) -> None:
    with pytest.raises(SettingsError, match="DASHBOARD_GATEWAYS"):
        Settings.load({"dashboard_gateways": entry})
