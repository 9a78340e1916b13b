"""The Hub: this gateway's channels, their local subscribers, and the fan-out.

One broker subscription per channel, reference-counted: the first local subscriber
subscribes, the last one out unsubscribes. Subscribe and unsubscribe of one channel are
serialised by that channel's lock, and a subscriber is registered before the broker
subscription is made, so nothing published in between is missed.

Each channel tracks the last offset it fanned out. A publication that does not follow
it (a gap after a broker reconnect, or a new epoch) puts the channel into resync: live
publications are held while history fills the gap, then flow again in order. The
broker reader calls :meth:`Hub.on_publication`, which never awaits: it encodes the
message once and appends the same frame to every subscriber's bounded outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Coroutine
from typing import Any

from gateway import observe
from gateway.commands import Command, Limits, SubscribeCommand, UnsubscribeCommand
from gateway.frames import OutFrame, control, message
from gateway.replay import Replay
from gateway.session import Session
from shared.backoff import backoff_delay
from shared.broker.base import Broker, BrokerUnavailable
from shared.channels import ChannelOptions
from shared.protocol import CloseCode, ErrorCode, Position, Publication, Subscribed
from shared.settings import Settings

__all__ = ["Hub"]

log = logging.getLogger("relaycast.hub")

# Live publications held per channel while it resyncs; past this, history alone catches up.
RESYNC_HOLD = 10_000


def _unavailable(session: Session, channel: str, exc: BrokerUnavailable) -> None:
    """A subscribe the broker could not serve: the client gets a fixed message, the log
    the broker's own (which may name scripts and keys)."""
    log.warning("connection %d: subscribe to %s failed: %s", session.id, channel, exc)
    session.fail_subscribe(channel, ErrorCode.UNAVAILABLE, "broker unavailable; try again")


class _Channel:
    __slots__ = ("epoch", "held", "last", "lock", "offset", "options", "stamp", "subscribers")

    def __init__(self, options: ChannelOptions) -> None:
        self.options = options
        self.subscribers: set[Session] = set()
        self.lock = asyncio.Lock()
        self.offset = 0
        self.epoch = ""
        self.stamp = 0.0  # publish time of the message at ``offset`` (0: not known)
        # Publications held while the channel is not in step with the broker (None: live).
        self.held: list[Publication] | None = []
        self.last: OutFrame | None = None  # newest frame, for latest-value snapshots


