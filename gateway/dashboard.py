"""The dashboard page and the browser client, served by every gateway: no front-end server.

GET /           the dashboard (static/index.html)
GET /static/*   relaycast.js and .d.ts, the dashboard's script and styles, vendored uPlot
GET /gateway    {"gateway": ID, "ready": BOOL}: which gateway answers, for the
                connection indicator; SSE and polling clients time it for latency
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.node import node_of
from gateway.transports.httpbase import CORS

__all__ = ["STATIC", "routes"]

STATIC = Path(__file__).resolve().parent / "static"


async def index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})


async def whoami(request: Request) -> Response:
    node = node_of(request)
    hub = node.hub
    body = {
        "gateway": node.settings.gateway_id,
        "ready": hub.broker.up and not hub.draining,
    }
    return JSONResponse(body, headers={**CORS, "cache-control": "no-store"})


routes: list[BaseRoute] = [
    Route("/", index),
    Route("/gateway", whoami),
    Mount("/static", StaticFiles(directory=STATIC), name="static"),
]
