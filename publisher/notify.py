"""Notify users from any asyncio service, and set who hears when tasks end.

    from publisher.notify import Notifications

    async with Notifications("redis://127.0.0.1:6379/0") as notes:
        await notes.send("alice", "Nightly export done", body="12 files", type="success",
                         project="billing", task_id="export-7")
        await notes.set_rule("billing", users=["alice", "ops"], on=["failed"])
        await notes.set_sinks("billing", [Sink(name="ops", kind="slack", url=HOOK)])

A notification is kept (``notify_keep`` per user), announced on ``notifications.<user>``
(which only that user's token may read), and queued for its project's sinks, which
``relaycast notify`` delivers. docs/notifications.md describes them all.
"""

from __future__ import annotations

from collections.abc import Iterable

from publisher.publish import PublisherApi
from shared.destinations import Destinations
from shared.state.notification_store import NotificationStore
from shared.state.notifications import (
    Delivery,
    InvalidNotification,
    NewNotification,
    Notification,
    NotifyRule,
    Outcome,
    Priority,
    Sink,
    SinkList,
)

__all__ = ["Notifications", "Sink"]


class Notifications(PublisherApi[NotificationStore]):
    """Sends and reads notifications. Holds one Redis connection pool; close it when done."""

    store_type = NotificationStore

    async def send(
        self,
        user: str,
        title: str,
        *,
        body: str = "",
        type: str = "info",
        priority: Priority = "normal",
        project: str | None = None,
        task_id: str | None = None,
        link: str | None = None,
    ) -> Notification:
        """Notify ``user`` (``type``: info, success, warning, error or progress).

        Raises:
            InvalidNotification: a malformed field. BrokerUnavailable: Redis is unreachable.
        """
        if type not in ("info", "success", "warning", "error", "progress"):
            raise InvalidNotification(
                f"unknown type {type!r}: use info, success, warning, error or progress"
            )
        new = NewNotification(
            user=user,
            title=title,
            body=body,
            type=type,  # type: ignore[arg-type]
            priority=priority,
            project=project,
            task_id=task_id,
            link=link,
        )
        return await self.store.create(new)

    async def notifications(
        self, user: str, limit: int = 50, unread_only: bool = False
    ) -> list[Notification]:
        """``user``'s notifications, newest first."""
        return await self.store.notifications(user, limit, unread_only)

    async def unread(self, user: str) -> int:
        return await self.store.unread(user)

    async def mark_read(self, user: str, notification_id: str | None = None) -> int:
        """Mark one (or, with None, every) notification read; the unread count after."""
        return await self.store.mark_read(user, notification_id)

    async def delete(self, user: str, notification_id: str) -> int:
        return await self.store.delete(user, notification_id)

    async def set_rule(
        self,
        project: str,
        *,
        task_id: str | None = None,
        users: Iterable[str] | None = None,
        on: Iterable[Outcome] = ("completed", "failed"),
        priority: Priority | None = None,
    ) -> None:
        """Who is told when a task of ``project`` (or only task ``task_id``) ends, and on
        which outcomes; ``users`` None means the task's owner."""
        rule = NotifyRule(users=None if users is None else list(users), on=list(on),
                          priority=priority)  # fmt: skip
        await self.store.set_rule(project, rule, task_id)

    async def set_sinks(self, project: str, sinks: Iterable[Sink]) -> None:
        """Replace ``project``'s sinks.

        Raises:
            InvalidNotification: a malformed sink. DestinationRefused: a webhook URL that is
                not http(s) or not an allowed destination (``notify_destinations``).
        """
        sink_list = SinkList(sinks=list(sinks))
        allowed = Destinations(self._publisher.settings.notify_destinations)
        for sink in sink_list.sinks:
            sink.check()
            if sink.url is not None:
                await allowed.check(sink.url, self._publisher.settings.notify_timeout)
        await self.store.set_sinks(project, sink_list)

    async def deliveries(self, project: str, limit: int = 100) -> list[Delivery]:
        """The status of ``project``'s recent deliveries to its sinks, newest first."""
        return await self.store.deliveries(project, limit)
