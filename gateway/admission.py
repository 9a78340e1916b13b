"""Who gets in: every new connection passes the same checks, whatever its transport.

In order, before anything is accepted:

1. the Origin allow-list (:mod:`gateway.origin`): a refused origin gets 403;
2. the gateway's handshake rate (429), its connection limit (503) and the per-address
   connection limit (429) (:mod:`gateway.limits`); refusals carry ``Retry-After: 1``;
3. credentials (:mod:`gateway.auth`). A WebSocket may carry its token in the
   ``Sec-WebSocket-Protocol`` header (offer ``relaycast`` and ``bearer.<token>``; the
   gateway selects ``relaycast``), or send an ``auth`` frame once open; a refused token
   closes it with 4003 or 4501. SSE and polling take ``Authorization: Bearer <token>``
   or a single-use ``?ticket=`` (:mod:`gateway.tickets`); a refused one gets 401.

:class:`Security` holds the policy objects for one gateway; :class:`Entry` is one
admitted connection, released exactly once when it ends. ``POST /auth/ticket`` mints
tickets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gateway import observe
from gateway.auth import Grant, Guard, TokenError
from gateway.limits import ClientAddresses, Gate, KeyedBuckets, Refusal
from gateway.node import node_of
from gateway.origin import OriginPolicy
from gateway.revocation import Revocations
from gateway.tickets import Tickets, TicketStoreUnavailable
from shared.settings import Settings

__all__ = [
    "SUBPROTOCOL",
    "Entry",
    "Security",
    "admit_http",
    "admit_websocket",
    "poll_refusal",
    "refusal_response",
    "routes",
    "select_subprotocol",
]

log = logging.getLogger("relaycast.gateway")

SUBPROTOCOL = "relaycast"
"""The WebSocket subprotocol the gateway selects when a client offers it."""

TOKEN_PREFIX = "bearer."
"""A ``Sec-WebSocket-Protocol`` value ``bearer.<token>`` carries the connection's token."""


class Security:
    """One gateway's access policy and limits, built from settings."""

    def __init__(self, settings: Settings) -> None:
        """Raises:
        SettingsError: production settings without keys, or a key, network or
            algorithm that cannot be used (the message names the setting).
        """
        self.guard = Guard.from_settings(settings)
        self.origins = OriginPolicy.from_settings(settings)
        self.addresses = ClientAddresses.from_settings(settings)
        self.gate = Gate(settings)
        self.tickets = Tickets(settings)
        self.revocations = Revocations(settings, self.guard)  # also checked by the guard
        self.polls = (
            KeyedBuckets(settings.poll_rate, settings.poll_burst) if settings.poll_rate else None
        )
        if settings.mode == "development":
            log.warning(
                "DEVELOPMENT MODE: anyone may connect and read every channel, from any"
                " origin. Set RELAYCAST_MODE=production with token keys and an API key"
                " before exposing this gateway."
            )

    async def close(self) -> None:
        await self.tickets.close()
        await self.revocations.close()


class Entry:
    """An admitted connection: its client address, and the credentials it came with."""

    __slots__ = ("address", "gate", "grant", "guard", "token")

    def __init__(
        self,
        gate: Gate | None,
        address: str,
        guard: Guard,
        grant: Grant | None = None,
        token: str = "",
    ) -> None:
        self.gate = gate
        self.address = address
        self.guard = guard
        """The policy its subscribes are checked under."""
        self.grant = grant
        self.token = token
        """A WebSocket's token from ``Sec-WebSocket-Protocol``, still to be verified."""

    def release(self) -> None:
        """The connection ended (idempotent)."""
        gate, self.gate = self.gate, None
        if gate is not None:
            gate.release(self.address)


def _origin(values: list[str]) -> str | None:
    if not values:
        return None
    return values[0] if len(values) == 1 else "multiple"  # several: never an allowed origin


def admit_websocket(
    security: Security, header: Callable[[str], list[str]], peer: str
) -> Entry | Refusal:
    """Origin and limits for a WebSocket upgrade; the token it offers, unverified.

    ``header(name)`` returns every value of a request header (websockets'
    ``Headers.get_all``, Starlette's ``Headers.getlist``).
    """
    hosts = header("Host")
    host = hosts[0] if len(hosts) == 1 else None
    if not security.origins.allows(_origin(header("Origin")), host):
        return Refusal(403, "origin not allowed", "origin")
    address = security.addresses.client(peer, header("X-Forwarded-For"))
    refusal = security.gate.admit(address, time.monotonic())
    if refusal is not None:
        return refusal
    token = ""
    for value in header("Sec-WebSocket-Protocol"):
        for offer in value.split(","):
            offer = offer.strip()
            if offer.startswith(TOKEN_PREFIX):
                token = offer[len(TOKEN_PREFIX) :]
    return Entry(security.gate, address, security.guard, token=token)


def select_subprotocol(offered: Sequence[str]) -> str | None:
    """Select ``relaycast`` when offered (browsers fail a connection whose offered
    subprotocols are all ignored); never echo ``bearer.<token>``."""
    return SUBPROTOCOL if SUBPROTOCOL in offered else None


