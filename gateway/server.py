"""Run a gateway under uvicorn, with a staggered drain on SIGTERM.

uvicorn on its own closes every WebSocket at once when it stops, and every client then
reconnects in the same instant. Here the first SIGTERM (or Ctrl-C) marks the gateway not
ready, stops accepting connections, and closes clients with 1012 spread over
``drain_seconds``; only then does uvicorn shut down. A second signal stops at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from types import FrameType

import uvicorn
from starlette.applications import Starlette

from gateway import collector
from gateway.app import create_app
from gateway.http_guard import guarded_protocol
from gateway.hub import Hub
from gateway.node import node_of
from gateway.transports.websocket import WebSocketTransport
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

    async def startup(self, sockets: list | None = None) -> None:  # type: ignore[type-arg]
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)
        self.hub = node_of(self.app).hub
        collector.settle()  # the app is up: what it allocated so far stays

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

    async def _drain(self) -> None:
        assert self.hub is not None
        # The listener stays open: /readyz answers 503 and /healthz 200 while draining, and
        # new connections are refused with 503 (the load balancer retries elsewhere).
        await self.hub.drain(self.settings.drain_seconds)
        await asyncio.sleep(0.2)  # let the last close frames go out
        self.should_exit = True


def serve(settings: Settings) -> None:
    """Serve the gateway on ``settings.host:settings.port`` until drained."""
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
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
    GatewayServer(config, settings, app).run()
