"""The HTTP API's own bodies, and its OpenAPI description built from the Structs.

Task and alert bodies are the Structs of :mod:`shared.state`; the few bodies that belong to
the API alone are here. :func:`openapi_document` turns them all into OpenAPI 3.1 (served
at ``/api/openapi.json``), so the description cannot drift from what the API decodes.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

import msgspec

from gateway.notifications_schema import NOTIFICATION_KINDS, notification_paths
from shared.state.alerts import Alert, AlertsState
from shared.state.task_log import LogPage
from shared.state.task_query import TaskStats
from shared.state.tasks import (
    Cancel,
    Complete,
    Create,
    Fail,
    GroupState,
    Log,
    Pause,
    Progress,
    Resume,
    Start,
    TaskState,
)

__all__ = [
    "CHANNEL_RULE",
    "PROJECT_RULE",
    "TASK_ID_RULE",
    "ApiError",
    "PublishRequest",
    "PublishResult",
    "ResolveRequest",
    "RevocationList",
    "RevokeToken",
    "RevokeUser",
    "RevokedToken",
    "RevokedUser",
    "TaskList",
    "UserRevoked",
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
    """A page of tasks (of one project, or of all when ``project`` is null), newest first;
    ``cursor`` fetches the next page (null: no more)."""

    project: str | None
    tasks: list[TaskState]
    cursor: str | None = None


class ApiError(msgspec.Struct, kw_only=True):
    """The ``error`` member of every error response."""

    code: str
    message: str


class ErrorResponse(msgspec.Struct):
    error: ApiError


# The naming rules of shared.channels and shared.state.tasks, as JSON Schema: a schema-driven
# client (or fuzzer) then makes only names the API takes. ECMA regexes: "$" is the end.
CHANNEL_RULE = {"type": "string", "pattern": "^[A-Za-z0-9_.:@-]{1,128}$", "minLength": 1,
                "maxLength": 128}  # fmt: skip
PROJECT_RULE = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,32}$", "minLength": 1,
                "maxLength": 32}  # fmt: skip
TASK_ID_RULE = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$", "minLength": 1,
                "maxLength": 64}  # fmt: skip

_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
_Time = Annotated[float, msgspec.Meta(ge=0, le=1e11)]  # Unix seconds


class RevokeToken(msgspec.Struct, forbid_unknown_fields=True):
    """Revoke one token by its ``jti``. ``expires`` is the token's ``exp``: the revocation
    is kept until then (default: a day)."""

    jti: _Id
    expires: _Time | None = None


class RevokeUser(msgspec.Struct, forbid_unknown_fields=True):
    """Revoke every token of user ``sub`` issued (``iat``) before ``issued_before``
    (default: now), and tokens of that user without ``iat``."""

    sub: _Id
    issued_before: _Time | None = None


class RevokedToken(msgspec.Struct, kw_only=True):
    """A token revocation in force, until ``expires``."""

    jti: str
    expires: float


class RevokedUser(msgspec.Struct, kw_only=True):
    """A user revocation in force: tokens issued before ``issued_before`` are refused."""

    sub: str
    issued_before: float


class UserRevoked(msgspec.Struct, kw_only=True):
    """Whether user ``sub`` is revoked after the call."""

    sub: str
    revoked: bool


class RevocationList(msgspec.Struct, kw_only=True):
    """Every revocation in force."""

    tokens: list[RevokedToken]
    users: list[RevokedUser]


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


def _required(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "required": True}


def _errors(*codes: int) -> dict[str, Any]:
    meaning = {
        400: "The body is not JSON, an unknown query parameter, or a malformed cursor",
        401: "No or wrong API key",
        404: "No such task, alert, host, series or revocation",
        409: "The change does not fit the task's status, or the id is taken",
        413: "The body is too large",
        422: "A malformed field",
        503: "Redis cannot be reached",
    }
    return {str(c): _json(_ref(ErrorResponse), meaning[c]) for c in (401, *codes)}


def _path(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": schema or {"type": "string", "minLength": 1},
        "description": description,
    }


def _apply_rules(components: dict[str, Any]) -> None:
    """Write the naming rules into the bodies that carry a channel, project or task id."""
    components["PublishRequest"]["properties"]["channel"] = CHANNEL_RULE
    create = components["Create"]["properties"]
    create["project"] = PROJECT_RULE
    create["id"] = {**TASK_ID_RULE, "pattern": "^[A-Za-z0-9_-]{0,64}$", "minLength": 0,
                    "description": "Empty: a random id"}  # fmt: skip


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of ``/api``."""
    # They build on the helpers here.
    from gateway.metrics_schema import METRICS_KINDS, apply_metrics_rules, metrics_paths
    from gateway.task_api_schema import task_query_paths

    kinds: list[type[Any]] = [
        PublishRequest,
        PublishResult,
        Create,
        TaskState,
        TaskList,
        TaskStats,
        LogPage,
        GroupState,
        Alert,
        AlertsState,
        ResolveRequest,
        ErrorResponse,
        RevokeToken,
        RevokeUser,
        RevokedToken,
        RevokedUser,
        UserRevoked,
        RevocationList,
        *(kind for kind, _ in _ACTIONS.values()),
        *NOTIFICATION_KINDS,
        *METRICS_KINDS,
    ]
    _, components = msgspec.json.schema_components(
        kinds, ref_template="#/components/schemas/{name}"
    )
    _apply_rules(components)
    apply_metrics_rules(components)
    project = _path("project", "Project id: 1-32 of A-Z a-z 0-9 _ -", PROJECT_RULE)
    task_id = _path("task_id", "Task id: 1-64 of A-Z a-z 0-9 _ -", TASK_ID_RULE)
    user = _path("sub", "A user (a token's sub)", {"type": "string", "minLength": 1,
                 "maxLength": 256})  # fmt: skip
    snapshot = {"type": "object", "description": "A host snapshot (docs/publishers.md)"}
    paths: dict[str, Any] = {
        "/api/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")},
            }
        },
        "/api/publish": {
            "post": {
                "summary": "Publish a message on a channel",
                "requestBody": _required(_json(_ref(PublishRequest), "Channel and data")),
                "responses": {
                    "200": _json(_ref(PublishResult), "Published"),
                    **_errors(400, 413, 422, 503),
                },
            }
        },
        "/api/tasks": {
            "post": {
                "summary": "Create a task, or a workflow when phases are given",
                "requestBody": _required(_json(_ref(Create), "The new task")),
                "responses": {
                    "201": _json(_ref(TaskState), "Created (queued)"),
                    **_errors(400, 409, 413, 422, 503),
                },
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
        **_revocation_paths(user),
        **notification_paths(project, task_id, _path, _json, _ref, _errors),
    }
    for path, operations in [
        *task_query_paths(project, task_id).items(),
        *metrics_paths().items(),
    ]:
        paths.setdefault(path, {}).update(operations)  # GET beside POST /api/tasks, ...
    for action, (kind, summary) in _ACTIONS.items():
        paths.setdefault(f"/api/tasks/{{project}}/{{task_id}}/{action}", {}).update(
            {
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
        )
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


def _revocation_paths(user: dict[str, Any]) -> dict[str, Any]:
    """``/api/revocations`` and ``/api/users/{sub}/disconnect`` (gateway.revocation_api)."""
    return {
        "/api/revocations": {
            "get": {
                "summary": "Every revocation in force",
                "responses": {"200": _json(_ref(RevocationList), "Revocations"), **_errors(503)},
            }
        },
        "/api/revocations/tokens": {
            "post": {
                "summary": "Revoke one token by its jti, on every gateway within a second",
                "requestBody": _required(_json(_ref(RevokeToken), "The token's jti and exp")),
                "responses": {
                    "200": _json(_ref(RevokedToken), "Revoked"),
                    **_errors(400, 413, 422, 503),
                },
            }
        },
        "/api/revocations/users": {
            "post": {
                "summary": "Revoke a user's tokens issued before a time (default now); their"
                " open connections close with 4501 within a second",
                "requestBody": _required(_json(_ref(RevokeUser), "The user and the time")),
                "responses": {
                    "200": _json(_ref(RevokedUser), "Revoked"),
                    **_errors(400, 413, 422, 503),
                },
            }
        },
        "/api/revocations/users/{sub}": {
            "delete": {
                "summary": "Lift a user's revocation",
                "parameters": [user],
                "responses": {
                    "200": _json(_ref(UserRevoked), "Lifted"),
                    **_errors(404, 422, 503),
                },
            }
        },
        "/api/users/{sub}/disconnect": {
            "post": {
                "summary": "Disconnect every connection of a user on every gateway (4501),"
                " revoking the tokens issued until now",
                "parameters": [user],
                "responses": {"200": _json(_ref(RevokedUser), "Disconnected"), **_errors(422, 503)},
            }
        },
    }
