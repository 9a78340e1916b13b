"""relaycast.js in headless Chromium against real gateways: the same resume rules on every
transport, and a silent gateway left for another without losing a message."""

from __future__ import annotations

import json
import signal
import time

import jwt

from publisher import Publisher
from shared.settings import Settings
from tests.browser.pages import wait_for_js
from tests.helpers import GatewayProcess

SHORT_HISTORY = json.dumps([{"pattern": "short.*", "history_size": 3}])

# Creates window.clients[name] = {rc, log}: a client with its states, messages and
# subscribed events recorded, subscribed to `channels` (from `since` where given).
START = """
async ({ name, options, channels, since }) => {
  const { Relaycast } = await import("/static/sdk/relaycast.js");
  const log = { states: [], messages: [], subscribed: {}, gateways: [] };
  const rc = new Relaycast(options);
  rc.on("state", (s) => log.states.push(s.state + (s.attempt ? ":" + s.attempt : "")));
  rc.on("gateway", (id) => log.gateways.push(id));
  window.follow = (rc, log, channel, since) => rc.subscribe(channel, {
    message: (data, meta) => log.messages.push([meta.channel, meta.offset, data.n]),
    subscribed: (info) => (log.subscribed[info.channel] = info),
  }, since ? { since } : {});
  for (const channel of channels) follow(rc, log, channel, since && since[channel]);
  (window.clients = window.clients || {})[name] = { rc, log };
}
"""


def gateway_id(gateway: GatewayProcess) -> str:
    return json.loads(gateway.get("/gateway")[1])["gateway"]  # type: ignore[no-any-return]


async def test_every_transport_resumes_alike_and_says_when_history_is_gone(
    redis_server, gateways, page
):
    gw = GatewayProcess.start(gateways, redis_server.url, namespaces=SHORT_HISTORY)
    settings = Settings.load({"redis_url": redis_server.url, "namespaces": SHORT_HISTORY})
    with Publisher(settings=settings) as pub:
        short = [pub.publish("short.js", {"n": n}) for n in range(1, 9)]  # keeps 6..8
        keep = [pub.publish("tasks.keep", {"n": n}) for n in range(1, 4)]
        since = {
            "short.js": {"offset": 1, "epoch": short[0].epoch},
            "tasks.keep": {"offset": 1, "epoch": keep[0].epoch},
        }
        await page.goto(gw.url + "/gateway")
        kinds = ["websocket", "sse", "poll"]
        for kind in kinds:
            options = {"transports": [kind], "pingInterval": 0}
            await page.evaluate(
                START,
                {"name": kind, "options": options, "channels": list(since), "since": since},
            )
        every = "Object.values(clients).every((c) => {})"
        await wait_for_js(page, every.format("Object.keys(c.log.subscribed).length === 2"))
        await wait_for_js(page, every.format("c.log.messages.length === 2"))
        pub.publish("short.js", {"n": 9})
        await wait_for_js(page, every.format("c.log.messages.length === 3"))
        # A channel added later: the HTTP transports reopen their request to include it.
        await page.evaluate(
            "Object.values(clients).forEach((c) => follow(c.rc, c.log, 'tasks.new'))"
        )
        await wait_for_js(page, every.format("c.log.subscribed['tasks.new']"))
        pub.publish("tasks.new", {"n": 1})
        await wait_for_js(page, every.format("c.log.messages.length === 4"))
    for kind in kinds:
        client = await page.evaluate(
            "(kind) => ({ log: clients[kind].log, transport: clients[kind].rc.transport })", kind
        )
        log = client["log"]
        assert client["transport"] == kind
        gone, kept = log["subscribed"]["short.js"], log["subscribed"]["tasks.keep"]
        assert (gone["recovered"], gone["offset"]) == (False, 8), kind
        assert (kept["recovered"], kept["replayed"]) == (True, 2), kind
        assert log["messages"] == [
            ["tasks.keep", 2, 2],
            ["tasks.keep", 3, 3],
            ["short.js", 9, 9],
            ["tasks.new", 1, 1],
        ], kind


