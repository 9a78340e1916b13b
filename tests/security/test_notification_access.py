"""``notifications.<user>`` is read by a token of that user and by no other, whatever the
token's patterns say; the notification endpoints a user calls take that user's token only."""

from __future__ import annotations

import json

import httpx

from tests.helpers import open_ws, recv_json, subscribe
from tests.security.conftest import API_KEY
from tests.security.test_tokens import assert_alive

ADMIN = {"Authorization": f"Bearer {API_KEY}"}


async def authed(gateway, token: str):  # type: ignore[no-untyped-def]
    ws = await open_ws(gateway.ws_url)
    await ws.send(json.dumps({"type": "auth", "token": token}))
    assert (await recv_json(ws))["type"] == "authenticated"
    return ws


async def test_a_token_reads_its_own_notifications_and_no_one_elses(gateway, keys):
    # Mallory's patterns cover every channel: the rule is by sub, not by pattern.
    mallory = await authed(gateway, keys.token(sub="mallory", channels=["*", "notifications.*"]))
    for channel in ("notifications.alice", "notifications.alice.x", "notifications.malloryx"):
        await mallory.send(json.dumps({"type": "subscribe", "channel": channel}))
        frame = await recv_json(mallory)
        assert (frame["type"], frame["code"]) == ("error", "permission_denied"), frame
    # Alice's token names no notification pattern at all, and still reads her own.
    alice = await authed(gateway, keys.token(sub="alice", channels=["tasks.projA.*"]))
    await subscribe(alice, "notifications.alice")
    anonymous = await open_ws(gateway.ws_url)
    await anonymous.send(json.dumps({"type": "subscribe", "channel": "notifications.alice"}))
    assert (await recv_json(anonymous))["code"] == "unauthorized"

    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        body = {"user": "alice", "title": "Export done", "type": "success"}
        created = await http.post("/api/notifications", json=body, headers=ADMIN)
        assert created.status_code == 201, created.text
    frame = await recv_json(alice)
    assert frame["channel"] == "notifications.alice"
    assert frame["data"]["type"] == "notification.created"
    assert frame["data"]["notification"]["title"] == "Export done"
    assert frame["data"]["unread"] == 1
    await assert_alive(mallory)  # nothing of Alice's came to Mallory
    for ws in (alice, mallory, anonymous):
        await ws.close()


async def test_the_user_endpoints_take_that_users_token_or_the_api_key(gateway, keys):
    alice = {"Authorization": "Bearer " + keys.token(sub="bob")}
    mallory = {"Authorization": "Bearer " + keys.token(sub="mallory", channels=["*"])}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        body = {"user": "bob", "title": "Build failed", "type": "error", "priority": "high"}
        note = (await http.post("/api/notifications", json=body, headers=ADMIN)).json()
        for path in ("/api/notifications/users/bob", "/api/notifications/users/bob/unread"):
            assert (await http.get(path, headers=mallory)).status_code == 401
            assert (await http.get(path)).status_code == 401
        read = f"/api/notifications/users/bob/{note['id']}/read"
        assert (await http.post(read, headers=mallory)).status_code == 401
        # a user's token may not create notifications: that takes the API key
        assert (await http.post("/api/notifications", json=body, headers=alice)).status_code == 401

        listed = (await http.get("/api/notifications/users/bob", headers=alice)).json()
        assert listed["unread"] == 1 and listed["notifications"][0]["id"] == note["id"]
        assert (await http.post(read, headers=alice)).json() == {"user": "bob", "unread": 0}
        listed = (await http.get("/api/notifications/users/bob", headers=ADMIN)).json()
        assert listed["notifications"][0]["read"] is True
