"""Notifications over the HTTP API of a real gateway: created, listed, counted, marked read
and deleted, bounded per user in number and age; made when tasks end, for whom the rules
say; bad input gets a clear error."""

from __future__ import annotations

import asyncio
import time

import httpx
import msgspec
import redis.asyncio as aioredis

from gateway.client import Client, Message
from shared.settings import Settings
from shared.state.notification_store import NotificationStore
from shared.state.notifications import (
    NewNotification,
    NotificationCreated,
    NotificationDeleted,
    NotificationRead,
)
from tests.helpers import GatewayProcess, open_ws, recv_json, subscribe, wait_until

KEY = "k3y-for-tests-only"
AUTH = {"Authorization": f"Bearer {KEY}"}


def start(redis_server, gateways, **settings):  # type: ignore[no-untyped-def]
    return GatewayProcess.start(gateways, redis_server.url, api_key=KEY, **settings)


async def test_a_users_notifications_are_kept_counted_read_and_deleted(redis_server, gateways):
    gateway = start(redis_server, gateways, notify_keep=3)
    ws = await open_ws(gateway.ws_url)
    await subscribe(ws, "notifications.dana")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10, headers=AUTH) as http:
        ids = []
        for n in range(4):
            body = {"user": "dana", "title": f"n{n}", "priority": "low", "type": "progress"}
            created = await http.post("/api/notifications", json=body)
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
            frame = await recv_json(ws)
            assert frame["data"]["notification"]["title"] == f"n{n}"
        users = "/api/notifications/users/dana"
        listed = (await http.get(users)).json()
        assert [n["title"] for n in listed["notifications"]] == ["n3", "n2", "n1"]  # bounded
        assert listed["unread"] == 3
        assert (await http.get(users + "/unread")).json() == {"user": "dana", "unread": 3}

        assert (await http.post(f"{users}/{ids[0]}/read")).status_code == 404  # dropped
        assert (await http.post(f"{users}/{ids[2]}/read")).json()["unread"] == 2
        assert (await recv_json(ws))["data"] == {
            "type": "notification.read", "id": ids[2], "unread": 2
        }  # fmt: skip
        unread = (await http.get(users, params={"unread": "1"})).json()["notifications"]
        assert [n["title"] for n in unread] == ["n3", "n1"]
        assert (await http.delete(f"{users}/{ids[3]}")).json()["unread"] == 1
        assert (await recv_json(ws))["data"]["type"] == "notification.deleted"
        assert (await http.post(users + "/read")).json()["unread"] == 0
        assert (await recv_json(ws))["data"] == {"type": "notification.read", "unread": 0}
        assert [n["read"] for n in (await http.get(users)).json()["notifications"]] == [True] * 2
        assert (await http.delete(f"{users}/{ids[3]}")).status_code == 404
    await ws.close()


async def test_notifications_past_the_age_limit_are_not_listed_nor_counted_and_then_go(
    redis_server, gateways
):
    gateway = start(redis_server, gateways, notify_age=3600)
    redis = aioredis.Redis.from_url(redis_server.url)
    store = NotificationStore(redis, Settings.load({"redis_url": redis_server.url}))
    now = time.time()  # created with their times in the past: no waiting for them to age
    old = await store.create(NewNotification(user="erin", title="old"), now=now - 7200)
    kept = await store.create(NewNotification(user="erin", title="kept"), now=now - 600)
    base = "rc:{notifications.erin}"
    users = "/api/notifications/users/erin"
    try:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10, headers=AUTH) as http:
            listed = (await http.get(users)).json()
            assert [n["title"] for n in listed["notifications"]] == ["kept"]
            assert listed["unread"] == 1
            unread = (await http.get(users, params={"unread": "1"})).json()["notifications"]
            assert [n["id"] for n in unread] == [kept.id]
            assert await redis.hlen(f"{base}:items") == 2  # unseen, but not written yet

            assert (await http.post(f"{users}/{old.id}/read")).status_code == 404
            assert await redis.hkeys(f"{base}:items") == [kept.id.encode()]  # that write
            assert await redis.zrange(f"{base}:order", 0, -1) == [kept.id.encode()]
            assert await redis.smembers(f"{base}:unread") == {kept.id.encode()}

            stale = await store.create(NewNotification(user="erin", title="s"), now=now - 7200)
            assert stale.id.encode() in await redis.hkeys(f"{base}:items")
            body = {"user": "erin", "title": "fresh"}
            created = await http.post("/api/notifications", json=body)
            assert created.status_code == 201, created.text
            ids = {kept.id, created.json()["id"]}
            assert {i.decode() for i in await redis.hkeys(f"{base}:items")} == ids  # stale gone
            assert (await http.get(users + "/unread")).json()["unread"] == 2
    finally:
        await redis.aclose()


