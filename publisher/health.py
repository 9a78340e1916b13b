"""Health of a metrics, alerts or notify process, over a small HTTP endpoint for probes.

A publisher that hangs publishes nothing and says nothing, so its health is judged by its
work, not by its being there:

- ``GET /healthz`` (liveness) is 200 while rounds run on schedule (each round samples and
  publishes, or evaluates the rules), even when Redis is away: restarting the process
  would not bring Redis back. It is 503 once no round has finished for three intervals
  (plus ``GRACE``): the loop is stuck, and a restart is the cure.
- ``GET /readyz`` (readiness) is 200 only while the newest rounds reached Redis: the last
  successful round is at most three intervals (plus ``GRACE``) old.

Both answer a line of JSON saying why. A process with counters of its own (``relaycast
notify``) serves them on ``GET /metrics`` too, in Prometheus' text format. Served on
``health_port`` (0: not served).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Protocol

import msgspec
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from shared.shutdown import finish

__all__ = ["GRACE", "Health", "RoundsWorker", "run_with_health", "serve_health"]

log = logging.getLogger("relaycast.health")

GRACE = 10.0
"""Seconds of slack on top of three intervals, for a slow round on a busy machine."""


class Health:
    """What the process' loop reports after each round (:meth:`round_done`)."""

    def __init__(self, interval: float, doing: str) -> None:
        self.interval = interval
        self.doing = doing
        self.started = time.monotonic()
        self.last_round: float | None = None
        self.last_ok: float | None = None
        self.rounds = 0

    def round_done(self, ok: bool) -> None:
        now = time.monotonic()
        self.last_round = now
        self.rounds += 1
        if ok:
            self.last_ok = now

    @property
    def limit(self) -> float:
        return 3 * self.interval + GRACE

    def live(self) -> tuple[bool, str]:
        now = time.monotonic()
        since = now - (self.last_round if self.last_round is not None else self.started)
        if since > self.limit:
            return False, f"no round of '{self.doing}' for {since:.1f}s"
        return True, f"rounds on schedule (last {since:.1f}s ago)"

    def ready(self) -> tuple[bool, str]:
        if self.last_ok is None:
            return False, "no round has reached redis yet"
        since = time.monotonic() - self.last_ok
        if since > self.limit:
            return False, f"redis unreachable: last good round {since:.1f}s ago"
        return True, f"last good round {since:.1f}s ago"


_encode = msgspec.json.Encoder().encode


async def serve_health(
    health: Health, port: int, host: str = "0.0.0.0", registry: CollectorRegistry | None = None
) -> asyncio.Server:
    """Serve ``/healthz`` and ``/readyz`` of ``health`` on ``port``, and ``/metrics`` of
    ``registry`` when there is one."""

    def reply(path: str) -> tuple[str, str, bytes]:
        if path == "/metrics" and registry is not None:
            return "200 OK", CONTENT_TYPE_LATEST, generate_latest(registry)
        if path == "/healthz":
            ok, why = health.live()
        elif path == "/readyz":
            ok, why = health.ready()
        else:
            ask = "/healthz, /readyz or /metrics" if registry else "/healthz or /readyz"
            ok, why = False, f"not found: ask {ask}"
        status = "200 OK" if ok else ("404 Not Found" if "not found" in why else "503 Down")
        body = _encode({"ok": ok, "reason": why, "rounds": health.rounds}) + b"\n"
        return status, "application/json", body

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            parts = line.decode("latin-1").split()
            status, content_type, body = reply(parts[1] if len(parts) >= 2 else "")
            writer.write(
                f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
                + body
            )
            await asyncio.wait_for(writer.drain(), 5)
        except (TimeoutError, OSError, UnicodeError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    server = await asyncio.start_server(answer, host, port)
    also = ", /readyz and /metrics" if registry else " and /readyz"
    log.info("health on http://%s:%d/healthz%s", host, port, also)
    return server


class RoundsWorker(Protocol):
    """A publisher process that works in rounds until stopped (metrics, alerts)."""

    async def run(self, stop: asyncio.Event | None = None, health: Health | None = None) -> None:
        """Work in rounds, reporting each to ``health``, until ``stop`` is set."""

    async def close(self) -> None:
        """Let go of Redis."""


async def run_with_health(
    worker: RoundsWorker, health: Health, port: int, stop: asyncio.Event | None = None
) -> None:
    """Run ``worker`` until ``stop``, with ``health`` served on ``port`` (0: not served),
    then close both."""
    server = await serve_health(health, port) if port else None
    try:
        await worker.run(stop, health)
    finally:
        if server is not None:
            server.close()
        await finish(worker.close(), "letting go of Redis")  # bounded: the process must exit
