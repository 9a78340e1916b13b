"""Asking about tasks: filtered pages, deletion, statistics, kept logs and groups, from the
Python library and over HTTP, against real Redis and a real gateway."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import pytest

from publisher.tasks import Tasks
from shared.settings import Settings
from shared.state.task_query import InvalidCursor
from shared.state.tasks import InvalidTask, UnknownTask
from tests.helpers import GatewayProcess, open_ws, recv_json, subscribe


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]  # type: ignore[no-any-return]


async def ids(http: httpx.AsyncClient, path: str, **params: Any) -> list[str]:
    """Every id the pages give, in order."""
    return [i for page in await pages(http, path, **params) for i in page]


async def pages(http: httpx.AsyncClient, path: str, **params: Any) -> list[list[str]]:
    """Ids page by page, following the cursor to the end."""
    out: list[list[str]] = []
    while True:
        response = await http.get(path, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        out.append([t["id"] for t in body["tasks"]])
        if body["cursor"] is None:
            return out
        params["cursor"] = body["cursor"]


async def test_tasks_are_filtered_paged_and_deleted_over_http(redis_server, gateways):
    gateway = GatewayProcess.start(gateways, redis_server.url)
    async with Tasks(redis_server.url) as tasks:
        for i in range(7):
            task = await tasks.create(
                "builds",
                id=f"b{i}",
                type="compile" if i % 2 else "test",
                owner="alice" if i < 5 else "bob",
                tags=["nightly"] if i in (1, 2) else [],
            )
            if i < 3:
                await task.start()
            if i == 0:
                await task.fail("broken")
        await tasks.create("docs", id="d0", owner="alice")

        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
            # alice's tasks in every project, newest first, two a page
            got = await pages(http, "/api/tasks", owner="alice", limit=2)
            assert [i for page in got for i in page] == ["d0", "b4", "b3", "b2", "b1", "b0"]
            assert all(len(page) <= 2 for page in got) and len(got) >= 3
            assert await ids(http, "/api/tasks/builds", status="running") == ["b2", "b1"]
            assert await ids(http, "/api/tasks/builds", tag="nightly", type="compile") == [
                "b1"
            ]  # fmt: skip
            assert await ids(http, "/api/tasks/builds", owner="bob", sort="created") == [
                "b6", "b5"
            ]  # fmt: skip
            hour_ago = str(time.time() - 3600)
            assert await ids(http, "/api/tasks/builds", until=hour_ago) == []
            paths = (await http.get("/api/openapi.json")).json()["paths"]
            assert {"get", "post"} <= set(paths["/api/tasks"])
            assert {"get", "delete"} <= set(paths["/api/tasks/{project}/{task_id}"])
            assert {"get", "post"} <= set(paths["/api/tasks/{project}/{task_id}/log"])
            assert "/api/task-stats/{project}" in paths
            # the library answers the same
            page = await tasks.query(project="builds", status="failed")
            assert [t.id for t in page.tasks] == ["b0"] and page.cursor is None

            # bad input: each a clear error, nothing else affected
            response = await http.get("/api/tasks", params={"stauts": "failed"})
            assert response.status_code == 400
            assert error_of(response)["code"] == "unknown_parameter"
            assert "status" in error_of(response)["message"]
            for cursor in ("not-a-cursor!", base64.urlsafe_b64encode(b'["x", 1]').decode()):
                response = await http.get("/api/tasks/builds", params={"cursor": cursor})
                assert response.status_code == 400, response.text
                assert error_of(response)["code"] == "invalid_cursor"
            response = await http.get("/api/tasks", params={"status": "done"})
            assert response.status_code == 422 and "queued" in error_of(response)["message"]
            log = gateway.log_text()
            assert "GET /api/tasks refused: unknown query parameter 'stauts'" in log
            with pytest.raises(InvalidCursor):
                await tasks.query(cursor="%%%")

            # delete: state, index entries and log go; the project's channel says so
            ws = await open_ws(gateway.ws_url)
            await subscribe(ws, "tasks.builds")
            await (await tasks.get("builds", "b1")).log("kept", "info")
            frame = await recv_json(ws)
            assert frame["data"]["type"] == "task.log"
            response = await http.delete("/api/tasks/builds/b1")
            assert response.status_code == 200 and response.json()["id"] == "b1"
            frame = await recv_json(ws)
            assert frame["data"]["type"] == "task.deleted" and frame["data"]["id"] == "b1"
            await ws.close()
            assert (await http.get("/api/tasks/builds/b1")).status_code == 404
            assert (await http.get("/api/tasks/builds/b1/log")).status_code == 404
            assert (await http.delete("/api/tasks/builds/b1")).status_code == 404
            assert "b1" not in await ids(http, "/api/tasks", owner="alice")
            assert [t.id for t in (await tasks.query(tag="nightly")).tasks] == ["b2"]


async def test_statistics_count_outcomes_durations_and_the_slowest(redis_server, gateways):
    gateway = GatewayProcess.start(gateways, redis_server.url)
    async with Tasks(redis_server.url) as tasks:
        for i in range(6):
            task = await tasks.create("etl", id=f"e{i}", type="load" if i < 4 else "clean")
            await task.start()
            if i == 3:
                await task.fail("disk full")
            elif i == 5:
                await task.cancel()
            else:
                await task.complete()
        await (await tasks.create("etl", id="e-running")).start()
        async with tasks.run("etl", id="e-tab", type="odd\ttype"):
            pass
        await tasks.create("other", id="o1")

        stats = await tasks.stats("etl", window="hour")
        assert stats.created == 8 and stats.running == 1
        assert stats.by_status["completed"] == 5 and stats.by_status["failed"] == 1
        assert (stats.completed, stats.failed, stats.cancelled) == (5, 1, 1)
        assert stats.success_rate == round(5 / 6, 4)
        assert "odd\ttype" in {t.type for t in stats.types}
        load = next(t for t in stats.types if t.type == "load")
        assert (load.completed, load.failed, load.success_rate) == (3, 1, 0.75)
        assert load.p50 is not None and load.p50 <= load.p90 <= load.p99  # type: ignore[operator]
        assert load.throughput_per_hour == 4.0
        assert {s.id for s in stats.slowest} == {f"e{i}" for i in range(6)} | {"e-tab"}
        durations = [s.duration for s in stats.slowest]
        assert durations == sorted(durations, reverse=True)

        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
            body = (await http.get("/api/task-stats/etl", params={"window": "week"})).json()
            assert body["completed"] == 5 and body["project"] == "etl"
            everything = (await http.get("/api/task-stats")).json()
            assert everything["created"] == 9
            old = await http.get("/api/task-stats/etl", params={"until": "1000", "since": "0"})
            assert old.status_code == 200 and old.json()["completed"] == 0
            response = await http.get("/api/task-stats/etl", params={"window": "year"})
            assert response.status_code == 422 and "hour" in error_of(response)["message"]

            # deleting a task takes it out of the statistics too
            assert (await http.delete("/api/tasks/etl/e3")).status_code == 200
            stats = await tasks.stats("etl", window="hour")
            assert (stats.completed, stats.failed, stats.success_rate) == (5, 0, 1.0)


async def test_a_task_log_is_kept_filtered_searched_paged_and_bounded(redis_server, gateways):
    gateway = GatewayProcess.start(gateways, redis_server.url)
    settings = Settings.load({"redis_url": redis_server.url, "task_log_lines": "25"})
    async with Tasks(settings=settings) as tasks:
        task = await tasks.create("ml", id="train")
        await task.start()
        levels = ["debug", "info", "warning", "error", "critical"]
        for i in range(30):
            await task.log(f"epoch {i}", levels[i % 5], epoch=i, loss=1 / (i + 1))
        page = await tasks.read_log("ml", "train", limit=10)
        assert [line.message for line in page.lines] == [f"epoch {i}" for i in range(29, 19, -1)]
        assert page.lines[0].fields == {"epoch": 29, "loss": 1 / 30}
        older = await tasks.read_log("ml", "train", limit=100, cursor=page.cursor)
        assert [line.message for line in older.lines][-1] == "epoch 5"  # 25 lines kept
        assert len(older.lines) == 15 and older.cursor is None

        with pytest.raises(InvalidTask, match="log line is 4001 characters; the limit is 4000"):
            await task.log("x" * 4001)
        with pytest.raises(InvalidTask, match="level must be one of"):
            await task.log("hm", "loud")

        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
            body = (await http.get("/api/tasks/ml/train/log", params={"level": "error"})).json()
            assert {line["level"] for line in body["lines"]} == {"error", "critical"}
            assert len(body["lines"]) == 10
            body = (await http.get("/api/tasks/ml/train/log", params={"search": "EPOCH 2"})).json()
            assert [line["message"] for line in body["lines"]] == [
                f"epoch {i}" for i in range(29, 19, -1)
            ]
            response = await http.post("/api/tasks/ml/train/log", json={"message": "y" * 5000})
            assert response.status_code == 422 and "limit is 4000" in error_of(response)["message"]
            response = await http.get("/api/tasks/ml/train/log", params={"cursor": "yesterday"})
            assert error_of(response)["code"] == "invalid_cursor"
            response = await http.get("/api/tasks/ml/train/log", params={"grep": "x"})
            assert error_of(response)["code"] == "unknown_parameter"
        # the task itself still takes changes after all that
        await task.complete()
        assert (await tasks.read_log("ml", "train", limit=1)).lines[0].message == "epoch 29"


async def test_a_group_reports_aggregate_progress_one_event_per_change(redis_server, gateways):
    gateway = GatewayProcess.start(gateways, redis_server.url)
    ws = await open_ws(gateway.ws_url)
    await subscribe(ws, "tasks.evals.group.run-1")
    async with Tasks(redis_server.url) as tasks:
        members = [await tasks.create("evals", id=f"q{i}", group="run-1") for i in range(3)]
        await members[0].start()
        await members[0].complete()
        await members[1].start()
        await members[1].fail("timeout")
        await members[2].cancel()
        states = [(await recv_json(ws))["data"] for _ in range(8)]
        assert [s["type"] for s in states] == ["group.changed"] * 8
        seen = [(s["state"]["total"], s["state"].get("current")) for s in states]
        assert seen[:5] == [(1, None), (2, None), (3, None), (3, "q0"), (3, None)]
        last = states[-1]["state"]
        assert (last["completed"], last["failed"], last["cancelled"], last["running"]) == (
            1,
            1,
            1,
            0,
        )
        group = await tasks.store.group("evals", "run-1")
        assert (group.total, group.completed, group.failed) == (3, 1, 1)
        with pytest.raises(UnknownTask):
            await tasks.store.group("evals", "run-2")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        assert (await http.get("/api/task-groups/evals/run-1")).json()["total"] == 3
    await ws.close()
