"""Every setting, read from ``RELAYCAST_*`` environment variables.

Each field of :class:`Settings` maps to ``RELAYCAST_<FIELD>`` (upper case), and the
command line can override any of them (``--redis-url`` for ``redis_url``). The README's
configuration table lists them.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any

import msgspec

from shared.channels import Namespaces
from shared.state.series import parse_tiers

__all__ = ["Settings", "SettingsError"]

ENV_PREFIX = "RELAYCAST_"


class SettingsError(ValueError):
    """A setting has a value that cannot work."""


class Settings(msgspec.Struct, kw_only=True, dict=True):
    """Settings shared by gateways, publishers and the command line."""

    host: str = "127.0.0.1"
    """Address the gateway listens on."""
    port: int = 8000
    """Port the gateway listens on."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    """Broker URL: ``redis://``/``rediss://``/``unix://``, ``redis+sentinel://``,
    ``redis+cluster://`` (docs/redis-topologies.md), or ``memory://`` for one process."""
    key_prefix: str = "rc"
    """Prefix of every Redis key and pub/sub channel Relaycast uses."""
    gateway_id: str = ""
    """Name of this gateway in logs, metrics and the dashboard (default: host:port:pid)."""
    log_level: str = "info"
    workers: str = "1"
    """Gateway processes sharing the port (SO_REUSEPORT), each with its own id: a number, or
    ``auto`` for one per CPU this process may use. More than one runs a supervisor that
    replaces a worker that dies and forwards SIGTERM to all (docs/deploy.md)."""
    mode: str = "production"
    """``production``: channels need tokens as their namespace says, and the gateway refuses
    to start without token keys and an API key. ``development`` (what ``relaycast up``
    runs): anyone may read every channel, said loudly at start."""

    max_frame_bytes: int = 65536
    """Largest inbound WebSocket frame, and the most a compressed message may inflate to;
    beyond, the connection closes with 1009."""
    compression: bool = True
    """Offer WebSocket clients permessage-deflate: each message is compressed once and the
    same compressed frame goes to every client that accepted (docs/performance.md)."""
    max_subscriptions: int = 100
    """Subscriptions one connection may hold."""
    outbox_messages: int = 1024
    """Frames queued for one client before its slow-client policy applies."""
    outbox_bytes: int = 4 * 1024 * 1024
    """Bytes queued for one client before its slow-client policy applies."""
    heartbeat_interval: float = 15.0
    """Seconds between server pings."""
    heartbeat_timeout: float = 45.0
    """Seconds of client silence after which the connection is closed with 4000."""
    drain_seconds: float = 10.0
    """On SIGTERM, clients are closed with 1012 spread over this many seconds."""
    max_connection_age: float = 0.0
    """Seconds after which a connection is asked to reconnect (4002), so load spreads onto
    new gateways after a scale-out; 0 turns this off."""
    max_connection_age_jitter: float = 0.2
    """Each connection's age limit is drawn from [age x (1 - jitter), age], spreading reconnects."""
    sse_keepalive: float = 10.0
    """Seconds of silence after which an SSE stream gets a comment line, so proxies with
    idle timeouts (30-60 s is common) keep it open."""
    poll_wait: float = 25.0
    """Longest a long-poll waits for a message, in seconds (a request may ask for less)."""
    dashboard_gateways: str = ""
    """Gateways besides its own that the dashboard may connect to (and hand its token to)
    when a link names them in ``?gateways=``: origins such as ``https://rt-2.example.com``,
    comma-separated. Empty: only the gateway that served the page."""

    replay_batch: int = 500
    """Messages read from history per round trip during resume."""
    replay_cap: int = 10000
    """Most messages one resume may replay; beyond it the client is told recovered: false."""
    probe_interval: float = 5.0
    """Seconds between end-to-end probes through the gateway's own pub/sub channel."""
    probe_timeout: float = 10.0
    """A probe not seen back within this many seconds (of an on-time loop) forces a reconnect."""
    namespaces: str = ""
    """JSON list of channel options (see shared/channels.py); empty uses the defaults."""
    max_payload_bytes: int = 1024 * 1024
    """Largest payload the publisher library accepts."""

    api_key: str = ""
    """Bearer key the HTTP API (``/api/...``) requires; empty leaves it open (development)."""

    token_secret: str = ""
    """HS256 key of connection tokens (at least 32 bytes); empty: no HS256 tokens."""
    token_public_key: str = ""
    """RS256 or ES256 (P-256) public key of connection tokens: PEM text, or a PEM file's path."""
    token_jwks_file: str = ""
    """Path of a JWKS file (JSON) of RS256/ES256 token keys, chosen by the token's ``kid``."""
    token_algorithms: str = "HS256,RS256,ES256"
    """Token algorithms accepted (any of HS256, RS256, ES256; never ``none``), comma-separated."""
    token_audience: str = "relaycast"
    """The ``aud`` a token must carry; empty accepts tokens without one."""
    token_issuer: str = ""
    """The ``iss`` a token must carry; empty does not check it."""
    token_leeway: float = 5.0
    """Seconds of clock skew allowed when checking a token's ``exp``, ``nbf`` and ``iat``."""
    ticket_ttl: float = 30.0
    """Seconds a ticket (``POST /auth/ticket``, for SSE and polling) stays usable, once."""
    auth_timeout: float = 10.0
    """Production: seconds a connection may stay anonymous with no subscription (then 4501)."""
    allowed_origins: str = ""
    """Browser origins allowed to connect (``https://app.example.com``, ``https://*.example.com``,
    ``*``), comma-separated. Empty: the gateway's own origin in production, any in development."""
    trusted_proxies: str = ""
    """Addresses or networks (CIDR) of proxies whose ``X-Forwarded-For`` names the client."""
    max_connections: int = 20000
    """Connections one gateway holds (all transports); beyond, new ones get 503. 0: no limit."""
    max_connections_per_address: int = 0
    """Connections from one client address; beyond, 429. 0: no limit (set it with
    ``trusted_proxies`` behind a load balancer, or every client shares its address)."""
    handshake_rate: float = 1000.0
    """WebSocket upgrades and SSE streams one gateway opens per second (a second's worth may
    come at once); beyond, 429. 0: no limit."""
    handshake_rate_per_address: float = 0.0
    """The share of ``handshake_rate`` one client address may use per second (WebSocket
    upgrades, SSE streams, tickets); beyond, 429. 0: no per-address share (set it with
    ``trusted_proxies`` behind a load balancer, as ``max_connections_per_address``)."""
    poll_rate: float = 10.0
    """Polls per second one client may make on average (a user by its token, else an
    address); ``poll_burst`` at once; beyond, 429. 0: no limit."""
    poll_burst: int = 20
    """Polls one client may make at once before ``poll_rate`` applies."""
    header_timeout: float = 10.0
    """Seconds a new HTTP connection may take to send a whole request head (and a request
    its whole body); then it is closed."""
    max_pending_connections: int = 1000
    """Connections whose request head has not arrived yet; more are closed at once."""
    frame_rate: float = 50.0
    """Frames per second one connection may send on average; beyond, close 4029. 0: no limit."""
    frame_burst: int = 300
    """Frames one connection may send at once before ``frame_rate`` applies."""
    task_ttl: float = 86400.0
    """Seconds a task's state is kept in Redis after its last change."""
    task_log_lines: int = 10000
    """Lines of one task's log kept (the oldest go first); apart from channel history."""
    task_log_age: float = 86400.0
    """Seconds a line of a task's log is kept (lines older go at the next line's write)."""
    metrics_host: str = ""
    """Host name the metrics publisher reports as (default: this machine's name)."""
    metrics_interval: float = 5.0
    """Seconds between metrics samples while someone listens."""
    metrics_idle_interval: float = 60.0
    """Seconds between metrics samples while nobody listens (0: none until someone does)."""
    alerts_rules: str = ""
    """Alert rules file (TOML); empty uses the rules shipped in publisher/default_alerts.toml."""
    alerts_interval: float = 5.0
    """Seconds between evaluations of the alert rules."""
    alerts_recent: int = 10
    """Resolved alerts kept, and shown at once to new subscribers of ``alerts@state``."""
    notify_keep: int = 500
    """Notifications kept per user; the oldest drop out beyond it."""
    notify_age: float = 2592000.0
    """Seconds a notification is kept (30 days): older ones are neither listed nor counted,
    and go at the user's next write."""
    notify_destinations: str = "public"
    """Where webhook sinks may send, comma-separated: ``public`` (addresses on the public
    internet), host names (``hooks.example.com``, ``*.example.com``), addresses and networks
    (``10.1.2.3``, ``10.0.0.0/8``). Loopback, private and link-local addresses are refused
    unless listed."""
    notify_timeout: float = 5.0
    """Seconds one attempt to deliver to a sink may take (connect, send, answer)."""
    notify_max_attempts: int = 5
    """Attempts of one delivery before it is recorded as failed (a sink may set its own)."""
    notify_retry_delay: float = 1.0
    """Seconds before the second attempt; each later wait doubles (at most a minute)."""
    smtp_host: str = ""
    """SMTP server of email sinks (empty: email deliveries fail, recorded as such)."""
    smtp_port: int = 25
    smtp_from: str = "relaycast@localhost"
    """Sender address of notification emails."""
    history_tiers: str = "0:1h,1m:1d,15m:30d"
    """Metric history kept in Redis: ``step:kept`` tiers, finest first (step 0: every sample)."""
    history_max_points: int = 5000
    """Most points one history query returns."""
    metrics_series_cap: int = 1000
    """Most series (metric and entity pairs) one metrics source may have."""
    health_port: int = 0
    """Port of the metrics, alerts or notify process' health endpoint (0: none)."""

    def __post_init__(self) -> None:
        positive = (
            "max_frame_bytes",
            "max_subscriptions",
            "outbox_messages",
            "outbox_bytes",
            "heartbeat_interval",
            "heartbeat_timeout",
            "replay_batch",
            "replay_cap",
            "probe_interval",
            "probe_timeout",
            "max_payload_bytes",
            "sse_keepalive",
            "poll_wait",
            "poll_burst",
            "header_timeout",
            "task_ttl",
            "task_log_lines",
            "task_log_age",
            "metrics_interval",
            "alerts_interval",
            "alerts_recent",
            "notify_keep",
            "notify_age",
            "notify_timeout",
            "notify_max_attempts",
            "history_max_points",
            "metrics_series_cap",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise SettingsError(f"{ENV_PREFIX}{name.upper()} must be > 0")
        if self.notify_retry_delay < 0:
            raise SettingsError(f"{ENV_PREFIX}NOTIFY_RETRY_DELAY must be >= 0")
        if self.metrics_idle_interval < 0:
            raise SettingsError(f"{ENV_PREFIX}METRICS_IDLE_INTERVAL must be >= 0 (0: off)")
        try:
            parse_tiers(self.history_tiers)
        except ValueError as exc:
            raise SettingsError(f"{ENV_PREFIX}HISTORY_TIERS: {exc}") from exc
        if not 0 <= self.health_port <= 65535:
            raise SettingsError(f"{ENV_PREFIX}HEALTH_PORT must be a port number (0: none)")
        if self.drain_seconds < 0:
            raise SettingsError(f"{ENV_PREFIX}DRAIN_SECONDS must be >= 0")
        if self.max_connection_age < 0:
            raise SettingsError(f"{ENV_PREFIX}MAX_CONNECTION_AGE must be >= 0 (0: off)")
        for name in (
            "max_connections",
            "max_connections_per_address",
            "handshake_rate",
            "handshake_rate_per_address",
            "poll_rate",
            "max_pending_connections",
        ):
            if getattr(self, name) < 0:
                raise SettingsError(f"{ENV_PREFIX}{name.upper()} must be >= 0 (0: no limit)")
        if self.frame_rate < 0 or self.frame_burst < 1:
            raise SettingsError(
                f"{ENV_PREFIX}FRAME_RATE must be >= 0 (0: no limit) and FRAME_BURST >= 1"
            )
        for entry in self.dashboard_origins():
            scheme, _, rest = entry.partition("://")
            if scheme not in ("http", "https") or not rest or "/" in rest or "*" in rest:
                raise SettingsError(
                    f"{ENV_PREFIX}DASHBOARD_GATEWAYS: {entry!r} is not an origin"
                    " (http:// or https://, a host, an optional port, no path)"
                )
        if self.mode not in ("production", "development"):
            raise SettingsError(f"{ENV_PREFIX}MODE must be production or development")
        if self.token_leeway < 0 or self.ticket_ttl <= 0 or self.auth_timeout < 0:
            raise SettingsError(
                f"{ENV_PREFIX}TOKEN_LEEWAY and AUTH_TIMEOUT must be >= 0, TICKET_TTL > 0"
            )
        if not 0 <= self.max_connection_age_jitter < 1:
            raise SettingsError(f"{ENV_PREFIX}MAX_CONNECTION_AGE_JITTER must be in [0, 1)")
        self.worker_count()  # says what is wrong with the value now, not at start
        if not self.gateway_id:
            self.gateway_id = f"{socket.gethostname()}:{self.port}:{os.getpid()}"
        self.channel_options = (
            Namespaces.from_json(self.namespaces) if self.namespaces else Namespaces()
        )

    def worker_count(self) -> int:
        """``workers`` as a number: ``auto`` is the number of CPUs this process may run on.

        Raises:
            SettingsError: neither ``auto`` nor a whole number from 1.
        """
        value = self.workers.strip().lower()
        if value == "auto":
            return (
                len(os.sched_getaffinity(0))
                if hasattr(os, "sched_getaffinity")
                else (os.cpu_count() or 1)
            )
        if not value.isdigit() or int(value) < 1:
            raise SettingsError(f"{ENV_PREFIX}WORKERS must be a number from 1, or auto")
        return int(value)

    def dashboard_origins(self) -> list[str]:
        """The origins of ``dashboard_gateways``, lower-cased, without trailing slashes."""
        entries = (e.strip().rstrip("/").lower() for e in self.dashboard_gateways.split(","))
        return [e for e in entries if e]

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        return cls.__struct_fields__

    @classmethod
    def load(
        cls, overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
    ) -> Settings:
        """Build settings from the environment, then ``overrides`` (None values ignored).

        Raises:
            SettingsError: a value has the wrong type or range; the message names it.
        """
        env = os.environ if env is None else env
        raw: dict[str, Any] = {}
        for name in cls.__struct_fields__:
            value = env.get(ENV_PREFIX + name.upper())
            if value is not None:
                raw[name] = value
        for name, value in (overrides or {}).items():
            if value is not None:
                raw[name] = value
        try:
            return msgspec.convert(raw, cls, strict=False)
        except (msgspec.ValidationError, ValueError) as exc:
            raise SettingsError(str(exc)) from exc
