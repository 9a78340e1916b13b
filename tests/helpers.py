"""Helpers shared by the integration tests: gateway processes and a raw WebSocket client."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import redis
from websockets.asyncio.client import ClientConnection, connect

from shared.localredis import LocalRedis, free_port

__all__ = [
    "GatewayProcess",
    "free_port",
    "open_ws",
    "recv_json",
    "redis_numsub",
    "subscribe",
    "wait_until",
]

ROOT = Path(__file__).resolve().parent.parent


class GatewayProcess:
    """One ``relaycast gateway`` process on 127.0.0.1, with its log in a temp file.

    It runs in development mode (anyone may read anything) unless ``mode="production"`` is
    among its settings; tests/security starts production gateways with keys.
    """

    def __init__(self, redis_url: str, port: int | None = None, **settings: Any) -> None:
        self.port = port or free_port()
        self.redis_url = redis_url
        self.settings = settings
        self.log_path = Path(
            tempfile.mkstemp(prefix=f"relaycast-gw-{self.port}-", suffix=".log")[1]
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls, into: list[GatewayProcess], redis_url: str, **settings: Any) -> GatewayProcess:
        """Start a gateway, add it to ``into`` (the ``gateways`` fixture), wait until ready."""
        gateway = cls(redis_url, **settings)
        into.append(gateway)
        gateway.spawn()
        gateway.wait_ready()
        return gateway

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def spawn(self) -> None:
        env = dict(os.environ)
        env.update({f"RELAYCAST_{k.upper()}": str(v) for k, v in self.settings.items()})
        env["RELAYCAST_REDIS_URL"] = self.redis_url
        env.setdefault("RELAYCAST_LOG_LEVEL", "info")
        # Gateways default to production, which needs keys; tests/security passes mode=production.
        env.setdefault("RELAYCAST_MODE", "development")
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            self.command(),
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def command(self) -> list[str]:
        """What runs the gateway: ``relaycast gateway``."""
        return [sys.executable, "-m", "shared.cli", "gateway", "--port", str(self.port)]

    def restart(self) -> None:
        """Start again on the same port with the same settings (after kill or drain)."""
        self.kill()
        self.spawn()
        self.wait_ready()

    def get(self, path: str) -> tuple[int, str]:
        """HTTP GET; (status, body). Status 0 when nothing answers."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError:
            return 0, ""

    def ready(self) -> bool:
        return self.get("/readyz")[0] == 200

    def wait_ready(self, timeout: float = 20.0) -> None:
        self.wait_for(self.ready, timeout, "gateway ready")

    def wait_for(self, predicate: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited ({self.proc.returncode}):\n{self.log_tail()}")
            if predicate():
                return
            time.sleep(0.05)
        raise TimeoutError(f"timed out waiting for {what}:\n{self.log_tail()}")

    def metric(self, name: str) -> float:
        """Sum of every sample of a Prometheus metric (0 when absent)."""
        _, body = self.get("/metrics")
        total = 0.0
        for line in body.splitlines():
            if line.startswith(name) and line[len(name)] in " {":
                total += float(line.rsplit(" ", 1)[1])
        return total

    def rss(self) -> int:
        assert self.proc is not None
        return int(psutil.Process(self.proc.pid).memory_info().rss)

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


async def open_ws(url: str, **kwargs: Any) -> ClientConnection:
    """A plain WebSocket client (the ``websockets`` library), no reconnects."""
    kwargs.setdefault("ping_interval", None)
    kwargs.setdefault("max_size", None)
    kwargs.setdefault("open_timeout", 10)
    return await connect(url, **kwargs)


async def recv_json(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    """The next frame that is not a server ping, as a dict."""
    while True:
        async with asyncio.timeout(timeout):
            raw = await ws.recv()
        frame = json.loads(raw)
        if frame.get("type") != "ping":
            return frame  # type: ignore[no-any-return]


async def subscribe(
    ws: ClientConnection, channel: str, since: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Subscribe and return the ``subscribed`` frame (fails on anything else)."""
    request: dict[str, Any] = {"type": "subscribe", "channel": channel}
    if since is not None:
        request["since"] = since
    await ws.send(json.dumps(request))
    frame = await recv_json(ws)
    assert frame["type"] == "subscribed", frame
    return frame


def redis_numsub(server: LocalRedis, channel: str, prefix: str = "rc") -> int:
    """How many pub/sub connections Redis has subscribed to ``channel`` (PUBSUB NUMSUB)."""
    with redis.Redis.from_url(server.url) as client:
        reply = client.pubsub_numsub(f"{prefix}:{{{channel}}}")
    return int(reply[0][1])


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str = "") -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` seconds (a hang guard)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        await asyncio.sleep(0.05)