async def test_a_users_channel_carries_events_that_decode_into_their_structs(
    redis_server, gateways
):
    gateway = GatewayProcess.start(gateways, redis_server.url)
    redis = aioredis.Redis.from_url(redis_server.url)
    store = NotificationStore(redis, Settings.load({"redis_url": redis_server.url}))
    async with Client(gateway.ws_url, ["notifications.ivan"]) as client:
        await wait_until(lambda: len(client.positions) == 1, 10, "the subscription")
        first = await store.create(NewNotification(user="ivan", title="a", project="p"))
        second = await store.create(NewNotification(user="ivan", title="b", link="/b"))
        await store.mark_read("ivan", first.id)
        await store.delete("ivan", second.id)
        await store.mark_read("ivan")
        got: list[Message] = []
        async with asyncio.timeout(15):
            async for event in client:
                if isinstance(event, Message):
                    got.append(event)
                    if len(got) == 5:
                        break
    await redis.aclose()
    assert [m.event for m in got] == [
        NotificationCreated(unread=1, notification=first),
        NotificationCreated(unread=2, notification=second),
        NotificationRead(unread=1, id=first.id),
        NotificationDeleted(id=second.id, unread=0),
        NotificationRead(unread=0),
    ]
    for message in got:  # every field the script writes, and no other
        assert msgspec.to_builtins(message.event) == message.data


async def test_a_tasks_end_notifies_whom_its_rules_name(redis_server, gateways):
    gateway = start(redis_server, gateways)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10, headers=AUTH) as http:

        async def finish(task_id: str, action: str, owner: str | None = "erin") -> None:
            body = {"project": "ml", "id": task_id, "owner": owner}
            assert (await http.post("/api/tasks", json=body)).status_code == 201
            assert (await http.post(f"/api/tasks/ml/{task_id}/start")).status_code == 200
            extra = {"error": "out of memory"} if action == "fail" else {}
            assert (await http.post(f"/api/tasks/ml/{task_id}/{action}", json=extra)).is_success

        async def titles(user: str) -> list[str]:
            reply = await http.get(f"/api/notifications/users/{user}")
            return [n["title"] for n in reply.json()["notifications"]]

        # Default: the owner, on completion and failure (not cancellation).
        await finish("a", "complete")
        await finish("b", "fail")
        await finish("c", "cancel")
        await finish("d", "complete", owner=None)
        assert await titles("erin") == ["b failed", "a completed"]
        note = (await http.get("/api/notifications/users/erin")).json()["notifications"][0]
        assert (note["type"], note["priority"], note["body"]) == ("error", "high", "out of memory")
        assert note["link"] == "/api/tasks/ml/b" and note["task_id"] == "b"

        # A project's rule, and one task's rule over it.
        rule = {"users": ["frank", "gina"], "on": ["cancelled", "failed"]}
        assert (await http.put("/api/notifications/projects/ml/rule", json=rule)).is_success
        assert (await http.get("/api/notifications/projects/ml/rule")).json()["users"] == [
            "frank", "gina"
        ]  # fmt: skip
        only = {"users": ["hal"], "on": ["completed"], "priority": "urgent"}
        put = await http.put("/api/notifications/projects/ml/tasks/g/rule", json=only)
        assert put.is_success, put.text
        await finish("e", "complete")
        await finish("f", "cancel")
        await finish("g", "complete")
        assert await titles("frank") == await titles("gina") == ["f cancelled"]
        assert await titles("hal") == ["g completed"]
        assert await titles("erin") == ["b failed", "a completed"]


