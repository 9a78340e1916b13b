"""How much one client, one address and the whole gateway may ask for.

Three limits guard the way in, for every transport, in :class:`Gate`: connections held
by the gateway (``max_connections``, refused with 503), connections from one client
address (``max_connections_per_address``, 429) and new WebSocket upgrades and SSE streams
per second (``handshake_rate``, 429, of which one address may take
``handshake_rate_per_address``). Each connection then spends a :class:`TokenBucket`
of inbound frames (``frame_rate``/``frame_burst``, close 4029; :mod:`gateway.session`).

The client address is the socket's peer, unless that peer is a trusted proxy
(``trusted_proxies``): then it is the nearest address in ``X-Forwarded-For`` that is not
a trusted proxy itself (:class:`ClientAddresses`). A header from anyone else is ignored,
so a client cannot pick its own address.

Nothing here reads a clock or does I/O: callers pass the time.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from gateway import observe
from gateway.bucket import TokenBucket
from shared.settings import Settings, SettingsError

__all__ = ["ClientAddresses", "Gate", "KeyedBuckets", "Refusal", "TokenBucket"]


class KeyedBuckets:
    """A :class:`TokenBucket` per key (a client address, a user), made on first use.

    Buckets that have refilled completely hold no information and are forgotten when
    there are more than ``max_keys``, so memory stays bounded whoever asks.
    """

    __slots__ = ("buckets", "burst", "max_keys", "rate")

    def __init__(self, rate: float, burst: float, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self.buckets: dict[str, TokenBucket] = {}

    def take(self, key: str, now: float) -> bool:
        """Spend one of ``key``'s tokens at time ``now``; False when it has none left."""
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= self.max_keys:
                self._forget_full(now)
            bucket = self.buckets[key] = TokenBucket(self.rate, self.burst)
        return bucket.take(now)

    def _forget_full(self, now: float) -> None:
        refill = self.burst / self.rate
        self.buckets = {
            k: b
            for k, b in self.buckets.items()
            if b.updated is not None and now - b.updated < refill
        }
        if len(self.buckets) >= self.max_keys:  # all busy: start over rather than grow
            self.buckets.clear()


class Refusal:
    """Why a new connection is refused: the HTTP status and a line for the client."""

    __slots__ = ("limit", "status", "text")

    def __init__(self, status: int, text: str, limit: str) -> None:
        self.status = status
        self.text = text
        self.limit = limit


class Gate:
    """Admits new connections under the gateway-wide and per-address limits.

    Every :meth:`admit` that returns None must be paired with one :meth:`release` of the
    same address when the connection ends.
    """

    def __init__(self, settings: Settings) -> None:
        self.max_connections = settings.max_connections
        self.per_address = settings.max_connections_per_address
        rate = settings.handshake_rate
        self.handshakes = TokenBucket(rate, max(1.0, rate)) if rate > 0 else None
        share = settings.handshake_rate_per_address
        self.address_handshakes = KeyedBuckets(share, max(1.0, share)) if share > 0 else None
        self.connections = 0
        self.by_address: dict[str, int] = {}

    def admit(self, address: str, now: float, handshake: bool = True) -> Refusal | None:
        """Count a new connection from ``address``, or say why not.

        ``handshake`` is False for requests that are not a connection set-up of their own
        (long-polls): they count as connections but not against the handshake rate.
        """
        if handshake:
            refusal = self.handshake(now, address)
            if refusal is not None:
                return refusal
        if self.max_connections and self.connections >= self.max_connections:
            return _refuse(503, "gateway full; connect to another", "connections")
        held = self.by_address.get(address, 0)
        if self.per_address and held >= self.per_address:
            return _refuse(429, "too many connections from your address", "connections_per_address")
        self.connections += 1
        self.by_address[address] = held + 1
        return None

    def handshake(self, now: float, address: str) -> Refusal | None:
        """Spend one handshake of ``address``'s share, then of the gateway's rate (also
        for ticket requests). The share comes first: one address that uses up its own
        share leaves the gateway's rate to everyone else."""
        shares = self.address_handshakes
        if shares is not None and not shares.take(address, now):
            return _refuse(
                429, "too many new connections from your address; retry shortly", "handshake_share"
            )
        if self.handshakes is not None and not self.handshakes.take(now):
            return _refuse(429, "too many new connections; retry shortly", "handshake_rate")
        return None

    def release(self, address: str) -> None:
        """A connection admitted from ``address`` ended."""
        self.connections -= 1
        held = self.by_address.get(address, 0) - 1
        if held > 0:
            self.by_address[address] = held
        else:
            self.by_address.pop(address, None)


def _refuse(status: int, text: str, limit: str) -> Refusal:
    observe.LIMIT_HITS.labels(limit).inc()
    return Refusal(status, text, limit)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClientAddresses:
    """Tells a connection's client address, trusting ``X-Forwarded-For`` only from proxies."""

    def __init__(self, trusted: Iterable[str]) -> None:
        self.trusted: list[Network] = []
        for entry in trusted:
            try:
                self.trusted.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError as exc:
                raise SettingsError(
                    f"RELAYCAST_TRUSTED_PROXIES: {entry.strip()!r} is not an address or network"
                ) from exc

    @classmethod
    def from_settings(cls, settings: Settings) -> ClientAddresses:
        return cls(e for e in settings.trusted_proxies.split(",") if e.strip())

    def is_trusted(self, address: str) -> bool:
        if not self.trusted:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    def client(self, peer: str, forwarded_for: Iterable[str] = ()) -> str:
        """The client's address, given the socket's ``peer`` and the ``X-Forwarded-For``
        header values (each a comma-separated list, the nearest hop last)."""
        if not self.is_trusted(peer):
            return peer
        hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
        address = peer
        for hop in reversed([h for h in hops if h]):
            try:
                address = str(ipaddress.ip_address(hop))
            except ValueError:
                break  # garbage from beyond the proxies: stop at the last good hop
            if not self.is_trusted(address):
                break
        return address
