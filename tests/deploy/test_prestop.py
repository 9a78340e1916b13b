"""``relaycast drain``, the preStop hook (gateway/prestop.py): it starts the gateway's own
staggered drain and returns only once the gateway has exited."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

from websockets.exceptions import ConnectionClosed

from tests.deploy.subscribers import spread
from tests.helpers import ROOT, GatewayProcess, open_ws, recv_json, subscribe

CLIENTS = 60
DRAIN = 2.0


def relaycast_drain(pid: int) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", "drain", "--pid", str(pid)],
        cwd=ROOT,
        env={"RELAYCAST_DRAIN_SECONDS": str(DRAIN), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=DRAIN + 20,
    )


async def closed_at(ws) -> tuple[int | None, float]:
    try:
        while True:
            await recv_json(ws, timeout=DRAIN + 10)
    except ConnectionClosed:
        return ws.close_code, time.monotonic()


async def test_drain_closes_clients_with_1012_over_the_window_and_waits_for_exit(
    redis_server, gateways
):
    gateway = GatewayProcess.start(gateways, redis_server.url, drain_seconds=DRAIN)
    assert gateway.proc is not None
    sockets = await asyncio.gather(*(open_ws(gateway.ws_url) for _ in range(CLIENTS)))
    await asyncio.gather(*(subscribe(ws, "tasks.prestop") for ws in sockets))
    watchers = [asyncio.create_task(closed_at(ws)) for ws in sockets]

    started = time.monotonic()
    result = await asyncio.to_thread(relaycast_drain, gateway.proc.pid)
    returned = time.monotonic()

    assert result.returncode == 0, result.stderr.decode()
    assert gateway.proc.poll() == 0  # the gateway had exited, cleanly, when the hook returned
    closes = await asyncio.gather(*watchers)
    assert {code for code, _ in closes} == {1012}
    s = spread([t for _, t in closes], started, DRAIN)
    assert s["p10_p90"] >= 0.5 * DRAIN, s  # in batches over the window, not all at once
    assert s["last"] <= returned - started


def test_drain_of_a_gateway_that_is_not_running_returns_at_once():
    gone = subprocess.Popen(["true"])
    gone.wait()
    started = time.monotonic()
    assert relaycast_drain(gone.pid).returncode == 0
    assert time.monotonic() - started < DRAIN