async def test_bad_notification_input_gets_a_clear_error(redis_server, gateways):
    gateway = start(redis_server, gateways)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10, headers=AUTH) as http:
        post = "/api/notifications"
        for body, status, code, words in [
            ({"user": "a", "title": "t", "type": "shout"}, 422, "invalid_body", "type"),
            ({"user": "a", "title": "t", "priority": "asap"}, 422, "invalid_body", "priority"),
            ({"user": "a/b", "title": "t"}, 422, "invalid_notification", "invalid user"),
            ({"user": "a", "title": ""}, 422, "invalid_notification", "title"),
            ({"user": "a", "title": "t", "body": "x" * 5000}, 422, "invalid_notification", "body"),
            ({"user": "a", "title": "t", "task_id": "x"}, 422, "invalid_notification", "project"),
            ({"user": "a", "title": "t", "project": "no spaces"}, 422, "invalid_notification",
             "project"),
            ({"title": "t"}, 422, "invalid_body", "user"),
        ]:  # fmt: skip
            reply = await http.post(post, json=body)
            assert reply.status_code == status, (body, reply.text)
            error = reply.json()["error"]
            assert error["code"] == code and words in error["message"], (body, error)
        reply = await http.post(post, content=b"{nope")
        assert (reply.status_code, reply.json()["error"]["code"]) == (400, "not_json")
        reply = await http.get("/api/notifications/users/bad%20user")
        assert reply.status_code == 422
        assert (await http.get("/api/notifications/users/a?limit=0")).status_code == 422
        reply = await http.put("/api/notifications/projects/ml/rule", json={"on": ["exploded"]})
        assert reply.status_code == 422
        sinks = "/api/notifications/projects/ml/sinks"
        for sink, words in [
            ({"name": "x", "kind": "webhook", "url": "gopher://127.0.0.1/"}, "http://"),
            ({"name": "x", "kind": "webhook", "url": "http://127.0.0.1:6379/"}, "not an allowed"),
            ({"name": "x", "kind": "webhook", "url": "http://169.254.169.254/"}, "not an allowed"),
            ({"name": "x", "kind": "webhook"}, "needs a url"),
            ({"name": "x", "kind": "email", "to": []}, "addresses"),
        ]:
            reply = await http.put(sinks, json={"sinks": [sink]})
            assert reply.status_code == 422, (sink, reply.text)
            assert words in reply.json()["error"]["message"], (sink, reply.json())
        assert (await http.get(sinks)).json() == {"sinks": []}
        hook = {"name": "ops", "kind": "webhook", "url": "https://1.1.1.1/hook", "secret": "s"}
        reply = await http.put(sinks, json={"sinks": [hook]})
        assert reply.json()["sinks"][0]["secret"] == "***"  # kept, never shown again
        document = (await http.get("/api/openapi.json")).json()
        assert "/api/notifications/users/{user}/{id}/read" in document["paths"]
        assert "NewNotification" in document["components"]["schemas"]


async def test_a_projects_deliveries_are_queryable_over_the_api(redis_server, gateways):
    gateway = start(redis_server, gateways, notify_destinations="127.0.0.1")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10, headers=AUTH) as http:
        hook = {"name": "hook", "kind": "webhook", "url": "http://127.0.0.1:9/hook"}
        mail = {"name": "mail", "kind": "email", "to": ["ops@example.com"]}
        reply = await http.put(
            "/api/notifications/projects/etl/sinks", json={"sinks": [hook, mail]}
        )
        assert reply.status_code == 200, reply.text
        body = {"user": "ivy", "title": "Load done", "project": "etl", "task_id": "load-1"}
        note = (await http.post("/api/notifications", json=body)).json()
        reply = await http.get("/api/notifications/projects/etl/deliveries")
        deliveries = {d["sink"]: d for d in reply.json()["deliveries"]}
        # Queued for relaycast notify (none runs here): recorded, pending, nothing waited for.
        assert {s: (d["status"], d["attempts"]) for s, d in deliveries.items()} == {
            "hook": ("pending", 0), "mail": ("pending", 0)
        }  # fmt: skip
        assert deliveries["hook"]["notification_id"] == note["id"]
        assert (
            await http.get("/api/notifications/projects/etl/deliveries?limit=x")
        ).status_code == 422
