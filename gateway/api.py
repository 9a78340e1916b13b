"""The HTTP API under ``/api``: publish, drive tasks, read metrics, alerts and task state.

For services that cannot use the Python library, and for dashboards. Writes take the same
checks and the same atomic Redis scripts as the publisher library (:mod:`shared.state`),
so a task driven over HTTP publishes exactly the events a Python task does. The routes
and their bodies are described at ``/api/openapi.json`` (see :mod:`gateway.api_schema`).

When ``api_key`` is set, every endpoint but the description needs
``Authorization: Bearer <api_key>``; when it is empty the API is open (development only,
and the gateway warns at start). :func:`authorized` is the one place that decides.

Errors are ``{"error": {"code": ..., "message": ...}}`` with status 400 (not JSON, an
unknown query parameter, a malformed cursor),
401 (no or wrong key), 404 (unknown task, alert or host), 409 (the change does not fit the
task's state), 413 (body too large), 422 (a malformed field) or 503 (Redis unreachable).
"""

from __future__ import annotations

import hmac
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
import redis.asyncio as aioredis
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import observe
from gateway.api_schema import (
    ApiError,
    PublishRequest,
    PublishResult,
    ResolveRequest,
    openapi_document,
)
from gateway.logsafe import printable
from gateway.node import node_of
from shared.broker import BrokerUnavailable
from shared.broker.redis_url import AsyncCommandClient, async_command_client, parse_redis_url
from shared.channels import InvalidChannel, check_channel
from shared.settings import Settings
from shared.state.alerts import AlertStore, UnknownAlert
from shared.state.hosts import read_host, read_hosts
from shared.state.task_query import InvalidCursor
from shared.state.task_store import TaskStore
from shared.state.tasks import (
    Cancel,
    Complete,
    Create,
    Fail,
    InvalidTask,
    Log,
    Pause,
    Progress,
    Resume,
    Start,
    TaskError,
    UnknownTask,
)

__all__ = ["Api", "authorized", "routes"]

log = logging.getLogger("relaycast.api")

T = TypeVar("T")
_S = TypeVar("_S")
Handler = Callable[[Request, "Api"], Awaitable[Any]]

ACTIONS: dict[str, type[Any]] = {
    "start": Start,
    "progress": Progress,
    "log": Log,
    "pause": Pause,
    "resume": Resume,
    "complete": Complete,
    "fail": Fail,
    "cancel": Cancel,
}
_encoder = msgspec.json.Encoder()
_ONE_SERVER = "{} need one Redis server or Sentinel; this gateway's Redis is a Redis Cluster"


class Api:
    """What the API needs at run time: settings, and Redis (None on the memory broker)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        if not settings.api_key:
            log.warning("RELAYCAST_API_KEY is empty: the HTTP API at /api is open to anyone")
        self.redis: AsyncCommandClient | None = None
        self._tasks: TaskStore | None = None
        self._alerts: AlertStore | None = None
        if not settings.redis_url.startswith("memory://"):
            self.redis = async_command_client(
                parse_redis_url(settings.redis_url), socket_connect_timeout=3, socket_timeout=5
            )
            if isinstance(self.redis, aioredis.Redis):  # one server, or Sentinel's primary
                self._tasks = TaskStore(self.redis, settings)
                self._alerts = AlertStore(self.redis, settings)

    def need_redis(self) -> AsyncCommandClient:
        if self.redis is None:
            raise _Fail(503, "unavailable", "this endpoint needs Redis; the gateway runs memory://")
        return self.redis

    def _one_server(self, store: _S | None, what: str) -> _S:
        """``store``, made only when Redis is one server (or Sentinel), else a 503."""
        self.need_redis()
        if store is None:
            raise _Fail(503, "unavailable", _ONE_SERVER.format(what))
        return store

    @property
    def tasks(self) -> TaskStore:
        return self._one_server(self._tasks, "tasks")

    @property
    def alerts(self) -> AlertStore:
        return self._one_server(self._alerts, "alerts")

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()


def authorized(request: Request) -> bool:
    """Whether ``request`` may use the API: always when no ``api_key`` is set, else only
    with ``Authorization: Bearer <api_key>`` (compared in constant time; never logged)."""
    key = node_of(request).settings.api_key
    if not key:
        return True
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), key.encode())


class _Fail(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _json(body: Any, status: int = 200) -> Response:
    return Response(_encoder.encode(body), status, media_type="application/json")


def _error(status: int, code: str, message: str) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    body = _encoder.encode({"error": ApiError(code=code, message=message)})
    return Response(body, status, headers=headers, media_type="application/json")


def _query_float(request: Request, name: str, expected: str, *, echo: bool = False) -> float | None:
    """Query parameter ``name`` as a finite number; None when absent or empty.

    Raises:
        _Fail: 422 ``{name} must be {expected}`` (and what came, with ``echo``).
    """
    raw = request.query_params.get(name, "")
    if raw == "":
        return None
    try:
        value = float(raw) if len(raw) <= 40 else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        got = f", got {raw[:40]!r}" if echo else ""
        raise _Fail(422, "invalid_query", f"{name} must be {expected}{got}")
    return value


def _response(result: Any) -> Response:
    return result if isinstance(result, Response) else _json(result)


def _redis_down(request: Request, exc: BrokerUnavailable) -> Response:
    """503, and a warning: an unreachable Redis is the operator's to fix, not the caller's."""
    log.warning("%s: redis unavailable: %s", printable(request.url.path), exc)
    return _error(503, "unavailable", "redis unavailable; try again")


def _endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Authorise, run ``handler``, and turn each failure into its JSON error."""

    async def endpoint(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "unauthorized", "send Authorization: Bearer <API key>")
        try:
            result = await handler(request, node_of(request).api)
        except _Fail as exc:
            return _error(exc.status, exc.code, exc.message)
        except UnknownTask as exc:
            return _error(404, exc.code, str(exc))
        except InvalidCursor as exc:
            return _error(400, exc.code, str(exc))
        except InvalidTask as exc:
            return _error(422, exc.code, str(exc))
        except TaskError as exc:
            return _error(409, exc.code, str(exc))
        except UnknownAlert as exc:
            return _error(404, "unknown_alert", str(exc))
        except InvalidChannel as exc:
            return _error(422, "invalid_channel", str(exc))
        except BrokerUnavailable as exc:
            return _redis_down(request, exc)
        return _response(result)

    return endpoint


