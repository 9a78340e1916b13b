"""Notifications: what a user is told, who is told when a task ends, and where else it goes.

The Structs here are the contract: :class:`Notification` is what the API returns, and
:data:`NotificationEvent` what a user's channel ``notifications.<user>`` carries (one is
created, read or deleted, with the unread count after it); :class:`NewNotification` is the body
that creates one; :class:`NotifyRule` says who is notified when a task of a project (or one
task) ends, and on which outcomes; :class:`Sink` is an external destination of a project's
notifications (a webhook, a Slack-compatible incoming webhook, or email), and
:class:`Delivery` the status of one notification's delivery to one sink.
:mod:`shared.state.notification_store` keeps them in Redis.

Errors::

    NotificationError (ValueError)
    ├── InvalidNotification  a malformed field: unknown type, body too long, bad user id
    └── UnknownNotification  no such notification of this user
"""

from __future__ import annotations

import re
from typing import Literal

import msgspec

__all__ = [
    "OUTCOMES",
    "Delivery",
    "DeliveryList",
    "InvalidNotification",
    "NewNotification",
    "Notification",
    "NotificationCreated",
    "NotificationDeleted",
    "NotificationError",
    "NotificationEvent",
    "NotificationList",
    "NotificationRead",
    "NotifyRule",
    "Priority",
    "Sink",
    "SinkList",
    "UnknownNotification",
    "check_user",
    "user_channel",
]

USER_ID = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
CHANNEL_PREFIX = "notifications."
"""Every user's notifications go on ``notifications.<user>``; only that user may read it."""
MAX_TITLE = 200
MAX_BODY = 4000

Kind = Literal["info", "success", "warning", "error", "progress"]
Priority = Literal["urgent", "high", "normal", "low"]
Outcome = Literal["completed", "failed", "cancelled"]
OUTCOMES: tuple[Outcome, ...] = ("completed", "failed", "cancelled")
SinkKind = Literal["webhook", "slack", "email"]
DeliveryStatus = Literal["pending", "retrying", "delivered", "failed"]


class NotificationError(ValueError):
    """A notification request that cannot be carried out; nothing was written."""

    code = "invalid_notification"


class InvalidNotification(NotificationError):
    """A field is malformed or too long."""


class UnknownNotification(NotificationError, LookupError):
    """No notification with this id for this user (never made, deleted or dropped)."""

    code = "unknown_notification"


def check_user(user: object) -> str:
    """``user`` when it is a valid user id (a token's ``sub``).

    Raises:
        InvalidNotification: it is not; the message gives the rule.
    """
    if not isinstance(user, str) or not USER_ID.fullmatch(user):
        raise InvalidNotification(f"invalid user {user!r}: use 1-64 of A-Z a-z 0-9 _ - . @")
    return user


def user_channel(user: str) -> str:
    """The channel of ``user``'s notifications."""
    return CHANNEL_PREFIX + user


