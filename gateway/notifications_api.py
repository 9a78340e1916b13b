"""The notification endpoints of the HTTP API.

    POST   /api/notifications                                  notify a user (API key)
    GET    /api/notifications/users/{user}?limit&unread        a user's notifications
    GET    /api/notifications/users/{user}/unread              how many are unread
    POST   /api/notifications/users/{user}/read                mark every one read
    POST   /api/notifications/users/{user}/{id}/read           mark one read
    DELETE /api/notifications/users/{user}/{id}                delete one
    GET|PUT /api/notifications/projects/{project}/rule         who is told when tasks end
    PUT    /api/notifications/projects/{project}/tasks/{id}/rule   the same, one task
    GET|PUT /api/notifications/projects/{project}/sinks        webhook, Slack, email sinks
    GET    /api/notifications/projects/{project}/deliveries    each delivery's status

The ``users/{user}`` endpoints take the API key, or a connection token (the same JWT a
client connects with) whose ``sub`` is that user: a user reads and marks only their own.
Everything else takes the API key. A webhook URL is checked against the operator's
allow-list (:mod:`shared.destinations`) before it is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.access import TokenError
from gateway.api import (
    Api,
    _body,
    _error,
    _Fail,
    _json,
    _limit,
    _redis_down,
    _response,
    authorized,
)
from gateway.logsafe import printable
from gateway.node import node_of
from shared.broker import BrokerUnavailable
from shared.destinations import DestinationRefused, Destinations
from shared.state.notification_store import NotificationStore
from shared.state.notifications import (
    DeliveryList,
    NewNotification,
    NotificationError,
    NotificationList,
    NotifyRule,
    SinkList,
    check_user,
)
from shared.state.tasks import TaskError

__all__ = ["routes"]

log = logging.getLogger("relaycast.api")

Handler = Callable[[Request, NotificationStore], Awaitable[Any]]


def _store(api: Api) -> NotificationStore:
    """The store over the API's Redis (503 on memory:// and Redis Cluster, as for tasks);
    cheap to make: its scripts are loaded into Redis once, by hash."""
    return NotificationStore(api.tasks.redis, api.settings)


def _is_user(request: Request) -> bool:
    """Whether the request carries a valid token of the user its path names."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    try:
        grant = node_of(request).security.guard.verify(token.strip())
    except TokenError:
        return False
    return bool(grant.user) and grant.user == request.path_params.get("user")


def _refused(request: Request, exc: NotificationError | TaskError) -> Response:
    """The error for a request the store refused (a rule or sink it checks, through tasks)."""
    if isinstance(exc, TaskError):
        return _error(422, "invalid_notification", str(exc))
    log.info("%s: %s", printable(request.url.path), printable(str(exc)))
    return _error(404 if isinstance(exc, LookupError) else 422, exc.code, str(exc))


def _endpoint(handler: Handler, *, user: bool = False) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        if not authorized(request) and not (user and _is_user(request)):
            message = "send Authorization: Bearer <API key>" + (
                " or a token of this user" if user else ""
            )
            return _error(401, "unauthorized", message)
        try:
            result = await handler(request, _store(node_of(request).api))
        except _Fail as exc:
            return _error(exc.status, exc.code, exc.message)
        except (NotificationError, TaskError) as exc:
            return _refused(request, exc)
        except BrokerUnavailable as exc:
            return _redis_down(request, exc)
        return _response(result)

    return endpoint


def _limit_query(request: Request, default: int = 50) -> int:
    raw = request.query_params.get("limit", str(default))
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 4) or not 1 <= int(raw) <= 1000:
        raise _Fail(422, "invalid_query", "limit must be a whole number in 1-1000")
    return int(raw)


def _user(request: Request) -> str:
    return check_user(request.path_params["user"])


async def _create(request: Request, store: NotificationStore) -> Any:
    new = await _body(request, NewNotification, _limit(node_of(request).api))
    return _json(await store.create(new), 201)


