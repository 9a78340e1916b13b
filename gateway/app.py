"""create_app(settings) -> Starlette: assembles the gateway; holds no logic of its own."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute

from gateway import (
    admission,
    api,
    api_alerts,
    api_events,
    api_metrics,
    dashboard,
    notifications_api,
    observe,
    revocation_api,
    task_api,
)
from gateway.heartbeat import run_heartbeat
from gateway.hub import Hub
from gateway.node import Node
from gateway.rebalance import run_rebalancer
from gateway.transports.asgi_ws import websocket_fallback
from gateway.transports.poll import poll
from gateway.transports.sse import sse
from shared.broker import create_broker
from shared.broker.redis_url import redacted_url
from shared.settings import Settings
from shared.shutdown import finish

__all__ = ["create_app", "from_environment"]

log = logging.getLogger("relaycast.gateway")


def create_app(settings: Settings) -> Starlette:
    """The gateway's HTTP app. ``/ws`` is served by :mod:`gateway.transports.websocket`,
    which uvicorn runs for WebSocket upgrades (see :mod:`gateway.server`); under any other
    ASGI server, by the Starlette route in :mod:`gateway.transports.asgi_ws`.

    Raises:
        SettingsError: production settings without keys, or keys that cannot be used.
    """
    security = admission.Security(settings)
    node = Node(settings, security)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Node]]:
        broker = create_broker(settings)
        hub = Hub(broker, settings)
        node.started(hub, api.Api(settings))
        await broker.start(hub)
        heartbeat = asyncio.create_task(run_heartbeat(hub), name="relaycast-heartbeat")
        rebalance = asyncio.create_task(run_rebalancer(hub), name="relaycast-rebalance")
        revocations = asyncio.create_task(
            security.revocations.watch(hub.sessions), name="relaycast-revocations"
        )
        log.info("gateway %s up; broker %s", settings.gateway_id, redacted_url(settings.redis_url))
        try:
            yield {"node": node}  # for the WebSocket protocol class (gateway/server.py)
        finally:
            heartbeat.cancel()
            rebalance.cancel()
            revocations.cancel()
            # Each step bounded: one that hangs (shared/shutdown.py) must not keep the
            # process from exiting.
            await finish(hub.close(), "closing the hub")
            await finish(broker.close(), "closing the broker")
            await finish(node.api.close(), "closing the API's Redis clients")
            await finish(security.close(), "closing the revocation reader")

    app = Starlette(
        routes=[
            Route("/healthz", observe.healthz),
            Route("/readyz", observe.readyz),
            Route("/metrics", observe.metrics),
            Route("/sse", sse),
            Route("/poll", poll),
            WebSocketRoute("/ws", websocket_fallback),
            *dashboard.routes,
            *task_api.routes,
            *api.routes,
            *api_metrics.routes,
            *api_events.routes,
            *api_alerts.routes,
            *revocation_api.routes,
            *notifications_api.routes,
            *admission.routes,
        ],
        lifespan=lifespan,
    )
    app.state.node = node
    return app


def from_environment() -> Starlette:
    """The app with settings from ``RELAYCAST_*`` variables, for ASGI servers other than
    ``relaycast gateway``: ``uvicorn --factory gateway.app:from_environment``."""
    return create_app(Settings.load())