class NewNotification(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Notify ``user``. ``project`` and ``task_id`` link it to a task (and send it to the
    project's sinks); ``link`` is any URL or path the reader may follow."""

    user: str
    title: str
    body: str = ""
    type: Kind = "info"
    priority: Priority = "normal"
    project: str | None = None
    task_id: str | None = None
    link: str | None = None

    def check(self) -> None:
        """Raises InvalidNotification on a bad user, an empty or long title or body."""
        check_user(self.user)
        if not 1 <= len(self.title) <= MAX_TITLE:
            raise InvalidNotification(f"a title is 1-{MAX_TITLE} characters")
        if len(self.body) > MAX_BODY:
            raise InvalidNotification(f"a body is at most {MAX_BODY} characters")
        if self.link is not None and len(self.link) > 2000:
            raise InvalidNotification("a link is at most 2000 characters")
        if self.task_id is not None and self.project is None:
            raise InvalidNotification("a task_id needs its project")


class Notification(msgspec.Struct, kw_only=True):
    """One notification of one user. ``created_at`` is in seconds since the epoch."""

    id: str
    user: str
    title: str
    body: str = ""
    type: Kind = "info"
    priority: Priority = "normal"
    project: str | None = None
    task_id: str | None = None
    link: str | None = None
    read: bool = False
    created_at: float


class NotificationList(msgspec.Struct, kw_only=True):
    """A user's notifications, newest first, and how many are unread."""

    user: str
    unread: int
    notifications: list[Notification]


class NotificationCreated(
    msgspec.Struct, kw_only=True, tag="notification.created", tag_field="type"
):
    """On ``notifications.<user>``: a new notification, and the user's unread count with it."""

    unread: int
    notification: Notification


class NotificationRead(
    msgspec.Struct, kw_only=True, omit_defaults=True, tag="notification.read", tag_field="type"
):
    """On ``notifications.<user>``: one notification (``id``) or, without an ``id``,
    every one was marked read; ``unread`` is the count after."""

    unread: int
    id: str | msgspec.UnsetType = msgspec.UNSET


class NotificationDeleted(
    msgspec.Struct, kw_only=True, tag="notification.deleted", tag_field="type"
):
    """On ``notifications.<user>``: a notification was deleted; ``unread`` is the count after."""

    id: str
    unread: int


NotificationEvent = NotificationCreated | NotificationRead | NotificationDeleted
"""What ``notifications.<user>`` carries, told apart by ``type``. The store's Lua scripts
write these messages; tests/test_notifications.py decodes what they publish."""


class NotifyRule(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Who is notified when a task ends, and on which outcomes. ``users`` None means the
    task's owner (nobody when it has none). A task's own rule wins over its project's."""

    users: list[str] | None = None
    on: list[Outcome] = msgspec.field(default_factory=lambda: ["completed", "failed"])
    priority: Priority | None = None
    """None: ``high`` for a failure, ``normal`` otherwise."""

    def check(self) -> None:
        for user in self.users or ():
            check_user(user)
        if self.users is not None and len(self.users) > 100:
            raise InvalidNotification("a rule names at most 100 users")


class Sink(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An external destination of a project's notifications.

    ``webhook``: a JSON POST of the notification to ``url``, signed with ``secret``
    (``X-Relaycast-Signature: sha256=<hex HMAC-SHA256 of the body>``). ``slack``: a
    Slack-compatible incoming-webhook body (``{"text": ...}``) to ``url``. ``email``: a mail
    to ``to`` over the SMTP server of the settings. ``max_attempts`` bounds the tries.
    """

    name: str
    kind: SinkKind
    url: str | None = None
    secret: str | None = None
    to: list[str] = []
    max_attempts: int | None = None

    def check(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", self.name):
            raise InvalidNotification(
                f"invalid sink name {self.name!r}: use 1-32 of A-Z a-z 0-9 _ -"
            )
        if self.kind == "email":
            if not self.to or any("@" not in a or len(a) > 254 for a in self.to):
                raise InvalidNotification(f"sink {self.name!r}: email needs addresses in 'to'")
        elif not self.url:
            raise InvalidNotification(f"sink {self.name!r}: a {self.kind} sink needs a url")
        if self.max_attempts is not None and not 1 <= self.max_attempts <= 20:
            raise InvalidNotification(f"sink {self.name!r}: max_attempts is 1-20")


class SinkList(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A project's sinks (replaced as a whole)."""

    sinks: list[Sink] = []


class Delivery(msgspec.Struct, kw_only=True):
    """One notification's delivery to one sink of its project."""

    id: str
    notification_id: str
    user: str
    project: str
    sink: str
    kind: SinkKind
    status: DeliveryStatus = "pending"
    attempts: int = 0
    error: str | None = None
    created_at: float
    updated_at: float


class DeliveryList(msgspec.Struct, kw_only=True):
    """A project's recent deliveries, newest first."""

    project: str
    deliveries: list[Delivery]
