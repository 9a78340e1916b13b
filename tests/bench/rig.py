"""The processes of one bench run: Redis, gateways, load processes, the publisher.

:class:`Rig` starts what a scenario needs (or points at what already runs), pins it to
CPUs, measures the gateways with psutil, and stops everything it started when the run
ends, however it ends. With two or more CPUs the gateways get the last one and
everything else (Redis, load processes, publisher, this process) the others, as
``taskset`` would do; ``pin=False`` leaves scheduling to the kernel.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import resource
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import psutil

from shared.localredis import LocalRedis
from tests import numbered
from tests.bench import wsload
from tests.bench.gcpauses import GcLog, merge
from tests.bench.loadspec import LoadConfig
from tests.gatewayproc import GatewayProcess

__all__ = ["LoadGroup", "Rig", "RigOptions"]

_mp = multiprocessing.get_context("spawn")


@dataclass
class RigOptions:
    """Where the run happens and how the load is spread."""

    redis_url: str | None = None
    """Use this Redis instead of starting a private one."""
    gateway_urls: list[str] = field(default_factory=list)
    """Use these gateways (``http://host:port``) instead of starting any."""
    gateway_pids: list[int] = field(default_factory=list)
    """Pids of those gateways, to measure their CPU and memory."""
    gateways: int = 1
    workers: int = 1
    """Worker processes per gateway (``relaycast gateway --workers``), sharing its CPUs."""
    loaders: int = 0
    """Load processes; 0 picks one per load CPU (more when the fd limit requires)."""
    sources: int = 4
    """Source addresses 127.0.0.1 .. 127.0.0.N the clients connect from."""
    ramp: int = 256
    """Handshakes (and subscribes) each load process keeps in flight while connecting."""
    pin: bool = True
    settings: dict[str, Any] = field(default_factory=dict)
    """RELAYCAST_* settings for the gateways the rig starts."""
    nice: int = 0
    """Scheduling priority of every process the rig starts (negative needs root): on a
    shared machine, a negative value keeps other work from skewing the figures."""
    gateway_source: str | None = None
    """Run the gateways from this source tree (e.g. a ``git archive`` of another commit)."""


def plan_cpus(pin: bool) -> tuple[list[int] | None, list[int] | None]:
    """(gateway CPUs, load CPUs), or (None, None) when not pinning."""
    cpus = sorted(os.sched_getaffinity(0))
    if not pin or len(cpus) < 2:
        return None, None
    return [cpus[-1]], cpus[:-1]


def auto_loaders(clients: int, load_cpus: list[int] | None) -> int:
    """One load process per load CPU, or more if one may not open enough sockets."""
    per_process = max(1024, resource.getrlimit(resource.RLIMIT_NOFILE)[1]) - 100
    return max(len(load_cpus or [0]), -(-clients // per_process))


class LoadGroup:
    """Load processes that together hold ``clients`` connections."""

    def __init__(self, configs: list[wsload.LoadConfig]) -> None:
        self.pipes: list[Connection] = []
        self.procs: list[BaseProcess] = []
        for config in configs:
            parent, child = _mp.Pipe()
            proc = _mp.Process(target=wsload.run, args=(config, child), daemon=True)
            proc.start()
            child.close()
            self.pipes.append(parent)
            self.procs.append(proc)

    def ask(self, command: str, arg: Any = None, timeout: float = 120.0) -> list[Any]:
        """Send a command to every process; their replies (in order)."""
        for pipe in self.pipes:
            pipe.send((command, arg))
        replies = []
        deadline = time.monotonic() + timeout
        for pipe, proc in zip(self.pipes, self.procs, strict=True):
            while not pipe.poll(0.2):
                if not proc.is_alive():
                    raise RuntimeError(f"load process exited ({proc.exitcode})")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"load process did not answer {command!r} in {timeout}s")
            replies.append(pipe.recv())
        return replies

    def stop(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError, BrokenPipeError):
                pipe.send(("stop", None))
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        for pipe in self.pipes:
            pipe.close()


def _renice(pid: int | None, nice: int) -> None:
    if pid and nice:
        with contextlib.suppress(psutil.Error, OSError):
            psutil.Process(pid).nice(nice)


class Rig:
    """Everything one run needs; a context manager that cleans up after itself."""

    def __init__(self, options: RigOptions) -> None:
        self.options = options
        self.gateway_cpus, self.load_cpus = plan_cpus(options.pin)
        self.redis: LocalRedis | None = None
        self.redis_url = options.redis_url or ""
        self.gateways: list[GatewayProcess] = []
        self.loads: list[LoadGroup] = []
        self.publishers: list[BaseProcess] = []
        self.gc_logs: list[GcLog] = []

    def __enter__(self) -> Rig:
        if self.load_cpus:
            os.sched_setaffinity(0, self.load_cpus)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, settings: dict[str, Any] | None = None, fds: int = 1024) -> None:
        """Start (or attach to) Redis and the gateways; wait until every gateway is ready."""
        if not self.redis_url:
            self.redis = LocalRedis().start()
            if self.redis.proc is not None:
                if self.load_cpus:
                    os.sched_setaffinity(self.redis.proc.pid, self.load_cpus)
                _renice(self.redis.proc.pid, self.options.nice)
            self.redis_url = self.redis.url
        if self.options.gateway_urls:
            pids = self.options.gateway_pids + [0] * len(self.options.gateway_urls)
            self.gateways = [
                GatewayProcess.attach(url, pid or None)
                for url, pid in zip(self.options.gateway_urls, pids, strict=False)
            ]
        else:
            merged = {**self.options.settings, **(settings or {})}
            if self.options.workers > 1:
                merged["workers"] = self.options.workers
            for _ in range(self.options.gateways):
                gateway = GatewayProcess(
                    self.redis_url,
                    cpus=self.gateway_cpus,
                    fds=fds + 256,
                    source=self.options.gateway_source,
                    gc_log=Path(tempfile.mkstemp(prefix="relaycast-gc-", suffix=".log")[1]),
                    **merged,
                )
                self.gateways.append(gateway)
                gateway.spawn()
        for gateway in self.gateways:
            if gateway.proc is not None:
                _renice(gateway.pid, self.options.nice)
            gateway.wait_ready(30)

    def load(
        self,
        clients: int,
        channels: list[str],
        *,
        since_epoch: str | None = None,
        resume: bool = True,
        sample_every: int = 1,
        urls: list[tuple[str, int]] | None = None,
        compression: bool = False,
    ) -> LoadGroup:
        """Start load processes for ``clients`` connections over ``channels`` (not yet open).

        The clients connect to the rig's gateways, or to ``urls`` (host, port).
        """
        loaders = self.options.loaders or auto_loaders(clients, self.load_cpus)
        loaders = max(1, min(loaders, clients))
        sources = [f"127.0.0.{i}" for i in range(1, max(1, self.options.sources) + 1)]
        urls = urls or [g.ws_addr for g in self.gateways]
        configs = []
        first = 0
        for k in range(loaders):
            count = clients // loaders + (1 if k < clients % loaders else 0)
            configs.append(
                LoadConfig(
                    urls=urls,
                    channels=channels,
                    first=first,
                    count=count,
                    sources=sources,
                    since_epoch=since_epoch,
                    resume=resume,
                    cpus=self.load_cpus,
                    sample_every=sample_every,
                    max_pending=self.options.ramp,
                    compression=compression,
                )
            )
            first += count
        group = LoadGroup(configs)
        for proc in group.procs:
            _renice(proc.pid, self.options.nice)
        self.loads.append(group)
        return group

    def publisher(self, config: numbered.PublishConfig) -> Connection:
        """Start the publisher process; send it ``"go"``, then ``recv()`` its result."""
        config.redis_url = config.redis_url or self.redis_url
        config.cpus = self.load_cpus
        parent, child = _mp.Pipe()
        proc = _mp.Process(target=numbered.run, args=(config, child), daemon=True)
        proc.start()
        child.close()
        _renice(proc.pid, self.options.nice)
        self.publishers.append(proc)
        return parent

    def gateway_cpu(self) -> float:
        return sum(g.cpu() for g in self.gateways)

    def gateway_system_cpu(self) -> float:
        return sum(g.system_cpu() for g in self.gateways)

    def gateway_waited(self) -> float:
        return sum(g.waited() for g in self.gateways)

    def gateway_rss(self) -> int:
        return sum(g.rss() for g in self.gateways)

    def metrics(self) -> dict[str, float]:
        """Every gateway's /metrics samples, summed."""
        total: dict[str, float] = {}
        for gateway in self.gateways:
            for name, value in gateway.samples().items():
                total[name] = total.get(name, 0.0) + value
        return total

    def gc_mark(self) -> None:
        """Count garbage-collection pauses from now on (:meth:`gc_pauses`)."""
        self.gc_logs = [GcLog(g.gc_log) for g in self.gateways if g.gc_log is not None]

    def gc_pauses(self) -> dict[str, Any]:
        """The gateways' collections since :meth:`gc_mark` (none for attached gateways)."""
        return merge([log.summary() for log in self.gc_logs])

    def close(self) -> None:
        for group in self.loads:
            group.stop()
        for proc in self.publishers:
            proc.join(2)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        for gateway in self.gateways:
            gateway.close()
            if gateway.gc_log is not None:
                gateway.gc_log.unlink(missing_ok=True)
        if self.redis is not None:
            self.redis.close()
        self.loads, self.publishers, self.gateways, self.redis = [], [], [], None

    @contextlib.contextmanager
    def measure(self) -> Iterator[dict[str, float]]:
        """Gateway CPU seconds (and the kernel's part, ``system``), seconds it waited for a
        CPU, and wall seconds of the block."""
        out: dict[str, float] = {}
        cpu0, waited0, t0 = self.gateway_cpu(), self.gateway_waited(), time.monotonic()
        system0 = self.gateway_system_cpu()
        yield out
        out["cpu"] = self.gateway_cpu() - cpu0
        out["system"] = self.gateway_system_cpu() - system0
        out["waited"] = self.gateway_waited() - waited0
        out["wall"] = time.monotonic() - t0
