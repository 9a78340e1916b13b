"""Single-use tickets: how a browser's ``EventSource`` (which cannot send headers) and
plain long-polls carry a token without putting it in a URL.

    POST /auth/ticket          Authorization: Bearer <token>
    -> 200 {"ticket": "...", "expires_in": 30}
    GET /sse?channel=...&ticket=...

The gateway verifies the token, and keeps its grant (user, channel patterns, expiry)
under a random ticket in Redis for ``ticket_ttl`` seconds. The first request that shows
the ticket, on any gateway, consumes it (``GETDEL``); a second one is refused. Only a
hash of the ticket is stored. On the memory broker tickets live in the process.

A ticket in a URL may reach a log, but by then it is spent or about to expire. An
``EventSource`` that reconnects by itself reuses its URL, so its spent ticket gets 401:
the client mints a new ticket and opens a new stream itself.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time

from redis.exceptions import RedisError

from gateway.auth import Grant
from shared.broker.redis_url import AsyncCommandClient, async_command_client, parse_redis_url
from shared.settings import Settings

__all__ = ["TicketStoreUnavailable", "Tickets"]


class TicketStoreUnavailable(Exception):
    """Redis could not be reached to mint or consume a ticket."""


class Tickets:
    """Mints and consumes tickets, in Redis (shared by all gateways) or in memory."""

    def __init__(self, settings: Settings) -> None:
        self.ttl = settings.ticket_ttl
        self.prefix = f"{settings.key_prefix}:ticket:"
        self.redis: AsyncCommandClient | None = None
        self.memory: dict[str, tuple[float, bytes]] = {}
        if not settings.redis_url.startswith("memory://"):
            self.redis = async_command_client(
                parse_redis_url(settings.redis_url), socket_connect_timeout=3, socket_timeout=5
            )

    async def mint(self, grant: Grant) -> str:
        """A new ticket for ``grant``, usable once within :attr:`ttl` seconds.

        Raises:
            TicketStoreUnavailable: Redis did not answer.
        """
        ticket = secrets.token_urlsafe(32)
        value = json.dumps(
            [grant.user, list(grant.patterns), grant.expires, grant.token_id, grant.issued]
        ).encode()
        key = self._key(ticket)
        if self.redis is None:
            self._purge()
            self.memory[key] = (time.monotonic() + self.ttl, value)
            return ticket
        try:
            await self.redis.set(key, value, px=int(self.ttl * 1000))
        except (RedisError, OSError) as exc:
            raise TicketStoreUnavailable(str(exc)) from exc
        return ticket

    async def consume(self, ticket: str) -> Grant | None:
        """The grant behind ``ticket``, which is spent by this call; None when the ticket
        is unknown, spent or expired.

        Raises:
            TicketStoreUnavailable: Redis did not answer.
        """
        if not ticket or len(ticket) > 100:
            return None
        key = self._key(ticket)
        value: bytes | str | None
        if self.redis is None:
            self._purge()
            entry = self.memory.pop(key, None)
            value = entry[1] if entry is not None else None
        else:
            try:
                value = await self.redis.getdel(key)
            except (RedisError, OSError) as exc:
                raise TicketStoreUnavailable(str(exc)) from exc
        if value is None:
            return None
        user, patterns, expires, *rest = json.loads(value)
        token_id, issued = rest if len(rest) == 2 else ("", None)  # minted by an older gateway
        return Grant(user, tuple(patterns), expires, token_id, issued)

    def _key(self, ticket: str) -> str:
        return self.prefix + hashlib.sha256(ticket.encode()).hexdigest()

    def _purge(self) -> None:
        now = time.monotonic()
        for key in [k for k, (deadline, _) in self.memory.items() if deadline < now]:
            del self.memory[key]

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
