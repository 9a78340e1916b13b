"""The task query endpoints of the HTTP API (API key required, like all of ``/api``).

    GET    /api/tasks                         tasks of every project, filtered and paged
    GET    /api/tasks/{project}               one project's tasks, filtered and paged
    DELETE /api/tasks/{project}/{task_id}     delete a task, its log and index entries
    GET    /api/tasks/{project}/{task_id}/log a task's log: level, search, paging
    GET    /api/task-stats                    statistics of every project over a window
    GET    /api/task-stats/{project}          statistics of one project over a window
    GET    /api/task-groups/{project}/{group} a group's aggregate progress

Query parameters are checked strictly: an unknown one is a 400 (``unknown_parameter``)
naming the ones allowed, so a misspelt filter never silently returns everything. The
reads themselves are :mod:`shared.state.task_query`.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from gateway.api import Api, Handler, _endpoint, _Fail
from gateway.api_schema import TaskList
from gateway.logsafe import printable
from shared.state.task_query import WINDOWS, TaskQuery, window_bounds
from shared.state.tasks import LOG_LEVELS, TaskError, TaskStatus

__all__ = ["LIST_PARAMETERS", "LOG_PARAMETERS", "STATS_PARAMETERS", "routes"]

log = logging.getLogger("relaycast.api")

LIST_PARAMETERS = ("status", "type", "owner", "tag", "since", "until", "sort", "limit", "cursor")
LOG_PARAMETERS = ("level", "search", "limit", "cursor")
STATS_PARAMETERS = ("window", "since", "until")


def _params(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query parameters, refusing any not in ``allowed`` (and repeated ones)."""
    params: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name not in allowed:
            raise _Fail(
                400,
                "unknown_parameter",
                f"unknown query parameter {name[:40]!r}; use {', '.join(allowed)}",
            )
        if name in params:
            raise _Fail(400, "repeated_parameter", f"query parameter {name!r} is given twice")
        params[name] = value
    return params


def _number(params: dict[str, str], name: str) -> float | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        value = float(raw) if len(raw) <= 32 else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 <= value <= 1e11:
        raise _Fail(422, "invalid_query", f"{name} must be Unix seconds, got {raw[:40]!r}")
    return value


def _limit(params: dict[str, str], default: int) -> int:
    raw = params.get("limit", str(default))
    # ASCII digits only, at most 4 of them before int() runs.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 4) or not 1 <= int(raw) <= 1000:
        raise _Fail(422, "invalid_query", "limit must be a whole number in 1-1000")
    return int(raw)


def _query(request: Request, project: str | None, sort: str) -> TaskQuery:
    p = _params(request, LIST_PARAMETERS)
    status = p.get("status")
    if status is not None and status not in TaskStatus.__members__.values():
        names = ", ".join(s.value for s in TaskStatus)
        raise _Fail(422, "invalid_query", f"status must be one of {names}, got {status[:40]!r}")
    sort = p.get("sort", sort)
    if sort not in ("created", "updated"):
        raise _Fail(422, "invalid_query", f"sort must be created or updated, got {sort[:40]!r}")
    return TaskQuery(
        project=project,
        status=None if status is None else TaskStatus(status),
        type=p.get("type") or None,
        owner=p.get("owner") or None,
        tag=p.get("tag") or None,
        since=_number(p, "since"),
        until=_number(p, "until"),
        sort="created" if sort == "created" else "updated",
        limit=_limit(p, 50),
        cursor=p.get("cursor") or None,
    )


async def _all_tasks(request: Request, api: Api) -> Any:
    page = await api.tasks.query(_query(request, None, "created"))
    return TaskList(project=None, tasks=page.tasks, cursor=page.cursor)


async def _project_tasks(request: Request, api: Api) -> Any:
    project = request.path_params["project"]
    page = await api.tasks.query(_query(request, project, "updated"))
    return TaskList(project=project, tasks=page.tasks, cursor=page.cursor)


async def _delete_task(request: Request, api: Api) -> Any:
    return await api.tasks.delete(request.path_params["project"], request.path_params["task_id"])


async def _task_log(request: Request, api: Api) -> Any:
    p = _params(request, LOG_PARAMETERS)
    level = p.get("level")
    if level is not None and level not in LOG_LEVELS:
        levels = ", ".join(LOG_LEVELS)
        raise _Fail(422, "invalid_query", f"level must be one of {levels}, got {level[:40]!r}")
    search = p.get("search") or None
    if search is not None and len(search) > 200:
        raise _Fail(422, "invalid_query", "search is at most 200 characters")
    params = request.path_params
    return await api.tasks.log(
        params["project"],
        params["task_id"],
        level=level,
        search=search,
        limit=_limit(p, 100),
        cursor=p.get("cursor") or None,
    )


async def _stats(request: Request, api: Api) -> Any:
    p = _params(request, STATS_PARAMETERS)
    window = p.get("window", "day")
    since, until = _number(p, "since"), _number(p, "until")
    if since is None and until is None and window not in WINDOWS:
        names = ", ".join(WINDOWS)
        raise _Fail(422, "invalid_query", f"window must be one of {names}, got {window[:40]!r}")
    since, until = window_bounds(window, since, until)
    return await api.tasks.stats(request.path_params.get("project"), since, until)


async def _group(request: Request, api: Api) -> Any:
    return await api.tasks.group(request.path_params["project"], request.path_params["group"])


def _logged(handler: Handler) -> Handler:
    """``handler``, logging each refusal (a bad filter, cursor, unknown task) in one line."""

    async def run(request: Request, api: Api) -> Any:
        try:
            return await handler(request, api)
        except (_Fail, TaskError) as exc:
            path = printable(request.url.path)
            log.info("%s %s refused: %s", request.method, path, printable(str(exc)))
            raise

    return run


def _route(path: str, handler: Handler, method: str) -> Route:
    return Route(path, _endpoint(_logged(handler)), methods=[method])


routes = [
    _route("/api/tasks", _all_tasks, "GET"),
    _route("/api/tasks/{project}", _project_tasks, "GET"),
    _route("/api/tasks/{project}/{task_id}", _delete_task, "DELETE"),
    _route("/api/tasks/{project}/{task_id}/log", _task_log, "GET"),
    _route("/api/task-stats", _stats, "GET"),
    _route("/api/task-stats/{project}", _stats, "GET"),
    _route("/api/task-groups/{project}/{group}", _group, "GET"),
]
"""The task query routes, mounted by :func:`gateway.app.create_app`."""
