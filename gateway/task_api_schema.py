"""The OpenAPI description of the task query endpoints (:mod:`gateway.task_api`), part of
the document :func:`gateway.api_schema.openapi_document` serves."""

from __future__ import annotations

from typing import Any

from gateway.api_schema import TASK_ID_RULE, TaskList, _errors, _json, _path, _ref
from shared.state.task_log import LogPage
from shared.state.task_query import TaskStats
from shared.state.tasks import LOG_LEVELS, GroupState, TaskState, TaskStatus

__all__ = ["task_query_paths"]


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, "description": description}


def task_query_paths(project: dict[str, Any], task_id: dict[str, Any]) -> dict[str, Any]:
    """The task query endpoints (gateway.task_api)."""
    text = {"type": "string", "minLength": 1, "maxLength": 200}
    seconds = {"type": "number", "minimum": 0, "maximum": 1e11}
    tag = {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,64}$"}
    cursor = {"type": "string", "description": "Opaque: only what a page gave (else 400)"}
    limit = {"type": "integer", "minimum": 1, "maximum": 1000}
    filters = [
        _query("status", "Only tasks with this status", {"enum": [s.value for s in TaskStatus]}),
        _query("type", "Only tasks of this type", text),
        _query("owner", "Only tasks of this owner", text),
        _query("tag", "Only tasks with this tag", tag),
        _query("since", "Sort time (Unix seconds) at or after", seconds),
        _query("until", "Sort time (Unix seconds) at or before", seconds),
        _query("sort", "Newest first by creation or by last change (default: created; "
               "updated for one project)", {"enum": ["created", "updated"]}),
        _query("limit", "Tasks per page (default 50)", limit),
        _query("cursor", "The cursor of the page before", cursor),
    ]  # fmt: skip
    window = [
        _query("window", "The last hour, day (default) or week", {"enum": ["hour", "day", "week"]}),
        _query("since", "Window start (Unix seconds); overrides window", seconds),
        _query("until", "Window end (Unix seconds; default now)", seconds),
    ]
    listing = _json(_ref(TaskList), "A page of tasks and the next page's cursor")
    stats = _json(_ref(TaskStats), "Statistics")
    group = _path("group", "Group id: 1-64 of A-Z a-z 0-9 _ -", TASK_ID_RULE)
    return {
        "/api/tasks": {
            "get": {
                "summary": "Tasks of every project, filtered, newest first, paged",
                "parameters": filters,
                "responses": {"200": listing, **_errors(400, 422, 503)},
            },
        },
        "/api/tasks/{project}": {
            "get": {
                "summary": "One project's tasks, filtered, newest first, paged",
                "parameters": [project, *filters],
                "responses": {"200": listing, **_errors(400, 422, 503)},
            }
        },
        "/api/tasks/{project}/{task_id}": {
            "get": {
                "summary": "State of one task",
                "parameters": [project, task_id],
                "responses": {"200": _json(_ref(TaskState), "Task"), **_errors(404, 422, 503)},
            },
            "delete": {
                "summary": "Delete a task: its state, log, index entries and statistics; "
                "task.deleted is published on its channels",
                "parameters": [project, task_id],
                "responses": {
                    "200": _json(_ref(TaskState), "The task's last state"),
                    **_errors(404, 422, 503),
                },
            },
        },
        "/api/tasks/{project}/{task_id}/log": {
            "get": {
                "summary": "A task's kept log, newest first, paged",
                "parameters": [
                    project,
                    task_id,
                    _query("level", "This level and above", {"enum": list(LOG_LEVELS)}),
                    _query("search", "Lines containing this (case-insensitive)", text),
                    _query("limit", "Lines per page (default 100)", limit),
                    _query("cursor", "The cursor of the page before", cursor),
                ],
                "responses": {
                    "200": _json(_ref(LogPage), "Lines"),
                    **_errors(400, 404, 422, 503),
                },
            }
        },
        "/api/task-stats": {
            "get": {
                "summary": "Statistics of every project's tasks over a window",
                "parameters": window,
                "responses": {"200": stats, **_errors(400, 422, 503)},
            }
        },
        "/api/task-stats/{project}": {
            "get": {
                "summary": "Statistics of one project's tasks over a window",
                "parameters": [project, *window],
                "responses": {"200": stats, **_errors(400, 422, 503)},
            }
        },
        "/api/task-groups/{project}/{group}": {
            "get": {
                "summary": "A group's aggregate progress",
                "parameters": [project, group],
                "responses": {
                    "200": _json(_ref(GroupState), "The group"),
                    **_errors(404, 422, 503),
                },
            }
        },
    }
