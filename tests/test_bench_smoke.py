"""A short run of ``relaycast bench``'s fan-out and idle scenarios, as CI's smoke test.

The figures are printed, never judged: the machine is shared and noisy. What fails the
test is the tool itself failing: a crash, a connection that did not open, or a message
lost or delivered twice.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import _require_redis


def bench(*args: str) -> dict:
    """Run ``relaycast bench ARGS --json`` as users do; its result."""
    _require_redis()
    done = subprocess.run(
        [sys.executable, "-m", "shared.cli", "bench", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode in (0, 1), f"bench crashed:\n{done.stdout}\n{done.stderr[-3000:]}"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"\n{json.dumps(result, indent=1, sort_keys=True)}")
    return result


@pytest.mark.slow
def test_fanout_smoke_run_delivers_every_message_once_to_every_client():
    clients, rate, duration = 300, 30_000, 3
    result = bench("fanout", "--clients", str(clients), "--rate", str(rate), "--duration", "3")
    assert result["connections"] == clients
    assert result["lost"] == result["duplicates"] == result["missing"] == 0, result
    assert result["deliveries"] == clients * result["published"]
    assert result["published"] >= rate / clients * duration * 0.5
    assert result["problems"] == []


@pytest.mark.slow
def test_idle_smoke_run_holds_every_connection():
    result = bench("idle", "--clients", "2000", "--duration", "3", "--heartbeat", "1")
    assert result["connections"] == result["open"] == 2000
    assert not result.get("closes")
    assert result.get("problems", []) == []
