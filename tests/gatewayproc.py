"""One ``relaycast gateway`` process, as the tests and the bench start and measure it.

The integration tests start gateways on 127.0.0.1 with the settings a test names; the
bench (``tests/bench``) starts them the same way and also pins them to CPUs, raises
their file-descriptor limit, runs them from another source tree for A/B runs, or
attaches to a gateway that already runs, and reads their CPU time, the time they
waited for a CPU, and their memory.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from shared.localredis import free_port

__all__ = ["ROOT", "GatewayProcess"]

ROOT = Path(__file__).resolve().parent.parent
"""The checkout the gateways run from (unless given another ``source``)."""


def _child_setup(cpus: list[int] | None, fds: int) -> Callable[[], None]:
    def setup() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < fds:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (max(fds, hard), max(fds, hard)))
            except (ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    return setup


class GatewayProcess:
    """One gateway, with its log in a temp file; started here, or attached to by URL.

    It runs in development mode (anyone may read anything) unless ``mode="production"`` is
    among its settings; tests/security starts production gateways with keys. ``cpus``
    pins it, ``fds`` raises its file-descriptor limit to at least that many, and
    ``source`` runs it from another source tree (an export of another commit).
    """

    def __init__(
        self,
        redis_url: str,
        port: int | None = None,
        *,
        cpus: list[int] | None = None,
        fds: int = 0,
        source: str | None = None,
        gc_log: Path | None = None,
        **settings: Any,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.redis_url = redis_url
        self.settings = settings
        self.cpus = cpus
        self.fds = fds
        self.source = source
        self.gc_log = gc_log
        """Where the bench's probe logs every garbage collection (tests/bench/gcprobe)."""
        self.log_path: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None
        self._ps: psutil.Process | None = None

    @classmethod
    def start(cls, into: list[GatewayProcess], redis_url: str, **settings: Any) -> GatewayProcess:
        """Start a gateway, add it to ``into`` (the ``gateways`` fixture), wait until ready."""
        gateway = cls(redis_url, **settings)
        into.append(gateway)
        gateway.spawn()
        gateway.wait_ready()
        return gateway

    @classmethod
    def attach(cls, url: str, pid: int | None = None) -> GatewayProcess:
        """A gateway that already runs at ``url`` (``http://host:port``); ``pid`` to measure it."""
        host, _, port = url.rstrip("/").removeprefix("http://").partition(":")
        gateway = cls("", int(port))
        gateway.host, gateway._pid = host, pid
        return gateway

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

    @property
    def ws_addr(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def pid(self) -> int | None:
        """The process id: of the process started here, or the one given to attach."""
        return self.proc.pid if self.proc is not None else self._pid

    def spawn(self) -> None:
        env = dict(os.environ)
        if self.source:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [self.source, env.get("PYTHONPATH")]))
        if self.gc_log is not None:
            probe = str(ROOT / "tests" / "bench" / "gcprobe")
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), probe]))
            env["RELAYCAST_BENCH_GC_LOG"] = str(self.gc_log)
        env.update({f"RELAYCAST_{k.upper()}": str(v) for k, v in self.settings.items()})
        env["RELAYCAST_REDIS_URL"] = self.redis_url
        env.setdefault("RELAYCAST_LOG_LEVEL", "info")
        # Gateways default to production, which needs keys; tests/security passes mode=production.
        env.setdefault("RELAYCAST_MODE", "development")
        if self.log_path is None:
            prefix = f"relaycast-gw-{self.port}-"
            self.log_path = Path(tempfile.mkstemp(prefix=prefix, suffix=".log")[1])
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            self.command(),
            env=env,
            # `python -m` puts the working directory first on sys.path: the source runs.
            cwd=self.source or ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_child_setup(self.cpus, self.fds) if self.cpus or self.fds else None,
        )
        log.close()
        self._ps = None

    def command(self) -> list[str]:
        """What runs the gateway: ``relaycast gateway``."""
        return [sys.executable, "-m", "shared.cli", "gateway", "--port", str(self.port)]

    def restart(self) -> None:
        """Start again on the same port with the same settings (after kill or drain)."""
        self.kill()
        self.spawn()
        self.wait_ready()

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, str]:
        """HTTP GET; (status, body). Status 0 when nothing answers."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError:
            return 0, ""

    def ready(self) -> bool:
        return self.get("/readyz", timeout=2)[0] == 200

    def wait_ready(self, timeout: float = 20.0) -> None:
        self.wait_for(self.ready, timeout, f"gateway {self.url} ready")

    def wait_for(self, predicate: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited ({self.proc.returncode}):\n{self.log_tail()}")
            if predicate():
                return
            time.sleep(0.05)
        raise TimeoutError(f"timed out waiting for {what}:\n{self.log_tail()}")

    def samples(self) -> dict[str, float]:
        """Every sample of /metrics as ``{"name{labels}": value}``; empty when unreachable."""
        status, body = self.get("/metrics", timeout=10)
        samples: dict[str, float] = {}
        if status != 200:
            return samples
        for line in body.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                with contextlib.suppress(ValueError):
                    samples[name] = float(value)
        return samples

    def metric(self, name: str) -> float:
        """Sum of every sample of a Prometheus metric (0 when absent)."""
        return sum(v for k, v in self.samples().items() if k == name or k.startswith(name + "{"))

    def _process(self) -> psutil.Process | None:
        if self._ps is None and self.pid:
            self._ps = psutil.Process(self.pid)
        return self._ps

    def _family(self) -> list[psutil.Process]:
        """The gateway's process and, under ``--workers``, its workers (that live now)."""
        ps = self._process()
        if ps is None:
            return []
        try:
            return [ps, *ps.children(recursive=True)]
        except psutil.Error:
            return [ps]

    def cpu(self) -> float:
        """CPU seconds (user + system) the gateway (with its workers) has used; 0 when unknown."""
        total = 0.0
        for ps in self._family():
            with contextlib.suppress(psutil.Error):
                times = ps.cpu_times()
                total += times.user + times.system
        return total

    def system_cpu(self) -> float:
        """The kernel's part of :meth:`cpu` (system calls: on loopback, most is TCP)."""
        total = 0.0
        for ps in self._family():
            with contextlib.suppress(psutil.Error):
                total += ps.cpu_times().system
        return total

    def waited(self) -> float:
        """Seconds the gateway's threads spent runnable but waiting for a CPU (Linux)."""
        total = 0
        for ps in self._family():
            with contextlib.suppress(OSError):
                for task in os.listdir(f"/proc/{ps.pid}/task"):
                    with open(f"/proc/{ps.pid}/task/{task}/schedstat") as stat:
                        total += int(stat.read().split()[1])
        return total / 1e9

    def rss(self) -> int:
        """Resident memory in bytes (with its workers'); 0 when unknown."""
        total = 0
        for ps in self._family():
            with contextlib.suppress(psutil.Error):
                total += ps.memory_info().rss
        return total

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def close(self) -> None:
        """Kill the gateway (if started here) and remove its log."""
        self.kill()
        if self.log_path is not None:
            with contextlib.suppress(OSError):
                self.log_path.unlink()

    def log_text(self) -> str:
        """The gateway's whole log (empty for a gateway not started here)."""
        if self.log_path is None:
            return ""
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])
