"""Prometheus metrics, and the health and readiness endpoints.

Labels never carry a client or channel id: only bounded sets such as a reason.

Under ``relaycast gateway --workers N`` every worker keeps its samples in the set's
directory (prometheus-client's multiprocess mode, chosen when the module is imported), and
``/metrics`` and ``/readyz`` answer for the whole set whichever worker serves the request:
counters and connection gauges are summed, and the set is ready when every worker is.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway import http_guard
from gateway.node import Node, node_of
from gateway.sink import SessionMetrics
from gateway.workerset import METRICS_ENV, WorkerSlot, WorkerState
from shared.protocol import ErrorCode

REGISTRY = CollectorRegistry(auto_describe=True)


def _counter(name: str, documentation: str, *labels: str) -> Counter:
    return Counter(name, documentation, labels, registry=REGISTRY)


SLOT = WorkerSlot.from_environment()
"""This worker's place in a set of workers; None for a gateway of one process."""

CONNECTIONS = Gauge(
    "relaycast_connections",
    "Open client connections",
    ["transport"],
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
SUBSCRIPTIONS = Gauge(
    "relaycast_subscriptions",
    "Client subscriptions held",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
CHANNELS = Gauge(
    "relaycast_channels",
    "Channels this gateway is subscribed to in the broker (summed over workers)",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
BROKER_MESSAGES = _counter("relaycast_broker_messages", "Publications received from the broker")
FRAMES_SENT = _counter("relaycast_frames_sent", "Frames written to clients")
BYTES_SENT = _counter("relaycast_bytes_sent", "Bytes of frames written to clients")
OUTBOX_DROPS = _counter("relaycast_outbox_drops", "Queued frames dropped, by reason", "reason")
SLOW_DISCONNECTS = _counter(
    "relaycast_slow_client_disconnects", "Clients closed with 4001 because their outbox filled"
)
DISCONNECTS = _counter(
    "relaycast_disconnects", "Connections closed by the gateway, by close code", "code"
)
ERRORS = _counter("relaycast_client_errors", "Error frames sent to clients, by code", "code")
BROKER_RECONNECTS = _counter("relaycast_broker_reconnects", "Times the broker link dropped")
REPLAYED = _counter("relaycast_replayed_messages", "Messages replayed from history")
RESUMES = _counter("relaycast_resumes", "Subscribes with a position, by outcome", "outcome")
GAP_FILLS = _counter(
    "relaycast_gap_fills", "Channel resyncs from history after a broker gap, by outcome", "outcome"
)
LIMIT_HITS = _counter(
    "relaycast_limit_hits",
    "Connections refused or closed, and requests refused, by the limit they hit",
    "limit",
)
AUTH_REFUSALS = _counter(
    "relaycast_auth_refusals",
    "Tokens, tickets, origins and subscribes refused, by reason",
    "reason",
)
REVOCATIONS = _counter(
    "relaycast_revocations",
    "Revocations recorded through this gateway's API, by kind (token, user)",
    "kind",
)
REVOKED_CONNECTIONS = _counter(
    "relaycast_revoked_connections",
    "Open connections closed because their token was revoked, by kind (token, user)",
    "kind",
)
LATENCY = Histogram(
    "relaycast_publish_to_send_seconds",
    "Seconds from publish to the write of a frame to a client (the oldest frame of each batch"
    " of writes: one write, or on WebSocket every write of one loop iteration)",
    # Fine between 5 and 50 ms, where a fan-out to thousands of clients lands.
    buckets=(
        0.001,
        0.0025,
        0.005,
        0.0075,
        0.01,
        0.015,
        0.02,
        0.025,
        0.03,
        0.04,
        0.05,
        0.075,
        0.1,
        0.25,
        0.5,
        1,
        2.5,
        5,
        10,
    ),
    registry=REGISTRY,
)


def _exposed() -> CollectorRegistry:
    """What ``/metrics`` shows: this process's registry, or the whole set's samples."""
    if SLOT is None or not os.environ.get(METRICS_ENV):
        return REGISTRY
    combined = CollectorRegistry()
    MultiProcessCollector(combined, os.environ[METRICS_ENV])  # type: ignore[no-untyped-call]
    return combined


EXPOSED = _exposed()


async def metrics(request: Request) -> Response:
    return Response(generate_latest(EXPOSED), media_type=CONTENT_TYPE_LATEST)


async def healthz(request: Request) -> Response:
    """Alive: the event loop answers. Says nothing about Redis (that is readiness)."""
    return JSONResponse({"status": "ok", "gateway": node_of(request).settings.gateway_id})


def own_state(node: Node) -> WorkerState:
    """This process's readiness: the broker link is up and it is not draining."""
    hub = node.hub
    return WorkerState(
        gateway=node.settings.gateway_id,
        pid=os.getpid(),
        ready=hub.broker.up and not hub.draining,
        broker="up" if hub.broker.up else "down",
        draining=hub.draining,
        connections=len(hub.sessions),
    )


async def readyz(request: Request) -> Response:
    """Ready to deliver right now: the broker link is up and the gateway is not draining.

    In a set of workers, every worker must be: the kernel hands new connections to any of
    them, so one that cannot deliver takes the whole port out of the load balancer's pool.
    ``gateway`` and ``connections`` are the answering worker's own; ``workers`` lists each.
    """
    node = node_of(request)
    state = own_state(node)
    body: dict[str, object] = {
        "ready": state.ready,
        "broker": state.broker,
        "draining": state.draining,
        "gateway": state.gateway,
        "connections": state.connections,
        "pending_connections": http_guard.PENDING.count,  # no whole request yet
    }
    if SLOT is not None:
        peers = SLOT.peers()
        peers[SLOT.index] = state
        body["ready"] = all(peer.ready for peer in peers.values())
        body["workers"] = [
            {
                "gateway": peer.gateway,
                "pid": peer.pid,
                "ready": peer.ready,
                "broker": peer.broker,
                "draining": peer.draining,
                "connections": peer.connections,
            }
            for _, peer in sorted(peers.items())
        ]
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


class PrometheusSessionMetrics:
    """The sessions' :class:`~gateway.sink.SessionMetrics`, counted in :data:`REGISTRY`."""

    def error_sent(self, code: ErrorCode) -> None:
        ERRORS.labels(code).inc()

    def limit_hit(self, limit: str) -> None:
        LIMIT_HITS.labels(limit).inc()

    def auth_refused(self, reason: str) -> None:
        AUTH_REFUSALS.labels(reason).inc()

    def slow_disconnect(self) -> None:
        SLOW_DISCONNECTS.inc()

    def conflated(self, frames: int) -> None:
        OUTBOX_DROPS.labels("conflated").inc(frames)


SESSION_METRICS: SessionMetrics = PrometheusSessionMetrics()
"""What every transport gives its sessions."""
