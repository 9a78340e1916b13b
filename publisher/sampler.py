"""Sample this host with psutil: the snapshot published on ``metrics.host.<host>``.

:class:`HostSnapshot` is the message; its field paths (``cpu.percent``, ``load.1m``,
``disk.max_percent``...) are what alert rules name. docs/publishers.md lists every field.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
import psutil

__all__ = ["HostSnapshot", "Sampler"]

_SKIP_FS = {"squashfs", "tmpfs", "devtmpfs", "proc", "sysfs", "overlayfs-ro", "iso9660"}
_MAX_MOUNTS = 16


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


class Sampler:
    """Reads the host with psutil. Rates come from the counters of the previous call, so
    the first call after construction measures from construction."""

    def __init__(self) -> None:
        psutil.cpu_percent(percpu=True)
        self._last = time.monotonic()
        self._disk = psutil.disk_io_counters()
        self._net = psutil.net_io_counters()

    def __call__(self, host: str, interval: float) -> HostSnapshot:
        cores = psutil.cpu_percent(percpu=True) or [0.0]
        now = time.monotonic()
        elapsed = max(now - self._last, 1e-3)
        self._last = now
        disk_io, net_io = psutil.disk_io_counters(), psutil.net_io_counters()
        disk_before, net_before = self._disk, self._net
        self._disk, self._net = disk_io, net_io

        def rate(new: Any, old: Any, *fields: str) -> float:
            if new is None or old is None:
                return 0.0
            delta = sum(getattr(new, f) - getattr(old, f) for f in fields)
            return round(max(0.0, float(delta) / elapsed), 1)

        memory, swap = psutil.virtual_memory(), psutil.swap_memory()
        mounts = _mounts()
        root = next((m for m in mounts if m.mount == "/"), mounts[0] if mounts else None)
        load = psutil.getloadavg()
        count = len(cores)
        return HostSnapshot(
            host=host,
            time=time.time(),
            interval=interval,
            cpu=Cpu(round(sum(cores) / count, 1), cores, count),
            memory=Memory(memory.total, memory.available, memory.used, memory.percent),
            swap=Swap(swap.total, swap.used, swap.percent),
            disk=Disk(
                percent=root.percent if root else 0.0,
                max_percent=max((m.percent for m in mounts), default=0.0),
                mounts=mounts,
                read_bytes_per_s=rate(disk_io, disk_before, "read_bytes"),
                write_bytes_per_s=rate(disk_io, disk_before, "write_bytes"),
                read_ops_per_s=rate(disk_io, disk_before, "read_count"),
                write_ops_per_s=rate(disk_io, disk_before, "write_count"),
            ),
            net=Net(
                recv_bytes_per_s=rate(net_io, net_before, "bytes_recv"),
                sent_bytes_per_s=rate(net_io, net_before, "bytes_sent"),
                recv_packets_per_s=rate(net_io, net_before, "packets_recv"),
                sent_packets_per_s=rate(net_io, net_before, "packets_sent"),
                errors_per_s=rate(net_io, net_before, "errin", "errout"),
                drops_per_s=rate(net_io, net_before, "dropin", "dropout"),
            ),
            load=Load(
                m1=round(load[0], 2),
                m5=round(load[1], 2),
                m15=round(load[2], 2),
                per_core_1m=round(load[0] / count, 2),
            ),
            processes=len(psutil.pids()),
            uptime=round(time.time() - psutil.boot_time(), 1),
        )


def _mounts() -> list[Mount]:
    seen: set[str] = set()
    mounts: list[Mount] = []
    paths = ["/"] + [
        p.mountpoint for p in psutil.disk_partitions(all=False) if p.fstype not in _SKIP_FS
    ]
    for path in paths:
        if path in seen or len(mounts) >= _MAX_MOUNTS:
            continue
        seen.add(path)
        try:
            usage = psutil.disk_usage(path)
        except OSError:
            continue
        mounts.append(Mount(path, usage.total, usage.used, usage.free, usage.percent))
    return mounts
