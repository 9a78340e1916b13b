"""Sample this host with psutil: the snapshot published on ``metrics.host.<host>``.

:class:`~shared.state.metrics.HostSnapshot` is the message (defined with the other
metrics payloads, so subscribers need not import the publisher).
"""

from __future__ import annotations

import time
from typing import Any

import psutil

from shared.state.metrics import Cpu, Disk, HostSnapshot, Load, Memory, Mount, Net, Swap

__all__ = ["HostSnapshot", "Sampler"]

_SKIP_FS = {"squashfs", "tmpfs", "devtmpfs", "proc", "sysfs", "overlayfs-ro", "iso9660"}
_MAX_MOUNTS = 16


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
