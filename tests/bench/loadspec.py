"""What a load process is asked to open (:class:`LoadConfig`) and what it reports
(:class:`LoadStats`): the contract between the rig and :mod:`tests.bench.wsload`."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["LoadConfig", "LoadStats"]


@dataclass
class LoadConfig:
    """What one load process opens.

    Connection ``i`` (for ``i`` in ``[first, first + count)``) connects to
    ``urls[i % len(urls)]`` from source address ``sources[i % len(sources)]`` and
    subscribes to ``channels[i % len(channels)]``.
    """

    urls: list[tuple[str, int]]
    channels: list[str]
    first: int
    count: int
    sources: list[str] = field(default_factory=lambda: ["127.0.0.1"])
    since_epoch: str | None = None
    """Subscribe with ``since: {offset: 0, epoch}`` (a resume from the start)."""
    resume: bool = True
    """Reconnect a connection the gateway closed, resuming from its last message."""
    max_pending: int = 256
    """Handshakes in flight at once."""
    cpus: list[int] | None = None
    sample_every: int = 1
    """Keep the latency of every n-th message."""
    compression: bool = False
    """Offer permessage-deflate, as browsers do, and inflate what arrives compressed."""


@dataclass
class LoadStats:
    """What one load process saw since its counters were last reset."""

    connected: int = 0
    failed: int = 0
    open: int = 0
    received: int = 0
    lost: int = 0
    duplicates: int = 0
    missing: int = 0
    """Messages up to the expected last one that never arrived (open connections)."""
    closes: dict[str, int] = field(default_factory=dict)
    reconnects: int = 0
    recovered: int = 0
    not_recovered: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    last_recv: float = 0.0
    cpu_seconds: float = 0.0
    latencies: bytes = b""
    """Seconds from publish to receipt, ``array('d')`` bytes (sampled)."""
