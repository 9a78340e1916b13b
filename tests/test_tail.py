"""`relaycast tail` follows channels across a gateway crash, resuming on another gateway."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys

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
