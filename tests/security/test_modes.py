"""Production refuses to start open; development starts open and says so loudly."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT, GatewayProcess, free_port, open_ws, subscribe

SHORT_SECRET = "hunter2-but-longer"


def run_gateway(**settings: str) -> subprocess.CompletedProcess[str]:
    """``relaycast gateway`` with only these RELAYCAST_* settings; it must exit by itself."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAYCAST_")}
    env.update({f"RELAYCAST_{k.upper()}": v for k, v in settings.items()})
    command = [sys.executable, "-m", "shared.cli", "gateway", "--port", str(free_port())]
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({}, "token keys (RELAYCAST_TOKEN_SECRET"),
        ({"token_secret": "s" * 40}, "an API key (RELAYCAST_API_KEY)"),
        ({"token_secret": SHORT_SECRET, "api_key": "k" * 30}, "at least 32 bytes"),
        ({"mode": "open"}, "RELAYCAST_MODE must be production or development"),
    ],
)
def test_production_without_keys_refuses_to_start_with_exit_code_2(settings, words):
    result = run_gateway(redis_url="memory://", **settings)
    assert result.returncode == 2, result.stderr
    assert words in result.stderr
    if "api_key" not in settings:  # missing keys: it says how to try it out instead
        assert "set RELAYCAST_MODE=development" in result.stderr or "mode" in settings
    assert SHORT_SECRET not in result.stderr + result.stdout


async def test_development_mode_starts_open_and_warns_loudly(gateways):
    gateway = GatewayProcess.start(gateways, "memory://", mode="development")
    assert "DEVELOPMENT MODE: anyone may connect" in gateway.log_path.read_text()
    ws = await open_ws(gateway.ws_url, origin="https://anywhere.example")
    await subscribe(ws, "tasks.projB.1")  # no token, any channel
    await ws.close()
