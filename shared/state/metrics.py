"""What the metrics channels carry: the Structs of their messages.

- ``metrics.host.<host>``: a :class:`HostSnapshot`, one sample of a host (``relaycast
  metrics``); its field paths (``cpu.percent``, ``load.1m``, ``disk.max_percent``...) are
  what alert rules name. docs/publishers.md lists every field.
- ``metrics.fleet``: a :class:`FleetSnapshot`, one :class:`HostSummary` per host.
- ``metrics.source.<source>``: a :class:`SourceSnapshot`, every series of a service's own
  metrics (:class:`SeriesInfo` each), after each batch it sends.

They live here, not with the publishers that fill them, so that subscribers (the Python
client, the generated TypeScript types) can name them without importing the publisher side.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "Cpu",
    "Disk",
    "FleetSnapshot",
    "HostSnapshot",
    "HostSummary",
    "Load",
    "Memory",
    "Mount",
    "Net",
    "SeriesInfo",
    "SourceSnapshot",
    "Swap",
]


class Cpu(msgspec.Struct):
    percent: float
    per_core: list[float]
    count: int


class Memory(msgspec.Struct):
    total: int
    available: int
    used: int
    percent: float


class Swap(msgspec.Struct):
    total: int
    used: int
    percent: float


class Mount(msgspec.Struct):
    mount: str
    total: int
    used: int
    free: int
    percent: float


class Disk(msgspec.Struct):
    percent: float
    """Usage of the root file system."""
    max_percent: float
    """Usage of the fullest mounted file system."""
    mounts: list[Mount]
    read_bytes_per_s: float
    write_bytes_per_s: float
    read_ops_per_s: float
    write_ops_per_s: float


class Net(msgspec.Struct):
    recv_bytes_per_s: float
    sent_bytes_per_s: float
    recv_packets_per_s: float
    sent_packets_per_s: float
    errors_per_s: float
    drops_per_s: float


class Load(msgspec.Struct):
    m1: float = msgspec.field(name="1m")
    m5: float = msgspec.field(name="5m")
    m15: float = msgspec.field(name="15m")
    per_core_1m: float


class HostSnapshot(msgspec.Struct, kw_only=True):
    """One sample of a host, as published on ``metrics.host.<host>``. Rates are per second
    over the time since the previous sample; sizes are bytes; percents are 0-100."""

    host: str
    time: float
    interval: float
    """Seconds until the next sample is due (the snapshot is stale after three)."""
    cpu: Cpu
    memory: Memory
    swap: Swap
    disk: Disk
    net: Net
    load: Load
    processes: int
    uptime: float


class HostSummary(msgspec.Struct, kw_only=True):
    """One host in ``metrics.fleet``; a field is null when the host does not report it."""

    host: str
    time: float
    stale: bool
    cpu: float | None = None
    memory: float | None = None
    swap: float | None = None
    disk: float | None = None
    load_1m: float | None = None
    net_recv_bytes_per_s: float | None = None
    net_sent_bytes_per_s: float | None = None
    processes: int | None = None
    uptime: float | None = None


class FleetSnapshot(msgspec.Struct, kw_only=True):
    """Published on ``metrics.fleet``: every host that reported in the last day."""

    time: float
    hosts: list[HostSummary]


class SeriesInfo(msgspec.Struct, kw_only=True):
    """A series' newest value, as kept in its source's hash and published."""

    metric: str
    entity: str = ""
    kind: str = "gauge"
    unit: str = ""
    value: float
    time: float


class SourceSnapshot(msgspec.Struct, kw_only=True):
    """Published on ``metrics.source.<source>`` after each batch: every series of the
    source, each with its newest value (``time`` and ``interval`` are the batch's; a
    counter's value is its rate per second over ``interval``)."""

    source: str
    time: float
    interval: float
    series: list[SeriesInfo]