class Hub:
    """Channels and sessions of one gateway process; the broker's event handler."""

    def __init__(self, broker: Broker, settings: Settings) -> None:
        self.broker = broker
        self.settings = settings
        self.options = settings.channel_options
        self.channels: dict[str, _Channel] = {}
        self.sessions: set[Session] = set()
        self.limits = Limits(
            max_subscriptions=settings.max_subscriptions,
            outbox_messages=settings.outbox_messages,
            outbox_bytes=settings.outbox_bytes,
            frame_rate=settings.frame_rate,
            frame_burst=settings.frame_burst,
        )
        """The bounds of every WebSocket connection (one object: they never change)."""
        self.draining = False
        self._tasks: set[asyncio.Task[None]] = set()

    # --- broker events (never await) ---------------------------------------------------

    def on_publication(self, channel: str, publication: Publication) -> None:
        observe.BROKER_MESSAGES.inc()
        state = self.channels.get(channel)
        if state is not None:
            self._route(channel, state, publication)

    def _route(self, channel: str, state: _Channel, publication: Publication) -> None:
        """Fan out the next publication in order; hold it and resync on anything else."""
        if state.held is not None:
            if len(state.held) < RESYNC_HOLD:
                state.held.append(publication)
            return
        if publication.epoch == state.epoch:
            if publication.offset <= state.offset:
                return  # already delivered (seen again after a resync)
            if publication.offset == state.offset + 1:
                self._fan_out(channel, state, publication)
                return
        state.held = [publication]
        self._spawn(self._resync(channel, state))

    def on_broker_state(self, up: bool) -> None:
        if not up:
            observe.BROKER_RECONNECTS.inc()
            for state in self.channels.values():
                if state.held is None:
                    state.held = []
            return
        for channel, state in list(self.channels.items()):
            if state.held is not None and state.subscribers:
                self._spawn(self._resync(channel, state))

    def _advance(self, channel: str, state: _Channel, publication: Publication) -> OutFrame:
        """The channel moves on to ``publication``: its frame, encoded once."""
        state.offset, state.stamp = publication.offset, publication.time
        frame = message(channel, publication, state.options.latest)
        if state.options.latest:
            state.last = frame
        return frame

    def _fan_out(self, channel: str, state: _Channel, publication: Publication) -> None:
        frame = self._advance(channel, state, publication)
        for session in state.subscribers:
            session.deliver(frame)

    def _fan_out_backlog(self, channel: str, state: _Channel, pubs: list[Publication]) -> None:
        """Fan out a batch refilled from history. A subscriber whose outbox cannot take it
        is not cut off: it catches up from history at its own pace, as a resume does."""
        frames = [self._advance(channel, state, p) for p in pubs]
        for session in state.subscribers:
            if session.hold(channel, frames):
                replay = Replay(self.broker, self.settings, session, channel, state.options)
                self._spawn(replay.catch_up(state.epoch))

    # --- resync: fill a gap from history -----------------------------------------------

    async def _resync(self, channel: str, state: _Channel) -> None:
        """Bring a channel back in step: history after its offset, then held publications.

        Retries with backoff while the broker link is up; when the link is down, the
        resync that ``on_broker_state(True)`` starts takes over.
        """
        attempt = 0
        while True:
            async with state.lock:
                if state.held is None or self.channels.get(channel) is not state:
                    return
                try:
                    await self._catch_up(channel, state)
                    return
                except BrokerUnavailable as exc:
                    log.warning("resync of %s failed (%s); retrying", channel, exc)
            if not self.broker.up:
                return
            attempt += 1
            await asyncio.sleep(backoff_delay(attempt, base=0.05, cap=2.0))

    async def _catch_up(self, channel: str, state: _Channel) -> None:
        options = state.options
        limit = self.settings.replay_batch if options.history_size else 0
        while True:
            # Read from the last message fanned out, to check it is still the same one.
            overlap = 1 if limit and state.stamp else 0
            history = await self.broker.history(
                channel, options, since=state.offset - overlap, limit=limit + overlap
            )
            position, pubs = history.position, history.publications
            rewritten = False
            if overlap and pubs and pubs[0].offset == state.offset:
                rewritten = pubs[0].time != state.stamp
                pubs = pubs[1:]
            if position.epoch == state.epoch and (position.offset < state.offset or rewritten):
                # The broker lost messages it had acknowledged (a failover to a replica
                # that had not received them) and hands their offsets out again: a new
                # epoch, so that no client takes a new message for one it already has.
                position = await self.broker.renew_epoch(channel, options, state.epoch)
                self._restart(channel, state, position.epoch, [], position.offset)
                continue
            if position.epoch != state.epoch:
                # A new stream (Redis lost its data): read it from its start.
                history = await self.broker.history(channel, options, since=0, limit=limit)
                position, pubs = history.position, history.publications
                self._restart(channel, state, position.epoch, pubs, position.offset)
            elif (pubs and pubs[0].offset != state.offset + 1) or (
                not pubs and position.offset > state.offset
            ):
                self._restart(channel, state, position.epoch, pubs, position.offset)
            if pubs:
                self._fan_out_backlog(channel, state, pubs)
            if len(pubs) < limit or not pubs:
                break
        observe.GAP_FILLS.labels("recovered").inc()
        held, state.held = state.held or [], None
        for publication in held:
            if publication.epoch == state.epoch:  # older epochs are history's to judge
                self._route(channel, state, publication)

    def _restart(
        self, channel: str, state: _Channel, epoch: str, pubs: list[Publication], head: int
    ) -> None:
        """History cannot fill the gap: tell every subscriber (``recovered: false``).

        Their connections stay; each gets a ``subscribed`` frame with the new position and
        then the messages history still has, so it knows to reload its state.
        """
        offset = pubs[0].offset - 1 if pubs else head
        if state.offset or state.epoch != epoch:
            observe.GAP_FILLS.labels("lost").inc()
            log.warning(
                "%s: messages after offset %d cannot be recovered (epoch %s -> %s);"
                " subscribers told recovered: false",
                channel,
                state.offset,
                state.epoch,
                epoch,
            )
        state.epoch, state.offset, state.stamp = epoch, offset, 0.0
        notice = control(Subscribed(channel=channel, offset=offset, epoch=epoch, recovered=False))
        for session in state.subscribers:
            session.restart(channel, notice, offset)

    # --- client commands -----------------------------------------------------------------

    def attach(self, session: Session) -> None:
        self.sessions.add(session)

    async def subscribe(
        self,
        session: Session,
        channel: str,
        since: Position | None,
        max_rate: float | None = None,
    ) -> None:
        """Serve one subscribe: broker subscription if first, then replay, then live.
        ``max_rate`` (the session paces it) is for latest-value channels only."""
        options = self.options(channel)
        if max_rate is not None and not options.latest:
            session.fail_subscribe(
                channel,
                ErrorCode.MAX_RATE_UNSUPPORTED,
                "max_rate is for latest-value channels only; this one delivers every message",
            )
            return
        try:
            state = await self._join(session, channel, options)
        except BrokerUnavailable as exc:
            _unavailable(session, channel, exc)
            return
        try:
            await self._start(session, channel, state, since)
        except BrokerUnavailable as exc:
            state.subscribers.discard(session)
            observe.SUBSCRIPTIONS.dec()
            _unavailable(session, channel, exc)
            await self._leave_if_empty(channel, state)

    async def _join(self, session: Session, channel: str, options: ChannelOptions) -> _Channel:
        while True:
            state = self.channels.get(channel)
            if state is None:
                state = self.channels[channel] = _Channel(options)
            async with state.lock:
                if self.channels.get(channel) is not state:
                    continue  # emptied and removed while we waited
                state.subscribers.add(session)
                observe.SUBSCRIPTIONS.inc()
                if state.held is not None and len(state.subscribers) == 1:
                    try:
                        await self._open(channel, state)
                    except BrokerUnavailable:
                        state.subscribers.discard(session)
                        observe.SUBSCRIPTIONS.dec()
                        await self._drop(channel, state)
                        raise
                return state

    async def _open(self, channel: str, state: _Channel) -> None:
        """First subscriber: subscribe in the broker, then read where the channel stands."""
        await self.broker.subscribe(channel)
        observe.CHANNELS.set(len(self.channels))
        history = await self.broker.history(
            channel, state.options, limit=1 if state.options.latest else 0
        )
        state.epoch, state.offset = history.position.epoch, history.position.offset
        if history.publications:
            last = history.publications[-1]
            state.last = message(channel, last, latest=True)
            if last.offset == state.offset:
                state.stamp = last.time
        held, state.held = state.held or [], None
        for publication in held:
            self._route(channel, state, publication)

    async def _start(
        self, session: Session, channel: str, state: _Channel, since: Position | None
    ) -> None:
        """Send ``subscribed`` and what a resume missed; the rest of a long replay goes on
        in the background, paced by the client (gateway/replay.py)."""
        async with state.lock:  # wait out a resync in progress
            head = Position(state.offset, state.epoch)
            snapshot = state.last
        replay = Replay(self.broker, self.settings, session, channel, state.options)
        if await replay.open(head, snapshot, since):
            self._spawn(replay.catch_up(head.epoch))

    async def unsubscribe(self, session: Session, channel: str) -> None:
        state = self.channels.get(channel)
        if state is None or session not in state.subscribers:
            return
        state.subscribers.discard(session)
        observe.SUBSCRIPTIONS.dec()
        await self._leave_if_empty(channel, state)

    async def _leave_if_empty(self, channel: str, state: _Channel) -> None:
        if state.subscribers:
            return
        async with state.lock:
            if not state.subscribers and self.channels.get(channel) is state:
                await self._drop(channel, state)

    async def _drop(self, channel: str, state: _Channel) -> None:
        """Last one out (call with the lock held): unsubscribe in the broker, forget it."""
        if state.subscribers or self.channels.get(channel) is not state:
            return
        del self.channels[channel]
        observe.CHANNELS.set(len(self.channels))
        with contextlib.suppress(BrokerUnavailable):
            await self.broker.unsubscribe(channel)

    async def run(self, session: Session, command: Command) -> None:
        """Carry out what ``session.receive`` asked for."""
        if isinstance(command, SubscribeCommand):
            await self.subscribe(session, command.channel, command.since, command.max_rate)
        elif isinstance(command, UnsubscribeCommand):
            await self.unsubscribe(session, command.channel)
        else:  # a refreshed token no longer covers these
            for channel in command.channels:
                await self.unsubscribe(session, channel)

    async def detach(self, session: Session) -> None:
        """A connection ended: leave every channel it was in."""
        self.sessions.discard(session)
        for channel in session.leave_all():
            await self.unsubscribe(session, channel)

    # --- lifecycle -----------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, window: float) -> None:
        """Close every session with 1012, spread evenly (with jitter) over ``window`` seconds."""
        self.draining = True
        sessions = list(self.sessions)
        random.shuffle(sessions)
        log.info("draining %d connections over %.1fs", len(sessions), window)
        if sessions and window > 0:
            batches = max(1, min(len(sessions), int(window * 20)))
            step = window / batches
            for i in range(batches):
                for session in sessions[i::batches]:
                    session.close(CloseCode.SERVICE_RESTART, "gateway restarting; reconnect")
                await asyncio.sleep(step)
        for session in sessions:
            session.close(CloseCode.SERVICE_RESTART, "gateway restarting; reconnect")

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for session in list(self.sessions):
            session.close(CloseCode.GOING_AWAY, "gateway stopping")
