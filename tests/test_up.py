"""`relaycast up` (what `make run` runs) starts Redis, a gateway and publishers, and stops them."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys

import psutil

from tests.helpers import ROOT, free_port, open_ws, recv_json, subscribe


async def test_relaycast_up_serves_demo_events_and_stops_everything_on_ctrl_c(tmp_path):
    port = free_port()
    log = tmp_path / "up.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shared.cli", "up", "--port", str(port)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
        )
    try:
        ws = None
        for _ in range(200):
            try:
                ws = await open_ws(f"ws://127.0.0.1:{port}/ws")
                break
            except OSError:
                await asyncio.sleep(0.1)
        assert ws is not None, log.read_text()
        await subscribe(ws, "demo.ticks")
        frame = await recv_json(ws, timeout=20)
        assert frame["type"] == "message" and "tick" in frame["data"], frame
        await ws.close()
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 3, "expected redis-server, a gateway and publishers"
        text = log.read_text()
        assert "Relaycast is up" in text and re.search(r"redis://127\.0\.0\.1:\d+", text)
    finally:
        proc.send_signal(signal.SIGINT)
        code = await asyncio.to_thread(proc.wait, 30)
    assert code == 0, log.read_text()
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"left running: {alive}\n{log.read_text()}"
