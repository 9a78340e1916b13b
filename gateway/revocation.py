"""Revoking tokens before they expire, on every gateway, open connections included.

Two kinds of revocation, both kept in Redis so that every gateway applies them:

- a **token**, by its ``jti``: kept until the token's ``exp`` (after that the token is
  refused anyway), in the sorted set ``<prefix>:{revoked}:tokens`` (score: ``exp``);
- a **user**, by ``sub``, with a time: every token of that user issued (``iat``) before
  it is refused, and so is a token of that user with no ``iat``. Kept in the hash
  ``<prefix>:{revoked}:users`` until removed (``DELETE /api/revocations/users/{sub}``).

Every change increments ``<prefix>:{revoked}:version``. Each gateway reads that counter
every :data:`INTERVAL` seconds and, when it moved, reloads both sets (a small read: one
entry per revocation still in force), then closes its open connections whose token is
now revoked with 4501 (terminal: the client must get a new token). So a revocation acts
on every gateway within a second. The ``{revoked}`` hash tag keeps the keys on one slot
of a Redis Cluster.

Tokens presented later (handshakes, ``auth`` and ``refresh`` frames, bearer headers,
tickets) are checked against the same sets through :meth:`gateway.auth.Guard.is_revoked`.
While Redis cannot be reached, a gateway keeps the revocations it last read.

Nothing here logs or stores a token: only its ``jti`` and its user.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Iterable
from typing import TypeVar, cast

from redis.exceptions import RedisError

from gateway import observe
from gateway.auth import Grant, Guard
from gateway.logsafe import printable
from gateway.session import Session
from shared.broker.redis_url import AsyncCommandClient, async_command_client, parse_redis_url
from shared.protocol import CloseCode
from shared.settings import Settings

__all__ = ["INTERVAL", "RevocationStoreUnavailable", "Revocations"]

log = logging.getLogger("relaycast.revocation")

T = TypeVar("T")
_Scored = list[tuple[bytes | str, float]]

INTERVAL = 0.5
"""Seconds between a gateway's checks for new revocations."""

TOKEN_KEEP = 86400.0
"""How long a token revocation is kept when the caller does not say when the token expires."""


class RevocationStoreUnavailable(Exception):
    """Redis did not answer a revocation read or write."""


