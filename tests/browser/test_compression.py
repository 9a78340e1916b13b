"""Headless Chromium negotiates permessage-deflate and reads the shared compressed frames,
through a bare ``WebSocket`` and through relaycast.js."""

from __future__ import annotations

import json
import re

from publisher import Publisher
from shared.settings import Settings
from tests.browser.pages import wait_for_js
from tests.helpers import GatewayProcess

LARGE = {"rows": [{"id": i, "name": f"row-{i}", "ok": i % 3 == 0} for i in range(200)]}
SMALL = {"n": 1}

OPEN = """
async (url) => {
  const { Relaycast } = await import("/static/sdk/relaycast.js");
  window.got = { bare: [], sdk: [] };
  const rc = new Relaycast({ transports: ["websocket"], pingInterval: 0 });
  rc.subscribe("zip.browser", {
    message: (data) => got.sdk.push(data),
    subscribed: () => (window.sdkSubscribed = true),
  });
  const ws = new WebSocket(url);
  await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = fail; });
  ws.onmessage = (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type === "message") got.bare.push(frame.data);
    if (frame.type === "subscribed") window.subscribed = true;
  };
  ws.send(JSON.stringify({ type: "subscribe", channel: "zip.browser" }));
  return ws.extensions;
}
"""


def bytes_sent(gateway: GatewayProcess) -> float:
    match = re.search(r"^relaycast_bytes_sent_total (\S+)$", gateway.get("/metrics")[1], re.M)
    assert match, "relaycast_bytes_sent_total not in /metrics"
    return float(match.group(1))


async def test_chromium_reads_compressed_messages(redis_server, gateways, page):
    gateway = GatewayProcess.start(gateways, redis_server.url)
    await page.goto(gateway.url + "/gateway")
    extensions = await page.evaluate(OPEN, gateway.ws_url)
    assert "permessage-deflate" in extensions and "server_no_context_takeover" in extensions
    await wait_for_js(page, "window.subscribed && window.sdkSubscribed")
    with Publisher(settings=Settings.load({"redis_url": redis_server.url})) as publisher:
        before = bytes_sent(gateway)
        publisher.publish("zip.browser", LARGE)
        publisher.publish("zip.browser", SMALL)
        await wait_for_js(page, "got.bare.length === 2 && got.sdk.length === 2")
    got = await page.evaluate("got")
    assert got == {"bare": [LARGE, SMALL], "sdk": [LARGE, SMALL]}
    # Two deliveries of the large message took less than one uncompressed copy of it.
    assert bytes_sent(gateway) - before < len(json.dumps(LARGE, separators=(",", ":")))
