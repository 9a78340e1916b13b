"""Which gateways the dashboard connects to: a link can name any URL in ``?gateways=``, and
the dashboard carries the token kept in the browser, so it connects only to its own gateway
and to those the operator listed in RELAYCAST_DASHBOARD_GATEWAYS."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from tests.browser.recorder import recording_server
from tests.helpers import GatewayProcess

SECRET = "s" * 40
CLAIMS = {"sub": "ann", "channels": ["*"], "aud": "relaycast", "exp": time.time() + 3600}
TOKEN = jwt.encode(CLAIMS, SECRET, algorithm="HS256")


def production(**settings: Any) -> dict[str, Any]:
    """Settings of a gateway that wants tokens, such as the dashboard keeps."""
    return {"mode": "production", "token_secret": SECRET, "api_key": "k" * 32, **settings}


@pytest.mark.parametrize("transports", ["websocket", "sse,poll"])
async def test_a_link_naming_another_server_sends_it_no_token(
    redis_server, gateways, page, transports
):
    gw = GatewayProcess.start(gateways, redis_server.url, **production())
    async with recording_server() as (elsewhere, recorder):
        await page.goto(f"{gw.url}/gateway")
        await page.evaluate("(t) => localStorage.setItem('relaycast.token', t)", TOKEN)
        await page.goto(f"{gw.url}/?gateways={elsewhere}&transports={transports}&share=0")
        connected = "#connection[data-state=connected][data-gateway]"
        for _ in range(300):  # until the page connects somewhere, or the token leaks
            if leaked(recorder.seen) or await page.locator(connected).count():
                break
            await page.wait_for_timeout(50)
        await page.wait_for_timeout(500)  # time for a stray request to arrive
        assert not leaked(recorder.seen), recorder.seen
        # The page keeps to its own gateway, and says why it left the other out.
        assert await page.get_attribute("#connection", "data-gateway") != "elsewhere"
        await page.wait_for_selector(connected)
        assert elsewhere in await page.locator("#notice").inner_text()


def leaked(seen: list[str]) -> list[str]:
    """What reached the other server carrying the token, or an auth frame."""
    return [entry for entry in seen if TOKEN in entry or '"auth"' in entry]


async def test_a_gateway_the_operator_listed_receives_the_dashboards_connection(
    redis_server, gateways, page
):
    async with recording_server() as (elsewhere, recorder):
        gw = GatewayProcess.start(
            gateways, redis_server.url, **production(dashboard_gateways=elsewhere)
        )
        await page.goto(f"{gw.url}/gateway")
        await page.evaluate("(t) => localStorage.setItem('relaycast.token', t)", TOKEN)
        await page.goto(f"{gw.url}/?gateways={elsewhere}&share=0")
        await page.wait_for_selector("#connection[data-state=connected]")
        assert await page.locator("#notice").is_hidden()
        frames = [seen for seen in recorder.seen if seen.startswith("FRAME")]
        for _ in range(100):
            if frames:
                break
            await page.wait_for_timeout(50)
            frames = [seen for seen in recorder.seen if seen.startswith("FRAME")]
    assert TOKEN in frames[0] and '"auth"' in frames[0], recorder.seen
