"""Task progress: every change an event, in order, on any gateway; state for late comers."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest
import redis

from publisher.tasks import Tasks
from shared.settings import Settings
from shared.state.tasks import InvalidTask, InvalidTransition, TaskExists, UnknownTask
from tests.helpers import GatewayProcess, open_ws, recv_json, subscribe


def redis_event(fields: dict[bytes, bytes]) -> dict[str, Any]:
    return json.loads(fields[b"d"])  # type: ignore[no-any-return]


def channel_offset(url: str, channel: str) -> int:
    with redis.Redis.from_url(url) as client:
        return int(client.hget(f"rc:{{{channel}}}:m", "o") or 0)


async def messages(ws, count: int, timeout: float = 10) -> dict[str, list[dict[str, Any]]]:
    """The next ``count`` messages, by channel."""
    got: dict[str, list[dict[str, Any]]] = {}
    for _ in range(count):
        frame = await recv_json(ws, timeout)
        assert frame["type"] == "message", frame
        got.setdefault(frame["channel"], []).append(frame)
    return got


async def test_a_task_is_seen_event_by_event_in_order_on_another_gateway(redis_server, gateways):
    GatewayProcess.start(gateways, redis_server.url)  # the gateway a dashboard might not use
    second = GatewayProcess.start(gateways, redis_server.url)
    ws = await open_ws(second.ws_url)
    await subscribe(ws, "tasks.billing")
    await subscribe(ws, "tasks.billing.export-7")

    async with Tasks(redis_server.url) as tasks:
        task = await tasks.create(
            "billing", "Export invoices", id="export-7", total_steps=4, metadata={"region": "eu"}
        )
        await task.start("warming up")
        await task.progress(step=1, step_name="Jan")
        await task.log("Jan: 812 invoices", "debug")
        await task.progress(step=2, step_name="Feb")
        await task.pause("ledger locked")
        await task.resume()
        await task.progress(75.5, message="nearly there")
        await task.complete({"invoices": 3100})

    expected = [
        "task.queued",
        "task.started",
        "task.progress",
        "task.log",
        "task.progress",
        "task.paused",
        "task.resumed",
        "task.progress",
        "task.completed",
    ]
    got = await messages(ws, 2 * len(expected))
    for channel in ("tasks.billing", "tasks.billing.export-7"):
        frames = got[channel]
        assert [f["data"]["type"] for f in frames] == expected
        assert [f["offset"] for f in frames] == list(range(1, len(expected) + 1))
    events = [f["data"] for f in got["tasks.billing.export-7"]]
    assert all(e["project"] == "billing" and e["id"] == "export-7" for e in events)
    assert [e["task"]["percent"] for e in events if "task" in e] == [
        0,
        0,
        25,
        50,
        50,
        50,
        75.5,
        100,
    ]
    assert events[2]["task"]["step_name"] == "Jan"
    assert events[3] == {
        "type": "task.log",
        "time": events[3]["time"],
        "project": "billing",
        "id": "export-7",
        "level": "debug",
        "message": "Jan: 812 invoices",
    }
    done = events[-1]["task"]
    assert done["status"] == "completed" and done["result"] == {"invoices": 3100}
    assert done["metadata"] == {"region": "eu"} and done["step"] == 4
    assert done["started_at"] <= done["finished_at"] and done["eta_seconds"] == 0
    assert events[-2]["task"]["eta_seconds"] is not None  # from the observed rate
    await ws.close()


async def test_late_subscribers_see_where_a_task_stands(redis_server, gateways):
    gateway = GatewayProcess.start(gateways, redis_server.url)
    async with Tasks(redis_server.url) as tasks:
        task = await tasks.create("media", "Transcode keynote.mov", id="tc-1")
        await task.start()
        await task.progress(40, step_name="encoding")

        ws = await open_ws(gateway.ws_url)
        await subscribe(ws, "tasks.media.tc-1@state")
        now = (await recv_json(ws, timeout=2))["data"]  # at once
        assert now["status"] == "running" and now["percent"] == 40
        assert now["step_name"] == "encoding" and now["id"] == "tc-1"
        await task.progress(90)
        assert (await recv_json(ws))["data"]["percent"] == 90
        await task.complete()
        await ws.close()

        workflow = await tasks.create_workflow(
            "web", "Deploy v2", id="deploy-2", phases=["build", ("rollout", 3)]
        )
        await workflow.start()
        async with workflow.phase("build") as build:
            await build.progress(50)

    late = await open_ws(gateway.ws_url)
    await subscribe(late, "tasks.media.tc-1@state")
    finished = (await recv_json(late, timeout=2))["data"]
    assert finished["status"] == "completed" and finished["percent"] == 100
    await subscribe(late, "tasks.web.deploy-2@state")
    running = (await recv_json(late, timeout=2))["data"]
    assert running["kind"] == "workflow" and running["status"] == "running"
    assert running["percent"] == 25  # build done (weight 1) of 4
    assert [(p["name"], p["status"]) for p in running["phases"]] == [
        ("build", "completed"),
        ("rollout", "queued"),
    ]
    await late.close()


async def test_a_workflow_reports_its_phases_and_fails_with_the_phase_that_failed(
    redis_server,
):
    async with Tasks(redis_server.url) as tasks:
        with pytest.raises(RuntimeError, match="tests failed"):
            async with tasks.run_workflow(
                "web", "Deploy v3", id="deploy-3", phases=["build", "test", "rollout"]
            ) as workflow:
                async with workflow.phase("build") as build:
                    await build.progress(step=2, total_steps=2)
                async with workflow.phase("test") as test:
                    await test.progress(30)
                    await test.log("3 failures", "error")
                    raise RuntimeError("tests failed")
        state = (await tasks.get("web", "deploy-3")).state
    assert state.status == "failed" and state.error == "RuntimeError: tests failed"
    assert [(p.name, p.status) for p in state.phases] == [
        ("build", "completed"),
        ("test", "failed"),
        ("rollout", "failed"),
    ]
    with redis.Redis.from_url(redis_server.url) as client:
        stream = client.xrange("rc:{tasks.web.deploy-3}:s")
    types = [redis_event(fields)["type"] for _, fields in stream]
    assert types == [
        "workflow.queued",
        "workflow.started",
        "workflow.phase_started",
        "workflow.progress",
        "workflow.phase_completed",
        "workflow.phase_started",
        "workflow.progress",
        "workflow.log",
        "workflow.phase_failed",
        "workflow.failed",
    ]


async def test_the_context_manager_completes_the_task_or_fails_it(redis_server):
    async with Tasks(redis_server.url) as tasks:
        async with tasks.run("ops", "Rotate keys", id="rotate-1") as task:
            await task.progress(50)
        assert task.state.status == "completed"
        with pytest.raises(KeyError):
            async with tasks.run("ops", "Rotate keys", id="rotate-2") as task:
                raise KeyError("vault")
        assert task.state.status == "failed" and task.state.error == "KeyError: 'vault'"
        assert (await tasks.get("ops", "rotate-2")).state.status == "failed"


async def test_every_invalid_call_fails_clearly_and_publishes_nothing(redis_server):
    async with Tasks(redis_server.url) as tasks:
        task = await tasks.create("qa", "Checks", id="checks-1", total_steps=3)
        wf = await tasks.create_workflow("qa", "Release", id="release-1", phases=["a", "b"])
        before = channel_offset(redis_server.url, "tasks.qa")

        async def refused(call: Any, error: type[Exception], message: str) -> None:
            with pytest.raises(error, match=message):
                await call
            assert channel_offset(redis_server.url, "tasks.qa") == before, "published anyway"

        await refused(task.progress(10), InvalidTransition, "is queued; cannot report progress")
        await task.start()
        before += 1
        await refused(task.progress(150), InvalidTask, r"percent must be a number in 0-100")
        await refused(task.progress(-1), InvalidTask, "percent must be")
        await refused(task.progress(math.nan), InvalidTask, "percent must be")
        await refused(task.progress(step=4), InvalidTask, "step 4 is past total_steps 3")
        await refused(task.progress(), InvalidTask, "needs percent and/or step")
        await refused(task.log("x", "loud"), InvalidTask, "log level must be one of")
        await refused(task.resume(), InvalidTransition, "only a paused task resumes")
        await refused(task.complete(result=object()), InvalidTask, "not JSON-encodable")
        await refused(
            task.progress(5, message="x" * 5000), InvalidTask, "message is 5000 characters"
        )
        await refused(tasks.create("qa", id="checks-1"), TaskExists, "already exists")
        await refused(tasks.create("q a"), InvalidTask, "invalid project 'q a'")
        await refused(tasks.create("qa", id="a.b"), InvalidTask, "invalid task id 'a.b'")
        await refused(tasks.create_workflow("qa", phases=["x", "x"]), InvalidTask, "listed twice")
        await refused(tasks.get("qa", "nope"), UnknownTask, "no task 'nope' in project 'qa'")
        await refused(wf.phase("a").start(), InvalidTransition, "workflow 'release-1' is queued")
        await wf.start()
        before += 1
        await refused(wf.phase("z").start(), InvalidTask, "has no phase 'z'")
        await refused(wf.complete(), InvalidTransition, "phase 'a' is queued")
        with pytest.raises(TypeError, match="progress comes from its phases"):
            await wf.progress(10)

        await task.complete()
        before += 1
        await refused(task.progress(50), InvalidTransition, "has finished .completed.")
        await refused(task.log("late"), InvalidTransition, "has finished")
        await refused(task.cancel(), InvalidTransition, "has finished")


async def test_concurrent_writers_of_one_task_each_land_once_in_order(redis_server):
    async with Tasks(redis_server.url) as one, Tasks(redis_server.url) as other:
        task = await one.create("load", "Crawl", id="crawl-1")
        await task.start()
        twin = await other.get("load", "crawl-1")
        await asyncio.gather(
            *((task if n % 2 else twin).progress(n * 2.5, message=str(n)) for n in range(1, 41))
        )
        state = (await one.get("load", "crawl-1")).state
    assert state.version == 2 + 40  # created, started, and every progress once
    with redis.Redis.from_url(redis_server.url) as client:
        stream = client.xrange("rc:{tasks.load.crawl-1}:s")
    events = [redis_event(fields) for _, fields in stream]
    assert len(events) == 42
    assert [e["task"]["version"] for e in events] == list(range(1, 43))


async def test_task_state_expires_after_its_ttl(redis_server):
    settings = Settings.load({"redis_url": redis_server.url, "task_ttl": 1})
    async with Tasks(settings=settings) as tasks:
        await tasks.create("tmp", "Short-lived", id="t1")
        assert [t.id for t in await tasks.store.project_tasks("tmp")] == ["t1"]
        await asyncio.sleep(1.3)
        with pytest.raises(UnknownTask):
            await tasks.get("tmp", "t1")
        await tasks.create("tmp", "Again", id="t1")  # the id is free again
        assert [t.name for t in await tasks.store.project_tasks("tmp")] == ["Again"]
        await asyncio.sleep(1.3)
        assert await tasks.store.project_tasks("tmp") == []
