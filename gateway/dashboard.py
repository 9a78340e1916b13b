"""The dashboard page and the browser client, served by every gateway: no front-end server.

GET /                 the dashboard (static/dashboard/index.html)
GET /static/sdk/*     the browser client: relaycast.js and its links, relaycast-shared.js,
                      the shared worker, and their .d.ts types
GET /static/dashboard/*  the dashboard's scripts and styles, vendored uPlot
GET /gateway          {"gateway": ID, "ready": BOOL}: which gateway answers, for the
                      connection indicator; SSE and polling clients time it for latency
GET /dashboard/config {"gateways": [ORIGIN, ...]}: the gateways besides this one that the
                      dashboard may connect to with its token (RELAYCAST_DASHBOARD_GATEWAYS).
                      A link can name any URL in ``?gateways=``; the page connects only to
                      its own origin and these, so a crafted link cannot send the token
                      kept in the browser to a server of the link author's choosing.

The client used to live at /static/relaycast.js (and -shared.js, -worker.js, .d.ts);
those URLs answer with a permanent redirect into /static/sdk/, so pages that import the
old path keep working, and a redirected module resolves its own imports from sdk/.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.node import node_of
from gateway.transports.httpbase import CORS

__all__ = ["STATIC", "routes"]

STATIC = Path(__file__).resolve().parent / "static"
SDK_FILES = (
    "relaycast.js",
    "relaycast.d.ts",
    "relaycast-shared.js",
    "relaycast-shared.d.ts",
    "relaycast-worker.js",
)
"""The client's files, once served at /static/<name>, now at /static/sdk/<name>."""


async def index(request: Request) -> Response:
    return FileResponse(STATIC / "dashboard" / "index.html", headers={"cache-control": "no-cache"})


async def whoami(request: Request) -> Response:
    node = node_of(request)
    hub = node.hub
    body = {
        "gateway": node.settings.gateway_id,
        "ready": hub.broker.up and not hub.draining,
    }
    return JSONResponse(body, headers={**CORS, "cache-control": "no-store"})


async def dashboard_config(request: Request) -> Response:
    body = {"gateways": node_of(request).settings.dashboard_origins()}
    return JSONResponse(body, headers={"cache-control": "no-store"})


def _moved(name: str) -> Route:
    async def redirect(request: Request) -> Response:
        return RedirectResponse(f"/static/sdk/{name}", status_code=308)

    return Route(f"/static/{name}", redirect)


routes: list[BaseRoute] = [
    Route("/", index),
    Route("/gateway", whoami),
    Route("/dashboard/config", dashboard_config),
    *(_moved(name) for name in SDK_FILES),
    Mount("/static", StaticFiles(directory=STATIC), name="static"),
]
