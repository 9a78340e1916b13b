"""`relaycast tail` follows channels across a gateway crash, resuming on another gateway."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

from publisher import AsyncPublisher
from tests.helpers import ROOT, GatewayProcess, wait_until


async def test_tail_resumes_on_the_next_gateway_without_gaps_or_repeats(
    redis_server, gateways, tmp_path
):
    first = GatewayProcess.start(gateways, redis_server.url)
    second = GatewayProcess.start(gateways, redis_server.url)
    out, err = tmp_path / "tail.out", tmp_path / "tail.err"
    with open(out, "wb") as sink, open(err, "wb") as notes:
        tail = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shared.cli",
                "tail",
                f"{first.ws_url},{second.ws_url}",
                "tail.test",
                "--count",
                "20",
            ],
            cwd=ROOT,
            stdout=sink,
            stderr=notes,
            env=dict(os.environ),
        )
    await wait_until(lambda: "# subscribed tail.test" in err.read_text(), 20, "tail subscribed")
    async with AsyncPublisher(redis_server.url) as publisher:
        for n in range(1, 11):
            await publisher.publish("tail.test", {"n": n})
        await wait_until(lambda: len(out.read_text().splitlines()) == 10, 20, "first ten")
        first.signal(signal.SIGKILL)
        for n in range(11, 21):  # published while tail has no gateway: history keeps them
            await publisher.publish("tail.test", {"n": n})
    code = await asyncio.to_thread(tail.wait, 30)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert code == 0
    assert [line["data"]["n"] for line in lines] == list(range(1, 21))
    assert [line["offset"] for line in lines] == list(range(1, 21))


def _tail(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", "tail", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_tail_refuses_an_http_url_in_one_line():
    result = _tail("http://127.0.0.1:8000/ws", "demo.ticks")
    assert result.returncode == 1
    assert "ws://127.0.0.1:8000/ws" in _one_line(result.stderr)


def test_tail_refuses_an_invalid_channel_in_one_line():
    result = _tail("ws://127.0.0.1:8000/ws", "no spaces!")
    assert result.returncode == 1
    assert "invalid channel" in _one_line(result.stderr)


def test_tail_gives_up_on_a_wrong_path(redis_server, gateways):
    gateway = GatewayProcess.start(gateways, redis_server.url)
    result = _tail(f"ws://127.0.0.1:{gateway.port}/nope", "demo.ticks")
    assert result.returncode == 1
    assert "answered HTTP 404" in _one_line(result.stderr)


def test_tail_waits_on_a_quiet_channel_and_says_once_it_is_subscribed(
    redis_server, gateways, tmp_path
):
    gateway = GatewayProcess.start(gateways, redis_server.url)
    err = tmp_path / "tail.err"
    with open(err, "wb") as notes:
        tail = subprocess.Popen(
            [sys.executable, "-m", "shared.cli", "tail", gateway.ws_url, "quiet.channel"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=notes,
        )
    try:
        wait_until_sync(lambda: "# subscribed quiet.channel" in err.read_text(), 20)
        time.sleep(1)
        assert tail.poll() is None  # still waiting for messages
        assert err.read_text().count("subscribed") == 1, err.read_text()
    finally:
        tail.send_signal(signal.SIGINT)
        code = tail.wait(10)
    assert code == 0 and "Traceback" not in err.read_text()


def wait_until_sync(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
