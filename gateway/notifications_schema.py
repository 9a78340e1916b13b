"""The OpenAPI description of the notification endpoints (:mod:`gateway.notifications_api`),
built from the Structs of :mod:`shared.state.notifications` like the rest of the API's."""

from __future__ import annotations

from typing import Any

from shared.state.notifications import (
    DeliveryList,
    NewNotification,
    Notification,
    NotificationList,
    NotifyRule,
    SinkList,
)

__all__ = ["NOTIFICATION_KINDS", "USER_RULE", "notification_paths"]

NOTIFICATION_KINDS: tuple[type[Any], ...] = (
    NewNotification,
    Notification,
    NotificationList,
    NotifyRule,
    SinkList,
    DeliveryList,
)
USER_RULE = {"type": "string", "pattern": "^[A-Za-z0-9_.@-]{1,64}$", "minLength": 1,
             "maxLength": 64}  # fmt: skip
_UNREAD = {
    "type": "object",
    "properties": {"user": {"type": "string"}, "unread": {"type": "integer"}},
}


def notification_paths(
    project: dict[str, Any],
    task_id: dict[str, Any],
    path: Any,
    json: Any,
    ref: Any,
    errors: Any,
) -> dict[str, Any]:
    """The paths, given :mod:`gateway.api_schema`'s helpers (``path``, ``json``, ``ref``,
    ``errors``) and its ``project`` and ``task_id`` parameters."""
    user = path("user", "A user id (a token's sub): 1-64 of A-Z a-z 0-9 _ - . @", USER_RULE)
    note = path("id", "A notification's id", {"type": "string", "minLength": 1, "maxLength": 64})
    limit = {"name": "limit", "in": "query",
             "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}  # fmt: skip
    unread = {"name": "unread", "in": "query", "schema": {"type": "string", "enum": ["1", "0"]}}
    mine = " (the API key, or a token of this user)"
    count = json(_UNREAD, "The unread count after it")
    base, users = "/api/notifications/projects/{project}", "/api/notifications/users/{user}"
    return {
        "/api/notifications": {
            "post": {
                "summary": "Notify a user: kept, sent live on notifications.<user>, and to"
                " the sinks of its project",
                "requestBody": {**json(ref(NewNotification), "The notification"), "required": True},
                "responses": {
                    "201": json(ref(Notification), "Created"),
                    **errors(400, 413, 422, 503),
                },
            }
        },
        users: {
            "get": {
                "summary": "A user's notifications, newest first" + mine,
                "parameters": [user, limit, unread],
                "responses": {
                    "200": json(ref(NotificationList), "Notifications"),
                    **errors(422, 503),
                },
            }
        },
        users + "/unread": {
            "get": {
                "summary": "How many of a user's notifications are unread" + mine,
                "parameters": [user],
                "responses": {"200": json(_UNREAD, "The count"), **errors(422, 503)},
            }
        },
        users + "/read": {
            "post": {
                "summary": "Mark every notification of a user read" + mine,
                "parameters": [user],
                "responses": {"200": count, **errors(422, 503)},
            }
        },
        users + "/{id}/read": {
            "post": {
                "summary": "Mark one notification read" + mine,
                "parameters": [user, note],
                "responses": {"200": count, **errors(404, 422, 503)},
            }
        },
        users + "/{id}": {
            "delete": {
                "summary": "Delete one notification" + mine,
                "parameters": [user, note],
                "responses": {"200": count, **errors(404, 422, 503)},
            }
        },
        base + "/rule": {
            "get": {
                "summary": "Who is notified when a task of the project ends",
                "parameters": [project],
                "responses": {"200": json(ref(NotifyRule), "The rule"), **errors(422, 503)},
            },
            "put": {
                "summary": "Set who is notified when a task of the project ends",
                "parameters": [project],
                "requestBody": json(ref(NotifyRule), "The rule"),
                "responses": {"200": json(ref(NotifyRule), "Set"), **errors(400, 413, 422, 503)},
            },
        },
        base + "/tasks/{task_id}/rule": {
            "put": {
                "summary": "Set who is notified when one task ends (over its project's rule)",
                "parameters": [project, task_id],
                "requestBody": json(ref(NotifyRule), "The rule"),
                "responses": {"200": json(ref(NotifyRule), "Set"), **errors(400, 413, 422, 503)},
            }
        },
        base + "/sinks": {
            "get": {
                "summary": "The project's sinks (secrets shown as ***)",
                "parameters": [project],
                "responses": {"200": json(ref(SinkList), "Sinks"), **errors(422, 503)},
            },
            "put": {
                "summary": "Replace the project's sinks; webhook URLs must be allowed"
                " destinations (RELAYCAST_NOTIFY_DESTINATIONS)",
                "parameters": [project],
                "requestBody": json(ref(SinkList), "The sinks"),
                "responses": {"200": json(ref(SinkList), "Set"), **errors(400, 413, 422, 503)},
            },
        },
        base + "/deliveries": {
            "get": {
                "summary": "The status of the project's recent deliveries to sinks",
                "parameters": [project, limit],
                "responses": {"200": json(ref(DeliveryList), "Deliveries"), **errors(422, 503)},
            }
        },
    }
