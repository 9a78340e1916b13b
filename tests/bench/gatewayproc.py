"""One gateway process of a bench run: started pinned, or one already running; measured.

:class:`GatewayProc` starts ``relaycast gateway`` with ``RELAYCAST_*`` settings in its
environment, pinned to the gateway CPUs and with its file-descriptor limit raised as far
as the machine allows, and reads its CPU time, waiting time, memory and log.
"""

from __future__ import annotations

import contextlib
import os
import resource
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

__all__ = ["GatewayProc", "scrape"]


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


def scrape(url: str) -> dict[str, float]:
    """A gateway's /metrics as ``{"name{labels}": value}``; empty when unreachable."""
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
            text = response.read().decode()
    except (OSError, urllib.error.URLError):
        return {}
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                samples[name] = float(value)
    return samples


class GatewayProc:
    """A gateway the rig started (``proc``) or was pointed at (``url``, maybe ``pid``)."""

    def __init__(self, url: str, pid: int | None, proc: subprocess.Popen[bytes] | None = None):
        self.url = url
        self.pid = pid
        self.proc = proc
        self.log: Path | None = None
        self._ps = psutil.Process(pid) if pid else None

    @property
    def ws_addr(self) -> tuple[str, int]:
        host, _, port = self.url.removeprefix("http://").partition(":")
        return host, int(port)

    @classmethod
    def spawn(
        cls,
        redis_url: str,
        settings: dict[str, Any],
        cpus: list[int] | None,
        fds: int,
        source: str | None = None,
    ) -> GatewayProc:
        port = free_port()
        env = dict(os.environ)
        if source:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")]))
        env.update({f"RELAYCAST_{k.upper()}": str(v) for k, v in settings.items()})
        env["RELAYCAST_REDIS_URL"] = redis_url
        env.setdefault("RELAYCAST_LOG_LEVEL", "warning")
        # Measure capacity, not the admission limits (and no keys needed).
        env.setdefault("RELAYCAST_MODE", "development")
        env.setdefault("RELAYCAST_MAX_CONNECTIONS", "0")
        env.setdefault("RELAYCAST_HANDSHAKE_RATE", "0")
        log = Path(tempfile.mkstemp(prefix=f"relaycast-bench-gw-{port}-", suffix=".log")[1])
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "shared.cli", "gateway", "--port", str(port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_child_setup(cpus, fds),
            )
        gateway = cls(f"http://127.0.0.1:{port}", proc.pid, proc)
        gateway.log = log
        return gateway

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/readyz", timeout=2) as response:
                return int(response.status) == 200
        except (OSError, urllib.error.URLError):
            return False

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited ({self.proc.returncode}):\n{self.log_tail()}")
            if self.ready():
                return
            time.sleep(0.05)
        raise TimeoutError(f"gateway {self.url} not ready in {timeout}s:\n{self.log_tail()}")

    def cpu(self) -> float:
        """CPU seconds (user + system) the gateway has used; 0 when unknown."""
        if self._ps is None:
            return 0.0
        times = self._ps.cpu_times()
        return float(times.user + times.system)

    def system_cpu(self) -> float:
        """The kernel's part of :meth:`cpu` (system calls: on loopback, most is TCP)."""
        return float(self._ps.cpu_times().system) if self._ps is not None else 0.0

    def waited(self) -> float:
        """Seconds the gateway's threads spent runnable but waiting for a CPU (Linux)."""
        if not self.pid:
            return 0.0
        total = 0
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{self.pid}/task"):
                with open(f"/proc/{self.pid}/task/{task}/schedstat") as stat:
                    total += int(stat.read().split()[1])
        return total / 1e9

    def rss(self) -> int:
        return int(self._ps.memory_info().rss) if self._ps is not None else 0

    def alive(self) -> bool:
        return self.proc is None or self.proc.poll() is None

    def log_text(self) -> str:
        """The gateway's whole log (empty for a gateway the rig did not start)."""
        if self.log is None:
            return ""
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")
        return ""

    def log_tail(self, lines: int = 40) -> str:
        if self.log is None:
            return ""
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.log is not None:
            with contextlib.suppress(OSError):
                self.log.unlink()
