"""The Node: one gateway process's parts, as one typed object every route reaches.

:func:`gateway.app.create_app` makes the :class:`Node` with the settings and the
admission policy, and the app's lifespan starts it (:meth:`Node.started`) with the hub
and the HTTP API, which need a running loop. Routes find it with :func:`node_of`; the
WebSocket protocol class, which uvicorn builds outside Starlette, gets the same object
from the lifespan state (``{"node": node}``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from shared.settings import Settings

if TYPE_CHECKING:
    from gateway.admission import Security
    from gateway.api import Api
    from gateway.hub import Hub

__all__ = ["Node", "node_of"]


class Node:
    """Settings, admission, and once started the hub and the HTTP API."""

    def __init__(self, settings: Settings, security: Security) -> None:
        self.settings = settings
        self.security = security
        self._hub: Hub | None = None
        self._api: Api | None = None

    def started(self, hub: Hub, api: Api | None = None) -> None:
        """The lifespan has built the hub (broker started) and the API (None: a tool that
        serves no HTTP API)."""
        self._hub, self._api = hub, api

    @property
    def hub(self) -> Hub:
        """The hub.

        Raises:
            RuntimeError: the app's lifespan has not run (serve it with lifespan on).
        """
        if self._hub is None:
            raise RuntimeError("the gateway has not started: its lifespan has not run")
        return self._hub

    @property
    def api(self) -> Api:
        """The HTTP API's run-time parts (same condition as :attr:`hub`)."""
        if self._api is None:
            raise RuntimeError("the gateway has not started: its lifespan has not run")
        return self._api


def node_of(where: HTTPConnection | Starlette) -> Node:
    """The node of the app serving ``where`` (a request or a WebSocket), or of the app."""
    app = where if isinstance(where, Starlette) else where.app
    return cast(Node, app.state.node)
