"""The HTTP API's own bodies, and its OpenAPI description built from the Structs.

Task and alert bodies are the Structs of :mod:`shared.state`; the few bodies that belong to
the API alone are here. :func:`openapi_document` turns them all into OpenAPI 3.1 (served
at ``/api/openapi.json``), so the description cannot drift from what the API decodes.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from shared.state.alerts import Alert, AlertsState
from shared.state.tasks import (
    Cancel,
    Complete,
    Create,
    Fail,
    Log,
    Pause,
    Progress,
    Resume,
    Start,
    TaskState,
)

__all__ = [
    "ApiError",
    "PublishRequest",
    "PublishResult",
    "ResolveRequest",
    "TaskList",
    "openapi_document",
]


class PublishRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Publish ``data`` (any JSON value) on ``channel``."""

    channel: str
    data: msgspec.Raw


class PublishResult(msgspec.Struct, kw_only=True):
    """Where the message went: its offset in the channel, and the channel's epoch."""

    channel: str
    offset: int
    epoch: str


class ResolveRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Resolve an alert by hand, with an optional note."""

    note: str | None = None


class TaskList(msgspec.Struct, kw_only=True):
    """A project's tasks, the most recently changed first."""

    project: str
    tasks: list[TaskState]


class ApiError(msgspec.Struct, kw_only=True):
    """The ``error`` member of every error response."""

    code: str
    message: str


class ErrorResponse(msgspec.Struct):
    error: ApiError


_ACTIONS: dict[str, tuple[type[Any], str]] = {
    "start": (Start, "Start a queued task, or a phase of a running workflow"),
    "progress": (Progress, "Report progress (percent and/or step)"),
    "log": (Log, "Add a log line"),
    "pause": (Pause, "Pause a running task"),
    "resume": (Resume, "Resume a paused task"),
    "complete": (Complete, "Complete the task (or a phase) with an optional result"),
    "fail": (Fail, "Fail the task (or a phase) with an error"),
    "cancel": (Cancel, "Cancel the task (or a phase)"),
}


def _ref(kind: type[Any]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{kind.__name__}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    meaning = {
        400: "The body is not JSON",
        401: "No or wrong API key",
        404: "No such task, alert or host",
        409: "The change does not fit the task's status, or the id is taken",
        413: "The body is too large",
        422: "A malformed field",
        503: "Redis cannot be reached",
    }
    return {str(c): _json(_ref(ErrorResponse), meaning[c]) for c in (401, *codes)}


def _path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of ``/api``."""
    kinds: list[type[Any]] = [
        PublishRequest,
        PublishResult,
        Create,
        TaskState,
        TaskList,
        Alert,
        AlertsState,
        ResolveRequest,
        ErrorResponse,
        *(kind for kind, _ in _ACTIONS.values()),
    ]
    _, components = msgspec.json.schema_components(
        kinds, ref_template="#/components/schemas/{name}"
    )
    project = _path("project", "Project id: 1-32 of A-Z a-z 0-9 _ -")
    task_id = _path("task_id", "Task id: 1-64 of A-Z a-z 0-9 _ -")
    snapshot = {"type": "object", "description": "A host snapshot (docs/publishers.md)"}
    paths: dict[str, Any] = {
        "/api/publish": {
            "post": {
                "summary": "Publish a message on a channel",
                "requestBody": _json(_ref(PublishRequest), "Channel and data"),
                "responses": {
                    "200": _json(_ref(PublishResult), "Published"),
                    **_errors(400, 413, 422, 503),
                },
            }
        },
        "/api/tasks": {
            "post": {
                "summary": "Create a task, or a workflow when phases are given",
                "requestBody": _json(_ref(Create), "The new task"),
                "responses": {
                    "201": _json(_ref(TaskState), "Created (queued)"),
                    **_errors(400, 409, 413, 422, 503),
                },
            }
        },
        "/api/tasks/{project}": {
            "get": {
                "summary": "State of a project's tasks, the most recently changed first",
                "parameters": [
                    project,
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    },
                ],
                "responses": {"200": _json(_ref(TaskList), "Tasks"), **_errors(422, 503)},
            }
        },
        "/api/tasks/{project}/{task_id}": {
            "get": {
                "summary": "State of one task",
                "parameters": [project, task_id],
                "responses": {"200": _json(_ref(TaskState), "Task"), **_errors(404, 422, 503)},
            }
        },
        "/api/metrics": {
            "get": {
                "summary": "The newest metrics snapshot of every host",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "time": {"type": "number"},
                                "hosts": {"type": "object", "additionalProperties": snapshot},
                            },
                        },
                        "Snapshots by host",
                    ),
                    **_errors(503),
                },
            }
        },
        "/api/metrics/{host}": {
            "get": {
                "summary": "The newest metrics snapshot of one host",
                "parameters": [_path("host", "Host name")],
                "responses": {"200": _json(snapshot, "Snapshot"), **_errors(404, 503)},
            }
        },
        "/api/alerts": {
            "get": {
                "summary": "Active alerts and the recently resolved ones",
                "responses": {"200": _json(_ref(AlertsState), "Alerts"), **_errors(503)},
            }
        },
        "/api/alerts/{alert_id}/resolve": {
            "post": {
                "summary": "Resolve an active alert by hand",
                "parameters": [_path("alert_id", "The alert's id")],
                "requestBody": _json(_ref(ResolveRequest), "Optional note"),
                "responses": {
                    "200": _json(_ref(Alert), "The resolved alert"),
                    **_errors(400, 404, 422, 503),
                },
            }
        },
    }
    for action, (kind, summary) in _ACTIONS.items():
        paths[f"/api/tasks/{{project}}/{{task_id}}/{action}"] = {
            "post": {
                "summary": summary,
                "parameters": [project, task_id],
                "requestBody": _json(_ref(kind), "The change"),
                "responses": {
                    "200": _json(_ref(TaskState), "The state after the change"),
                    **_errors(400, 404, 409, 413, 422, 503),
                },
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Relaycast API",
            "version": "1",
            "description": "Publish, drive tasks, read metrics, alerts and task state. "
            "Channels and events: docs/publishers.md.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"apiKey": []}],
    }
