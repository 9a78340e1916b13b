"""``relaycast gateway --workers N`` (gateway/workers.py): N gateways on one port, one set.

Real processes throughout: a supervisor with two workers on one port, real Redis, SDK
clients and raw WebSockets.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from websockets.exceptions import ConnectionClosed

from gateway.workerset import STALE_SECONDS
from tests.deploy.subscribers import Crowd
from tests.helpers import ROOT, GatewayProcess, open_ws, recv_json, subscribe, wait_until
from tests.numbered import NumberedPublisher

DRAIN = 1.0


@pytest.fixture
def run_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the supervisor makes its run directory (TMPDIR, inherited by the gateway)."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    return tmp_path


def readyz(gateway: GatewayProcess, timeout: float = 5.0) -> tuple[int, dict[str, Any]]:
    status, body = gateway.get("/readyz", timeout)
    return status, json.loads(body) if body else {}


def start_set(gateways: list[GatewayProcess], redis_url: str) -> GatewayProcess:
    """A gateway of two workers, once /readyz lists both as ready."""
    gateway = GatewayProcess.start(gateways, redis_url, workers=2, drain_seconds=DRAIN)

    def both_ready() -> bool:
        status, body = readyz(gateway)
        return status == 200 and len(body["workers"]) == 2

    gateway.wait_for(both_ready, 20, "both workers ready")
    return gateway


def worker_ids(gateway: GatewayProcess) -> list[str]:
    return [w["gateway"] for w in readyz(gateway)[1]["workers"]]


def answering(gateway: GatewayProcess, connections: int) -> set[str]:
    """The worker ids that answered ``connections`` requests, each on a new connection."""
    return {readyz(gateway)[1]["gateway"] for _ in range(connections)}


async def test_two_workers_share_one_port_and_answer_for_the_set(redis_server, gateways, run_dirs):
    gateway = await asyncio.to_thread(start_set, gateways, redis_server.url)
    ids = worker_ids(gateway)
    assert len(set(ids)) == 2 and all(i.endswith(("/0", "/1")) for i in ids)
    # New connections spread over both workers (the kernel hashes each one).
    assert await asyncio.to_thread(answering, gateway, 40) == set(ids)

    sockets = await asyncio.gather(*(open_ws(gateway.ws_url) for _ in range(24)))
    for ws in sockets:  # one error frame per connection, counted by whichever worker has it
        await ws.send("not json")
        assert (await recv_json(ws))["type"] == "error"
    await wait_until(lambda: gateway.metric("relaycast_connections") == 24, 10, "24 connections")

    def per_worker() -> list[int]:  # as each worker last reported (every half second)
        return [w["connections"] for w in readyz(gateway)[1]["workers"]]

    def spread_over_both() -> bool:
        counts = per_worker()
        return sum(counts) == 24 and min(counts) > 0

    await wait_until(spread_over_both, 10, "24 connections on both workers")
    # Any worker's /metrics counts every worker's errors.
    for _ in range(4):
        assert gateway.metric("relaycast_client_errors_total") == 24
    for ws in sockets:
        await ws.close()

    # A stuck worker (alive, listening, answering nothing) takes the set out of the pool:
    # the other one answers 503 once the stuck one's report is stale.
    stuck = readyz(gateway)[1]["workers"][0]
    os.kill(stuck["pid"], signal.SIGSTOP)
    try:
        await wait_until(lambda: readyz(gateway, 0.5)[0] == 503, STALE_SECONDS + 10, "503")
        status, body = readyz(gateway, 0.5)
        if status == 503:  # a request the kernel gave the stuck worker times out instead
            assert [w["ready"] for w in body["workers"]] == [False, True]
    finally:
        os.kill(stuck["pid"], signal.SIGCONT)
    await wait_until(lambda: readyz(gateway)[0] == 200, 10, "ready again")


async def test_a_killed_worker_is_replaced_and_its_clients_resume_without_loss(
    redis_server, gateways, run_dirs
):
    gateway = await asyncio.to_thread(start_set, gateways, redis_server.url)
    before = {w["gateway"]: w["pid"] for w in readyz(gateway)[1]["workers"]}
    channel = "tasks.workers"
    crowd = Crowd(gateway.ws_url, channel, 20)
    await crowd.start()
    await wait_until(lambda: min(w["connections"] for w in readyz(gateway)[1]["workers"]) > 0, 10)
    publisher = NumberedPublisher(redis_server.url, channel, 0.02)
    publisher.start()
    try:
        await asyncio.sleep(0.5)
        victim_id, victim = sorted(before.items())[0]
        os.kill(victim, signal.SIGKILL)

        def replaced() -> bool:
            status, body = readyz(gateway)
            pids = {w["gateway"]: w["pid"] for w in body.get("workers", [])}
            return status == 200 and pids.get(victim_id, victim) != victim and len(pids) == 2

        await asyncio.to_thread(gateway.wait_for, replaced, 20, "the worker replaced")
        await asyncio.sleep(0.5)
    finally:
        sent = await publisher.stop()
    await crowd.wait(lambda s: len(s.numbers) >= sent, 30, "every message delivered")
    expected = list(range(1, sent + 1))
    assert all(s.numbers == expected for s in crowd.subscribers)
    assert sum(s.lost for s in crowd.subscribers) == 0
    assert any(len(s.subscribed_at) > 1 for s in crowd.subscribers)  # the victim's reconnected
    for sub in crowd.subscribers:
        await sub.client.close()


async def closed_with(ws) -> int | None:
    try:
        while True:
            await recv_json(ws, timeout=DRAIN + 10)
    except ConnectionClosed:
        return ws.close_code


async def test_relaycast_drain_of_the_supervisor_drains_every_worker_and_exits(
    redis_server, gateways, run_dirs
):
    gateway = await asyncio.to_thread(start_set, gateways, redis_server.url)
    assert gateway.proc is not None
    workers = [w["pid"] for w in readyz(gateway)[1]["workers"]]
    assert len(list(run_dirs.glob("relaycast-workers-*"))) == 1
    sockets = await asyncio.gather(*(open_ws(gateway.ws_url) for _ in range(16)))
    await asyncio.gather(*(subscribe(ws, "tasks.drain") for ws in sockets))
    await wait_until(lambda: min(w["connections"] for w in readyz(gateway)[1]["workers"]) > 0, 10)
    watchers = [asyncio.create_task(closed_with(ws)) for ws in sockets]

    drain = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "shared.cli", "drain", "--pid", str(gateway.proc.pid)],
        cwd=ROOT,
        env={"RELAYCAST_DRAIN_SECONDS": str(DRAIN), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=DRAIN + 30,
    )
    assert drain.returncode == 0, drain.stderr.decode()
    assert gateway.proc.poll() == 0
    assert set(await asyncio.gather(*watchers)) == {1012}
    for pid in workers:  # every worker drained and exited before the supervisor did
        assert _gone(pid)
    assert not list(run_dirs.glob("relaycast-workers-*"))  # the run directory is gone


def _gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def test_workers_setting_takes_a_number_or_auto():
    from shared.settings import Settings, SettingsError

    assert Settings.load(env={"RELAYCAST_WORKERS": "3"}).worker_count() == 3
    assert Settings.load(env={"RELAYCAST_WORKERS": "auto"}).worker_count() == len(
        os.sched_getaffinity(0)
    )
    assert Settings.load(env={}).worker_count() == 1
    for bad in ("0", "-1", "two", ""):
        with pytest.raises(SettingsError, match="RELAYCAST_WORKERS"):
            Settings.load(env={"RELAYCAST_WORKERS": bad})


def test_workers_need_a_broker_they_share():
    result = subprocess.run(
        [sys.executable, "-m", "shared.cli", "gateway", "--workers", "2"],
        cwd=ROOT,
        env={**os.environ, "RELAYCAST_REDIS_URL": "memory://"},
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "memory://" in result.stderr.decode()


def test_a_bad_setting_stops_the_set_with_status_2(run_dirs):
    result = subprocess.run(
        [sys.executable, "-m", "shared.cli", "gateway", "--workers", "2", "--port", "0"],
        cwd=ROOT,
        env={
            **os.environ,
            "RELAYCAST_MODE": "production",
            "RELAYCAST_REDIS_URL": "redis://127.0.0.1:9/0",
        },
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr.decode()[-2000:]
    assert not list(run_dirs.glob("relaycast-workers-*"))


def test_a_worker_that_keeps_dying_young_is_replaced_ever_more_slowly():
    from gateway.workers import MAX_BACKOFF, YOUNG, Worker

    worker = Worker(0)
    delays = []
    for _ in range(10):
        worker.started = time.monotonic()  # it died at once
        delays.append(worker.backoff())
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0] and delays[-1] == MAX_BACKOFF
    worker.started = time.monotonic() - YOUNG  # this one ran a while: replaced at once
    assert worker.backoff() == 0.0
    worker.started = time.monotonic()
    assert worker.backoff() == 0.5  # and the count starts again