class Revocations:
    """This gateway's view of the revocations, the store they live in, and the sweep that
    closes revoked connections. One per gateway (:class:`gateway.admission.Security`)."""

    def __init__(self, settings: Settings, guard: Guard) -> None:
        prefix = f"{settings.key_prefix}:{{revoked}}"
        self.tokens_key = prefix + ":tokens"
        self.users_key = prefix + ":users"
        self.version_key = prefix + ":version"
        self.redis: AsyncCommandClient | None = None
        if not settings.redis_url.startswith("memory://"):
            self.redis = async_command_client(
                parse_redis_url(settings.redis_url), socket_connect_timeout=3, socket_timeout=5
            )
        self.tokens: dict[str, float] = {}
        """Revoked token ids, with the expiry after which they need not be remembered."""
        self.users: dict[str, float] = {}
        """Revoked users, with the time before which their tokens were issued."""
        self.version: bytes | None = None
        self._changed = False  # a change made through this gateway, not yet swept
        self._failing = False
        guard.revoked = self.revoked

    # --- the check ------------------------------------------------------------------------

    def revoked(self, grant: Grant) -> bool:
        """Whether ``grant``'s token is revoked, by its id or by its user."""
        if grant.token_id and grant.token_id in self.tokens:
            return True
        before = self.users.get(grant.user)
        return before is not None and (grant.issued is None or grant.issued < before)

    def sweep(self, sessions: Iterable[Session]) -> int:
        """Close every open connection whose token is now revoked (4501); how many."""
        closed = 0
        for session in list(sessions):
            grant = session.grant
            if grant is None or session.close_code is not None or not self.revoked(grant):
                continue
            kind = "token" if grant.token_id in self.tokens else "user"
            observe.REVOKED_CONNECTIONS.labels(kind).inc()
            log.info(
                "connection %d of user %s closed: %s revoked",
                session.id,
                printable(grant.user),
                "token " + printable(grant.token_id) if kind == "token" else "user",
            )
            session.close(CloseCode.UNAUTHORIZED, "token revoked")
            closed += 1
        return closed

    # --- the store ------------------------------------------------------------------------

    async def revoke_token(self, token_id: str, expires: float | None) -> float:
        """Revoke the token with ``jti`` ``token_id`` until ``expires`` (its ``exp``);
        returns that time."""
        now = time.time()
        until = expires if expires is not None else now + TOKEN_KEEP
        if self.redis is not None:
            await self._write(self._revoke_token(token_id, until, now))
        self.tokens[token_id] = until  # in force here at once; elsewhere at the next read
        self._changed = True
        observe.REVOCATIONS.labels("token").inc()
        log.info("token %s revoked until %.0f", printable(token_id), until)
        return until

    async def _revoke_token(self, token_id: str, until: float, now: float) -> None:
        assert self.redis is not None
        await self.redis.zremrangebyscore(self.tokens_key, "-inf", now)  # long expired
        await self.redis.zadd(self.tokens_key, {token_id: until})
        await self.redis.incr(self.version_key)

    async def revoke_user(self, user: str, issued_before: float | None) -> float:
        """Revoke every token of ``user`` issued before ``issued_before`` (default: now);
        returns that time."""
        before = issued_before if issued_before is not None else time.time()
        if self.redis is not None:
            await self._write(self._revoke_user(user, before))
        self.users[user] = before
        self._changed = True
        observe.REVOCATIONS.labels("user").inc()
        log.info("user %s revoked: tokens issued before %.0f", printable(user), before)
        return before

    async def _revoke_user(self, user: str, before: float) -> None:
        assert self.redis is not None
        await self.redis.hset(self.users_key, user, repr(before))
        await self.redis.incr(self.version_key)

    async def forget_user(self, user: str) -> bool:
        """Lift a user's revocation; False when there was none."""
        known = self.users.pop(user, None) is not None
        if self.redis is not None:
            known = await self._write(self._forget_user(user)) > 0
        if known:
            log.info("user %s: revocation lifted", printable(user))
        return known

    async def _forget_user(self, user: str) -> int:
        assert self.redis is not None
        removed = int(await self.redis.hdel(self.users_key, user))
        await self.redis.incr(self.version_key)
        return removed

    async def _write(self, operation: Awaitable[T]) -> T:
        try:
            return await operation
        except (RedisError, OSError) as exc:
            raise RevocationStoreUnavailable(str(exc)) from exc

    async def load(self) -> bool:
        """Read the revocations if they changed since the last read; True if they did.

        Raises:
            RevocationStoreUnavailable: Redis did not answer.
        """
        changed, self._changed = self._changed, False
        if self.redis is None:
            now = time.time()
            self.tokens = {j: until for j, until in self.tokens.items() if until > now}
            return changed
        try:
            version = await self.redis.get(self.version_key)
            if version == self.version:
                return changed
            tokens = await self.redis.zrangebyscore(
                self.tokens_key, time.time(), "+inf", withscores=True
            )
            users = await self.redis.hgetall(self.users_key)
        except (RedisError, OSError) as exc:
            raise RevocationStoreUnavailable(str(exc)) from exc
        self.tokens = {_text(jti): float(until) for jti, until in cast(_Scored, tokens)}
        self.users = {_text(user): float(before) for user, before in users.items()}
        self.version = version if isinstance(version, bytes | None) else version.encode()
        return True

    async def watch(self, sessions: Iterable[Session]) -> None:
        """Run for the gateway's life: reload on every change and close the connections
        it revokes (``sessions``: the hub's live set)."""
        while True:
            try:
                if await self.load():
                    self.sweep(sessions)
                if self._failing:
                    log.info("revocation store reachable again")
                self._failing = False
            except RevocationStoreUnavailable as exc:
                if not self._failing:
                    log.warning("cannot read revocations (%s); keeping the last read", exc)
                self._failing = True
            await asyncio.sleep(INTERVAL)

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
