"""Publisher processes for integration tests: ``relaycast metrics``, ``alerts``, ``demo``.

Started exactly as ``relaycast up`` starts them, with settings as RELAYCAST_* variables
and the log in a temp file (printed when a test fails).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["PublisherProcess"]

ROOT = Path(__file__).resolve().parent.parent


class PublisherProcess:
    """One ``relaycast <command>`` process on a test's Redis."""

    def __init__(self, command: str, redis_url: str, **settings: Any) -> None:
        self.command = command
        self.redis_url = redis_url
        self.settings = settings
        self.log_path = Path(tempfile.mkstemp(prefix=f"relaycast-{command}-", suffix=".log")[1])
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(
        cls, into: list[PublisherProcess], command: str, redis_url: str, **settings: Any
    ) -> PublisherProcess:
        """Start one and add it to ``into`` (the ``publishers`` fixture)."""
        process = cls(command, redis_url, **settings)
        into.append(process)
        env = dict(os.environ)
        env.update({f"RELAYCAST_{k.upper()}": str(v) for k, v in settings.items()})
        env["RELAYCAST_REDIS_URL"] = redis_url
        with open(process.log_path, "ab") as log:
            process.proc = subprocess.Popen(
                [sys.executable, "-m", "shared.cli", command],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return process

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.running():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""
