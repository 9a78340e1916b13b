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


def bench(report_figure, *args: str) -> dict:
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
    keys = (
        "connections",
        "deliveries_per_s",
        "lost",
        "duplicates",
        "gateway_us_per_delivery",
        "gateway_kernel_us_per_delivery",
        "latency_ms",
        "gateway_cpu_pct",
        "rss_per_conn_kb",
    )
    summary = {k: result[k] for k in keys if k in result}
    report_figure(f"relaycast bench {' '.join(args)}: {json.dumps(summary)}")
    return result


@pytest.mark.slow
def test_fanout_smoke_run_delivers_every_message_once_to_every_client(report_figure):
    clients, rate, duration = 300, 30_000, 3
    args = ("--clients", str(clients), "--rate", str(rate), "--duration", str(duration))
    result = bench(report_figure, "fanout", *args)
    assert result["connections"] == clients
    assert result["lost"] == result["duplicates"] == result["missing"] == 0, result
    assert result["deliveries"] == clients * result["published"]
    assert result["published"] >= rate / clients * duration * 0.5
    assert result["problems"] == []
    # The kernel's part of the gateway's CPU is measured, and is a part of it.
    assert 0 < result["gateway_kernel_us_per_delivery"] <= result["gateway_us_per_delivery"]


@pytest.mark.slow
def test_idle_smoke_run_holds_every_connection(report_figure):
    args = ("--clients", "2000", "--duration", "3", "--heartbeat", "1")
    result = bench(report_figure, "idle", *args)
    assert result["connections"] == result["open"] == 2000
    assert not result.get("closes")
    assert result.get("problems", []) == []


@pytest.mark.slow
def test_compressed_fanout_smoke_run_inflates_every_message(report_figure):
    clients, size = 100, 4096
    args = ("--clients", str(clients), "--rate", "5000", "--duration", "1", "--size", str(size))
    result = bench(report_figure, "fanout", *args, "--compression")
    assert result["connections"] == clients
    assert result["lost"] == result["duplicates"] == result["missing"] == 0, result
    assert result["deliveries"] == clients * result["published"] > 0
    # Every client negotiated permessage-deflate: the frames on the wire are compressed.
    assert result["wire_bytes_per_delivery"] < size * 0.7, result["wire_bytes_per_delivery"]
