"""Run a gateway under uvicorn, with a staggered drain on SIGTERM.

uvicorn on its own closes every WebSocket at once when it stops, and every client then
reconnects in the same instant. Here the first SIGTERM (or Ctrl-C) marks the gateway not
ready, stops accepting connections, and closes clients with 1012 spread over
``drain_seconds``; only then does uvicorn shut down. A second signal stops at once.

As one worker of ``relaycast gateway --workers N`` (:mod:`gateway.workers`), the gateway
listens with ``SO_REUSEPORT`` beside its siblings and reports its readiness to the set.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from types import FrameType

import uvicorn
from starlette.applications import Starlette

from gateway import collector
from gateway.app import create_app
from gateway.http_guard import guarded_protocol
from gateway.hub import Hub
from gateway.node import node_of
from gateway.observe import SLOT, own_state
from gateway.transports.websocket import WebSocketTransport
from gateway.workerset import REPORT_INTERVAL
from shared.settings import Settings

__all__ = ["serve"]

log = logging.getLogger("relaycast.gateway")


class GatewayServer(uvicorn.Server):
    """uvicorn's server with a drain step before shutdown."""

    def __init__(self, config: uvicorn.Config, settings: Settings, app: Starlette) -> None:
        super().__init__(config)
        self.settings = settings
        self.app = app
        self.hub: Hub | None = None
        self._draining = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_task: asyncio.Task[None] | None = None
        self._report_task: asyncio.Task[None] | None = None

    async def startup(self, sockets: list | None = None) -> None:  # type: ignore[type-arg]
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)
        self.hub = node_of(self.app).hub
        collector.settle()  # the app is up: what it allocated so far stays
        if SLOT is not None:
            self._report()
            self._report_task = asyncio.create_task(self._report_loop(), name="relaycast-report")

    async def shutdown(self, sockets: list | None = None) -> None:  # type: ignore[type-arg]
        if self._report_task is not None:
            self._report_task.cancel()
        await super().shutdown(sockets)

    def _report(self) -> None:
        """Tell the other workers of the set how this one is (see gateway/workerset.py)."""
        if SLOT is not None and self.hub is not None:
            try:
                SLOT.report(own_state(node_of(self.app)))
            except OSError as exc:  # the set's directory is gone: the supervisor is stopping
                log.warning("cannot report readiness: %s", exc)

    async def _report_loop(self) -> None:
        while True:
            await asyncio.sleep(REPORT_INTERVAL)
            self._report()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining or self._loop is None or self.hub is None:
            self.should_exit = True
            self.force_exit = self._draining
            return
        self._draining = True
        log.info("%s: draining over %.1fs", signal.Signals(sig).name, self.settings.drain_seconds)
        self._loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        self._drain_task = asyncio.ensure_future(self._drain())
        self._report()  # the set turns not ready now, not at the next report

    async def _drain(self) -> None:
        assert self.hub is not None
        # The listener stays open: /readyz answers 503 and /healthz 200 while draining, and
        # new connections are refused with 503 (the load balancer retries elsewhere).
        await self.hub.drain(self.settings.drain_seconds)
        await asyncio.sleep(0.2)  # let the last close frames go out
        self.should_exit = True


def _shared_socket(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` that the set's other workers bind as well: the
    kernel spreads new connections over them, and stops sending any to a worker that has
    exited."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def serve(settings: Settings) -> None:
    """Serve the gateway on ``settings.host:settings.port`` until drained."""
    worker = f"[{SLOT.index}]" if SLOT is not None else ""
    logging.basicConfig(
        level=settings.log_level.upper(),
        format=f"%(asctime)s %(levelname)s %(name)s{worker}: %(message)s",
        force=True,  # the command line configured INFO already; RELAYCAST_LOG_LEVEL decides
    )
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=guarded_protocol(settings),  # incomplete requests time out and are capped
        ws=WebSocketTransport,
        lifespan="on",
        log_level=settings.log_level,
        access_log=False,  # URLs may carry tickets; tokens never go in URLs
        proxy_headers=False,  # whose X-Forwarded-For counts is RELAYCAST_TRUSTED_PROXIES' call
        timeout_graceful_shutdown=5,
    )
    server = GatewayServer(config, settings, app)
    if SLOT is None:
        server.run()
    else:
        server.run(sockets=[_shared_socket(settings.host, settings.port)])
