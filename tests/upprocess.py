"""``relaycast up`` as a test runs it: on free ports, its output in a file, Ctrl-C to stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

from tests.helpers import ROOT, free_port

__all__ = ["UpProcess", "relaycast"]


def relaycast(*args: str) -> list[str]:
    """The ``relaycast`` command as installed beside this Python."""
    return [sys.executable, "-m", "shared.cli", *args]


class UpProcess:
    """One ``relaycast up`` with its gateway on ``port`` and its Redis on ``redis_port``."""

    def __init__(self, log: Path, port: int | None = None, redis_port: int | None = None):
        self.port = port or free_port()
        self.redis_port = redis_port or free_port()
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.children: list[psutil.Process] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def start(self, ready_within: float = 30) -> UpProcess:
        """Start it and wait until the gateway is ready and the banner printed."""
        args = ["up", "--port", str(self.port), "--redis-port", str(self.redis_port)]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                relaycast(*args),
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(os.environ),
            )
        deadline = time.monotonic() + ready_within
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.text()
            try:
                with urllib.request.urlopen(self.base + "/readyz", timeout=2) as reply:
                    if reply.status == 200 and "Press Ctrl-C" in self.text():
                        self.children = psutil.Process(self.proc.pid).children(recursive=True)
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"relaycast up not ready in {ready_within}s:\n{self.text()}")

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def interrupt(self, timeout: float = 30) -> int:
        """Ctrl-C (SIGINT to ``relaycast up`` alone, as a terminal sends it to the foreground
        process, whose children run in sessions of their own); its exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """Leave nothing behind, whatever happened."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for child in self.children:
            if child.is_running():
                child.kill()