async def _list(request: Request, store: NotificationStore) -> Any:
    user = _user(request)
    unread_only = request.query_params.get("unread", "") in ("1", "true")
    notes = await store.notifications(user, _limit_query(request), unread_only)
    return NotificationList(user=user, unread=await store.unread(user), notifications=notes)


async def _unread(request: Request, store: NotificationStore) -> Any:
    user = _user(request)
    return {"user": user, "unread": await store.unread(user)}


async def _read_all(request: Request, store: NotificationStore) -> Any:
    user = _user(request)
    return {"user": user, "unread": await store.mark_read(user)}


async def _read_one(request: Request, store: NotificationStore) -> Any:
    user = _user(request)
    return {"user": user, "unread": await store.mark_read(user, request.path_params["id"])}


async def _delete(request: Request, store: NotificationStore) -> Any:
    user = _user(request)
    return {"user": user, "unread": await store.delete(user, request.path_params["id"])}


async def _get_rule(request: Request, store: NotificationStore) -> Any:
    return await store.rule(request.path_params["project"])


async def _set_rule(request: Request, store: NotificationStore) -> Any:
    rule = await _body(request, NotifyRule, _limit(node_of(request).api))
    params = request.path_params
    await store.set_rule(params["project"], rule, params.get("task_id"))
    return rule


async def _get_sinks(request: Request, store: NotificationStore) -> Any:
    sinks = await store.sinks(request.path_params["project"])
    for sink in sinks.sinks:
        sink.secret = None if sink.secret is None else "***"  # set, but never shown again
    return sinks


async def _set_sinks(request: Request, store: NotificationStore) -> Any:
    sinks = await _body(request, SinkList, _limit(node_of(request).api))
    allowed = Destinations(store.settings.notify_destinations)
    for sink in sinks.sinks:
        sink.check()
        if sink.url is not None:
            try:
                await allowed.check(sink.url, store.settings.notify_timeout)
            except DestinationRefused as exc:
                log.warning("sink %r refused: %s", sink.name, printable(str(exc)))
                raise _Fail(422, "refused_destination", f"sink {sink.name!r}: {exc}") from exc
    await store.set_sinks(request.path_params["project"], sinks)
    return await _get_sinks(request, store)


async def _deliveries(request: Request, store: NotificationStore) -> Any:
    project = request.path_params["project"]
    deliveries = await store.deliveries(project, _limit_query(request, 100))
    return DeliveryList(project=project, deliveries=deliveries)


_USERS = "/api/notifications/users/{user}"
_PROJECTS = "/api/notifications/projects/{project}"

routes = [
    Route("/api/notifications", _endpoint(_create), methods=["POST"]),
    Route(_USERS, _endpoint(_list, user=True), methods=["GET"]),
    Route(_USERS + "/unread", _endpoint(_unread, user=True), methods=["GET"]),
    Route(_USERS + "/read", _endpoint(_read_all, user=True), methods=["POST"]),
    Route(_USERS + "/{id}/read", _endpoint(_read_one, user=True), methods=["POST"]),
    Route(_USERS + "/{id}", _endpoint(_delete, user=True), methods=["DELETE"]),
    Route(_PROJECTS + "/rule", _endpoint(_get_rule), methods=["GET"]),
    Route(_PROJECTS + "/rule", _endpoint(_set_rule), methods=["PUT"]),
    Route(_PROJECTS + "/tasks/{task_id}/rule", _endpoint(_set_rule), methods=["PUT"]),
    Route(_PROJECTS + "/sinks", _endpoint(_get_sinks), methods=["GET"]),
    Route(_PROJECTS + "/sinks", _endpoint(_set_sinks), methods=["PUT"]),
    Route(_PROJECTS + "/deliveries", _endpoint(_deliveries), methods=["GET"]),
]
"""Mounted by :func:`gateway.app.create_app`."""