async def _body(request: Request, kind: type[T], limit: int) -> T:
    """The request body decoded as ``kind``; an empty body is ``{}``."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        observe.LIMIT_HITS.labels("payload_size").inc()
        raise _Fail(413, "too_large", f"the body is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            observe.LIMIT_HITS.labels("payload_size").inc()
            raise _Fail(413, "too_large", f"the body is over {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks).strip() or b"{}"
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise _Fail(422, "invalid_body", f"invalid body: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise _Fail(400, "not_json", f"the body is not JSON: {exc}") from exc


def _limit(api: Api) -> int:
    return api.settings.max_payload_bytes + 16 * 1024


# --- handlers ----------------------------------------------------------------------------------


async def _publish(request: Request, api: Api) -> Any:
    body = await _body(request, PublishRequest, _limit(api))
    channel = check_channel(body.channel)
    data = bytes(body.data)
    if len(data) > api.settings.max_payload_bytes:
        observe.LIMIT_HITS.labels("payload_size").inc()
        raise _Fail(413, "too_large", f"data is over {api.settings.max_payload_bytes} bytes")
    hub = node_of(request).hub
    position = await hub.broker.publish(channel, data, hub.options(channel), time.time())
    return PublishResult(channel=channel, offset=position.offset, epoch=position.epoch)


async def _create_task(request: Request, api: Api) -> Any:
    change = await _body(request, Create, _limit(api))
    return _json(await api.tasks.create(change), 201)


async def _task_action(request: Request, api: Api) -> Any:
    action = request.path_params["action"]
    kind = ACTIONS.get(action)
    if kind is None:
        raise _Fail(404, "not_found", f"no task action {action!r}; use one of {', '.join(ACTIONS)}")
    change = await _body(request, kind, _limit(api))
    params = request.path_params
    return await api.tasks.change(params["project"], params["task_id"], change)


async def _get_task(request: Request, api: Api) -> Any:
    return await api.tasks.get(request.path_params["project"], request.path_params["task_id"])


async def _metrics(request: Request, api: Api) -> Any:
    redis = api.need_redis()
    hosts = await read_hosts(redis, api.settings.key_prefix)
    return {"time": time.time(), "hosts": {h: msgspec.Raw(raw) for h, raw in hosts.items()}}


async def _host_metrics(request: Request, api: Api) -> Any:
    redis = api.need_redis()
    host = request.path_params["host"]
    raw = await read_host(redis, api.settings.key_prefix, host)
    if raw is None:
        raise _Fail(404, "unknown_host", f"no metrics from host {host!r}")
    return msgspec.Raw(raw)


async def _alerts(request: Request, api: Api) -> Any:
    return await api.alerts.state()


async def _resolve_alert(request: Request, api: Api) -> Any:
    body = await _body(request, ResolveRequest, _limit(api))
    return await api.alerts.resolve_by_id(request.path_params["alert_id"], body.note)


async def _openapi(request: Request) -> Response:
    return _json(openapi_document())


routes = [
    Route("/api/openapi.json", _openapi, methods=["GET"]),
    Route("/api/publish", _endpoint(_publish), methods=["POST"]),
    Route("/api/tasks", _endpoint(_create_task), methods=["POST"]),
    Route("/api/tasks/{project}/{task_id}", _endpoint(_get_task), methods=["GET"]),
    Route("/api/tasks/{project}/{task_id}/{action}", _endpoint(_task_action), methods=["POST"]),
    Route("/api/metrics", _endpoint(_metrics), methods=["GET"]),
    Route("/api/metrics/{host}", _endpoint(_host_metrics), methods=["GET"]),
    Route("/api/alerts", _endpoint(_alerts), methods=["GET"]),
    Route("/api/alerts/{alert_id}/resolve", _endpoint(_resolve_alert), methods=["POST"]),
]
"""The API's routes, mounted by :func:`gateway.app.create_app`."""