async def admit_http(
    security: Security, request: Request, handshake: bool = True
) -> Entry | Response:
    """Origin, limits and credentials of an SSE stream or a poll; a refusal is a response.

    ``handshake`` is False for polls: they count as connections while they wait, but not
    against the handshake rate.
    """
    headers = request.headers
    if not security.origins.allows(_origin(headers.getlist("origin")), _single(headers, "host")):
        return refusal_response(Refusal(403, "origin not allowed", "origin"))
    peer = request.client.host if request.client else ""
    address = security.addresses.client(peer, headers.getlist("x-forwarded-for"))
    refusal = security.gate.admit(address, time.monotonic(), handshake)
    if refusal is not None:
        return refusal_response(refusal)
    entry = Entry(security.gate, address, security.guard)
    credentials = await _credentials(security, request)
    if isinstance(credentials, Response):
        entry.release()
        return credentials
    entry.grant = credentials
    return entry


def poll_refusal(security: Security, entry: Entry) -> Response | None:
    """429 when the client polls faster than ``poll_rate``: a user is counted by its
    token (however many addresses it polls from), an anonymous client by its address."""
    if security.polls is None:
        return None
    key = "u:" + entry.grant.user if entry.grant is not None else "a:" + entry.address
    if security.polls.take(key, time.monotonic()):
        return None
    observe.LIMIT_HITS.labels("poll_rate").inc()
    return refusal_response(Refusal(429, "polling too often; slow down", "poll_rate"))


def _single(headers: Headers, name: str) -> str | None:
    values = headers.getlist(name)
    return values[0] if len(values) == 1 else None


async def _credentials(security: Security, request: Request) -> Grant | Response | None:
    """The grant of the request's bearer token or ticket; None when it shows neither."""
    authorization = request.headers.get("authorization")
    ticket = request.query_params.get("ticket")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return _unauthorized("use Authorization: Bearer <token>")
        try:
            return security.guard.verify(token.strip())
        except TokenError as exc:
            log.debug("%s: token refused (%s)", request.url.path, exc.reason)
            return _unauthorized(exc.message)
    if ticket is not None:
        try:
            grant = await security.tickets.consume(ticket)
        except TicketStoreUnavailable:
            return PlainTextResponse("ticket store unavailable; retry\n", 503, headers=_CORS)
        if grant is None:
            log.debug("%s: ticket refused (unknown, spent or expired)", request.url.path)
            observe.AUTH_REFUSALS.labels("ticket").inc()
            return _unauthorized("ticket unknown, spent or expired; mint a new one")
        if security.guard.expired(grant, time.time()):
            observe.AUTH_REFUSALS.labels("expired").inc()
            return _unauthorized("token expired")
        if security.guard.is_revoked(grant):  # revoked after the ticket was minted
            observe.AUTH_REFUSALS.labels("revoked").inc()
            return _unauthorized("token revoked")
        return grant
    return None


_CORS = {"access-control-allow-origin": "*"}


def _unauthorized(message: str) -> Response:
    challenge = f'Bearer error="invalid_token", error_description="{message}"'
    headers = {**_CORS, "www-authenticate": challenge}
    return PlainTextResponse(message + "\n", 401, headers=headers)


def refusal_response(refusal: Refusal) -> Response:
    """The HTTP answer to a refused connection (``Retry-After`` unless the origin is wrong)."""
    headers = dict(_CORS)
    if refusal.status != 403:
        headers["retry-after"] = "1"
    return PlainTextResponse(refusal.text + "\n", refusal.status, headers=headers)


# --- POST /auth/ticket ---------------------------------------------------------------------


async def _ticket(request: Request) -> Response:
    """Mint a single-use ticket for the bearer token of the request."""
    security = node_of(request).security
    origin = _origin(request.headers.getlist("origin"))
    if not security.origins.allows(origin, _single(request.headers, "host")):
        return refusal_response(Refusal(403, "origin not allowed", "origin"))
    cors = {"access-control-allow-origin": origin} if origin else {}
    if request.method == "OPTIONS":
        cors.update(
            {
                "access-control-allow-methods": "POST",
                "access-control-allow-headers": "authorization",
                "access-control-max-age": "600",
            }
        )
        return Response(status_code=204, headers=cors)
    # Credentials first: a request without a valid token spends nobody's handshakes.
    credentials = await _credentials_header_only(security, request)
    if isinstance(credentials, Response):
        return credentials
    peer = request.client.host if request.client else ""
    address = security.addresses.client(peer, request.headers.getlist("x-forwarded-for"))
    refusal = security.gate.handshake(time.monotonic(), address)
    if refusal is not None:
        return refusal_response(refusal)
    try:
        ticket = await security.tickets.mint(credentials)
    except TicketStoreUnavailable:
        return PlainTextResponse("ticket store unavailable; retry\n", 503, headers=cors)
    body = {"ticket": ticket, "expires_in": security.tickets.ttl}
    return JSONResponse(body, headers={**cors, "cache-control": "no-store"})


async def _credentials_header_only(security: Security, request: Request) -> Grant | Response:
    if "ticket" in request.query_params or "authorization" not in request.headers:
        return _unauthorized("send Authorization: Bearer <token>")
    grant = await _credentials(security, request)
    if grant is None:
        return _unauthorized("send Authorization: Bearer <token>")
    return grant


routes = [Route("/auth/ticket", _ticket, methods=["POST", "OPTIONS"])]
"""The ticket endpoint, mounted by :func:`gateway.app.create_app`."""
