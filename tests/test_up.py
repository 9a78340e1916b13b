"""`relaycast up` (what `make run` runs): Redis, a gateway and publishers, started and stopped."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time

import psutil

from tests.helpers import ROOT, free_port, open_ws, recv_json, subscribe
from tests.upprocess import UpProcess, relaycast


async def test_relaycast_up_serves_demo_events_and_stops_everything_on_ctrl_c(tmp_path):
    up = UpProcess(tmp_path / "up.log")
    try:
        await asyncio.to_thread(up.start)
        ws = await open_ws(up.ws_url)
        await subscribe(ws, "demo.ticks")
        frame = await recv_json(ws, timeout=20)
        assert frame["type"] == "message" and "tick" in frame["data"], frame
        await ws.close()
        assert len(up.children) >= 6, (
            "expected redis-server, a gateway, three publishers, a notifier"
        )
        text = up.text()
        assert f"dashboard         {up.base}/" in text
        assert up.redis_url in text
        code = await asyncio.to_thread(up.interrupt)
    finally:
        up.kill()
    text = up.text()
    assert code == 0, text
    _, alive = psutil.wait_procs(up.children, timeout=10)
    assert not alive, f"left running: {alive}\n{text}"
    # The gateway stops before Redis, so nothing reports a lost link or a traceback.
    assert "Traceback" not in text and "CancelledError" not in text, text
    assert "link lost" not in text and "ERROR" not in text, text
    assert text.rstrip().endswith("relaycast up: stopped"), text


async def test_the_commands_the_banner_prints_run_as_printed(tmp_path):
    up = UpProcess(tmp_path / "up.log")
    try:
        await asyncio.to_thread(up.start)
        lines = re.findall(r"^  (\S*relaycast (?:tail|publish) .*)$", up.text(), re.M)
        tail_line, publish_line = lines
        tail = subprocess.Popen(
            f"{tail_line} 2>/dev/null | grep -m1 demo.hello",
            shell=True,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        # Publish until the tail, which may not have subscribed yet, shows one.
        for _ in range(50):
            published = subprocess.run(
                publish_line, shell=True, cwd=ROOT, capture_output=True, text=True, timeout=30
            )
            assert published.returncode == 0, published.stderr
            try:
                out, _ = await asyncio.to_thread(tail.communicate, timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            tail.kill()
            raise AssertionError("the tail never printed the message published")
        assert '"data": {"hi": 1}' in out, out
    finally:
        await asyncio.to_thread(up.interrupt)
        up.kill()


def test_a_second_up_names_the_busy_port_and_starts_nothing(tmp_path):
    up = UpProcess(tmp_path / "up.log")
    try:
        up.start()
        args = ["up", "--port", str(up.port), "--redis-port", str(up.redis_port)]
        started = time.monotonic()
        second = subprocess.run(
            relaycast(*args), cwd=ROOT, capture_output=True, text=True, timeout=30
        )
        assert second.returncode == 1
        assert f"port {up.port} (the gateway)" in second.stderr, second.stderr
        assert len(second.stderr.strip().splitlines()) == 1, second.stderr
        assert "Relaycast is up" not in second.stdout
        assert time.monotonic() - started < 20
        # Only Redis busy: the message names that port and its flag.
        alone = ["up", "--port", str(free_port()), "--redis-port", str(up.redis_port)]
        second = subprocess.run(
            relaycast(*alone), cwd=ROOT, capture_output=True, text=True, timeout=30
        )
        assert second.returncode == 1
        assert f"port {up.redis_port} (Redis)" in second.stderr and "--redis-port" in second.stderr
        assert up.proc is not None and up.proc.poll() is None  # the first one runs on
    finally:
        up.interrupt()
        up.kill()


def test_killing_up_takes_its_children_with_it(tmp_path):
    up = UpProcess(tmp_path / "up.log")
    try:
        up.start()
        assert up.proc is not None
        up.proc.kill()  # no chance to stop anything in order
        up.proc.wait(10)
        _, alive = psutil.wait_procs(up.children, timeout=20)
        assert not alive, f"left running: {alive}"
    finally:
        up.kill()
