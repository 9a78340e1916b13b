"""Debian's haproxy running deploy/haproxy.cfg on 127.0.0.1, as the compose stack runs it.

Only the addresses differ from compose: they come from the environment variables the
config reads, here free ports on 127.0.0.1.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.helpers import free_port

__all__ = ["CONFIG", "SERVERS", "LoadBalancer", "find_haproxy"]

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "haproxy.cfg"
SERVERS = ("gateway-1", "gateway-2", "gateway-3")
"""The gateway slots in the config, in order."""


def find_haproxy() -> str | None:
    """The haproxy binary: on PATH, or where Debian puts it."""
    return shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy",) if os.access(p, os.X_OK)), None
    )


class LoadBalancer:
    """One haproxy process; :attr:`gateway_ports` are the ports its three slots point at."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.stats_port = free_port()
        self.gateway_ports = [free_port() for _ in SERVERS]
        self.log_path = Path(tempfile.mkstemp(prefix="relaycast-haproxy-", suffix=".log")[1])
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self) -> LoadBalancer:
        env = dict(os.environ)
        env["RELAYCAST_LB_BIND"] = f"127.0.0.1:{self.port}"
        env["RELAYCAST_LB_STATS_BIND"] = f"127.0.0.1:{self.stats_port}"
        for name, port in zip(SERVERS, self.gateway_ports, strict=True):
            env["RELAYCAST_GATEWAY_" + name.rsplit("-", 1)[1]] = f"127.0.0.1:{port}"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-db", "-f", str(CONFIG)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while not self._stats_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"haproxy did not start:\n{self.log_tail()}")
            time.sleep(0.05)
        return self

    def _stats_text(self) -> str:
        url = f"http://127.0.0.1:{self.stats_port}/stats;csv"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return str(response.read().decode())
        except OSError:
            return ""

    def status(self) -> dict[str, str]:
        """Each gateway slot's health as haproxy sees it: "UP", "DOWN", "UP 1/2", ..."""
        rows = csv.DictReader(io.StringIO(self._stats_text().lstrip("# ")))
        return {
            row["svname"]: row["status"]
            for row in rows
            if row["pxname"] == "gateways" and row["svname"] in SERVERS
        }

    def wait_status(self, server: str, wanted: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while self.status().get(server) != wanted:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{server} not {wanted} in haproxy: {self.status()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
