"""Bringing one subscription up to date: answer it, replay what it missed, then go live.

A subscriber is registered with its channel before any of this starts, so every live
message from then on is held for it (``Session.deliver``). :meth:`Replay.open`
decides where the client stands — a fresh subscribe starts at the channel's position; a
resume starts at its ``since`` when history still reaches back, else it is told
``recovered: false`` — and sends ``subscribed``. :meth:`Replay.catch_up` then replays history
in batches no larger than the room in the client's outbox, waiting for the client to
read before the next batch, so a backlog of any size reaches even a slow client with
bounded memory. Once the replay joins up with the held live messages, the subscription
goes live. Live messages that pile up meanwhile are dropped from the hold and read from
history instead.
"""

from __future__ import annotations

import asyncio
import logging

from gateway import observe
from gateway.frames import OutFrame, control, message
from gateway.session import Session
from shared.broker.base import Broker, BrokerUnavailable
from shared.channels import ChannelOptions
from shared.protocol import CloseCode, Position, Publication, Subscribed
from shared.settings import Settings

__all__ = ["Replay"]

log = logging.getLogger("relaycast.replay")


class Replay:
    """Bringing ``session``'s subscription to ``channel`` up to date."""

    def __init__(
        self,
        broker: Broker,
        settings: Settings,
        session: Session,
        channel: str,
        options: ChannelOptions,
    ) -> None:
        self.broker = broker
        self.settings = settings
        self.session = session
        self.channel = channel
        self.options = options

    def _frames(self, pubs: list[Publication]) -> list[OutFrame]:
        return [message(self.channel, p, self.options.latest) for p in pubs]

    async def open(self, head: Position, snapshot: OutFrame | None, since: Position | None) -> bool:
        """Send ``subscribed`` and the first replayed messages.

        ``head`` is where the channel stood when the client was registered. Returns True
        when the subscription still has history to catch up on (run :meth:`catch_up`).

        Raises:
            BrokerUnavailable: history could not be read; nothing was sent.
        """
        session, channel = self.session, self.channel
        recovered: bool | None = None
        first: list[OutFrame] = []
        cursor = head.offset
        replayed: int | None = None
        if since is None:
            if snapshot is not None and snapshot.offset <= head.offset:
                first, cursor = [snapshot], snapshot.offset - 1
        else:
            recovered, first, cursor = await self._resume_point(head, since)
            replayed = head.offset - since.offset if recovered and head.offset > since.offset else 0
            observe.RESUMES.labels("recovered" if recovered else "not_recovered").inc()
        subscribed = Subscribed(
            channel=channel, offset=cursor, epoch=head.epoch, recovered=recovered, replayed=replayed
        )
        if not session.start(channel, control(subscribed), cursor, head.offset):
            return False
        fed = session.feed(channel, first)
        observe.REPLAYED.inc(fed if since is not None else 0)
        return not session.go_live(channel)

    async def _resume_point(
        self, head: Position, since: Position
    ) -> tuple[bool, list[OutFrame], int]:
        """(recovered, first batch of the replay, the offset the client resumes from)."""
        if since.epoch != head.epoch:
            return False, [], head.offset
        if since.offset >= head.offset:
            if since.offset == head.offset:
                return True, [], head.offset
            # The client saw more than this gateway has fanned out yet (it came from a
            # gateway further ahead): fine if the broker agrees that offset exists.
            position = (await self.broker.history(self.channel, self.options)).position
            if position.epoch == head.epoch and since.offset <= position.offset:
                return True, [], since.offset
            return False, [], head.offset
        settings = self.settings
        if not self.options.history_size or head.offset - since.offset > settings.replay_cap:
            return False, [], head.offset
        limit = max(1, min(settings.replay_batch, self.session.outbox.room()))
        history = await self.broker.history(
            self.channel, self.options, since=since.offset, limit=limit
        )
        pubs = history.publications
        if history.position.epoch != head.epoch or not pubs or pubs[0].offset != since.offset + 1:
            return False, [], head.offset
        return True, self._frames(pubs), since.offset

    async def catch_up(self, epoch: str) -> None:
        """Replay history as fast as the client reads, until the subscription is live."""
        session, channel, options = self.session, self.channel, self.options
        try:
            while True:
                offset = session.position(channel)
                if offset is None or session.go_live(channel):
                    return
                room = session.outbox.room()
                pubs: list[Publication] = []
                if room:
                    history = await self.broker.history(
                        channel, options, since=offset, limit=min(self.settings.replay_batch, room)
                    )
                    pubs, head = history.publications, history.position
                    broken = head.epoch != epoch or (
                        pubs[0].offset != offset + 1 if pubs else head.offset > offset
                    )
                    if broken and not options.latest:
                        # The history the client still needs expired while it caught up:
                        # it reconnects, resumes, and is told recovered: false.
                        session.close(CloseCode.TRY_AGAIN_LATER, "history expired during replay")
                        return
                    if broken and not pubs:
                        session.skip(channel, head.offset)  # latest-value: the newest matters
                    if not pubs:
                        await asyncio.sleep(0.005)  # at the head: live messages are coming
                        continue
                fed = session.feed(channel, self._frames(pubs))
                observe.REPLAYED.inc(fed)
                if not fed and not await _drained(session, self.settings.heartbeat_timeout):
                    session.close(CloseCode.SLOW_CONSUMER, "the replay is not being read")
                    return
        except BrokerUnavailable as exc:
            log.info("replay of %s stopped: %s", channel, exc)
            session.close(CloseCode.TRY_AGAIN_LATER, "broker unavailable during replay")


async def _drained(session: Session, patience: float) -> bool:
    """Wait until the client has read its outbox; False if it did not within ``patience``."""
    drained = asyncio.Event()
    session.outbox.when_drained(drained.set)
    try:
        async with asyncio.timeout(patience):
            await drained.wait()
    except TimeoutError:
        return False
    return True