async def test_client_leaves_a_silent_gateway_and_resumes_on_another(redis_server, gateways, page):
    a = GatewayProcess.start(gateways, redis_server.url, heartbeat_interval=0.5)
    b = GatewayProcess.start(gateways, redis_server.url, heartbeat_interval=0.5)
    await page.goto(a.url + "/gateway")
    options = {"urls": [a.url, b.url], "heartbeatTimeout": 2000, "backoffBase": 100}
    await page.evaluate(
        START, {"name": "c", "options": options, "channels": ["tasks.silent"], "since": None}
    )
    await wait_for_js(page, "clients.c.log.subscribed['tasks.silent']")
    with Publisher(redis_server.url) as pub:
        for n in (1, 2):
            pub.publish("tasks.silent", {"n": n})
        await wait_for_js(page, "clients.c.log.messages.length === 2")
        a.signal(signal.SIGSTOP)  # alive to TCP, silent to the client
        try:
            for n in (3, 4, 5):
                pub.publish("tasks.silent", {"n": n})
            await wait_for_js(page, "clients.c.log.messages.length === 5", timeout=20)
            log = await page.evaluate("clients.c.log")
            state = await page.evaluate(
                "({ url: clients.c.rc.url, gateway: clients.c.rc.gateway })"
            )
        finally:
            a.signal(signal.SIGCONT)
    assert log["messages"] == [["tasks.silent", n, n] for n in range(1, 6)]
    assert log["states"][:2] == ["connecting", "connected"]
    assert "reconnecting:1" in log["states"] and log["states"][-1] == "connected"
    assert state == {"url": b.url, "gateway": gateway_id(b)}
    assert log["subscribed"]["tasks.silent"]["recovered"] is True


SECRET = "s" * 40
# Each client reads tasks.secure with a token: given as a string, or by a function (the
# shared client asks its tab for it); one client has none and is told so. It imports the
# client by the URLs it had before it moved into /static/sdk/, which redirect there.
AUTH = """
async ({ token }) => {
  const { Relaycast } = await import("/static/relaycast.js");
  const { SharedRelaycast } = await import("/static/relaycast-shared.js");
  window.got = {};
  const make = {
    websocket: () => new Relaycast({ transports: ["websocket"], token }),
    sse: () => new Relaycast({ transports: ["sse"], token: () => token }),
    poll: () => new Relaycast({ transports: ["poll"], token: async () => token }),
    shared: () => new SharedRelaycast({ token: () => token }),
    anonymous: () => new Relaycast({ transports: ["websocket"] }),
  };
  for (const [name, create] of Object.entries(make)) {
    const log = (got[name] = { messages: [], errors: [] });
    create().subscribe("tasks.secure", {
      message: (data) => log.messages.push(data.n),
      subscribed: () => (log.subscribed = true),
      error: (frame) => log.errors.push(frame.code),
    });
  }
}
"""


async def test_a_token_opens_every_transport_to_a_production_gateway(redis_server, gateways, page):
    gw = GatewayProcess.start(
        gateways, redis_server.url, mode="production", token_secret=SECRET, api_key="k" * 32
    )
    claims = {"sub": "ann", "channels": ["tasks.*"], "aud": "relaycast", "exp": time.time() + 600}
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    await page.goto(gw.url + "/gateway")
    await page.evaluate(AUTH, {"token": token})
    ready = "['websocket', 'sse', 'poll', 'shared'].every((k) => got[k].subscribed)"
    await wait_for_js(page, f"{ready} && got.anonymous.errors.length")
    with Publisher(redis_server.url) as pub:
        pub.publish("tasks.secure", {"n": 1})
    await wait_for_js(page, "Object.values(got).filter((g) => g.messages.length).length === 4")
    got = await page.evaluate("got")
    for kind in ("websocket", "sse", "poll", "shared"):
        assert got[kind] == {"messages": [1], "errors": [], "subscribed": True}, kind
    assert got["anonymous"] == {"messages": [], "errors": ["unauthorized"]}
