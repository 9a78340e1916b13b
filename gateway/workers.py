"""``relaycast gateway --workers N``: N complete gateways on one port, and their supervisor.

One gateway process uses one core. On a machine with several, this runs N ordinary
gateway processes (workers) that each listen on the same port with ``SO_REUSEPORT``; the
kernel spreads new connections over the workers that listen. No worker shares anything
with another but the port and the set's run directory (readiness and metrics, see
:mod:`gateway.workerset`): each has its own broker link, hub and gateway id
(``<gateway_id>/<index>``), exactly as separate gateways behind a load balancer, so a
client resumes on any of them.

The supervisor (this process) holds the port so that nothing else takes it while a worker
is replaced, starts the workers, and:

- forwards SIGTERM and SIGINT to every worker, which drains as a lone gateway does
  (a second signal stops them at once), and exits once all have;
- replaces a worker that exits on its own: at once when it had run for 10 s or more,
  else after a backoff that doubles from 0.5 s (up to 30 s) while replacements keep
  dying young, so a crash loop does not spin; a worker that exits with status 2 (a bad
  setting) stops the set instead, since starting it again cannot help;
- makes the run directory, and removes it at the end.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from gateway.workerset import WorkerSlot
from shared.localredis import die_with_parent
from shared.settings import ENV_PREFIX, Settings

__all__ = ["supervise"]

log = logging.getLogger("relaycast.workers")

YOUNG = 10.0
"""A worker that exits sooner than this after its start counts towards the backoff."""
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
BAD_SETTING = 2
"""The exit status of ``relaycast`` for a setting it refuses."""


class Worker:
    """One worker's process, and how soon its replacement may start."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.young_exits = 0
        self.due = 0.0  # monotonic time at which to start the next process

    def backoff(self) -> float:
        """Seconds to wait before replacing a process that just exited."""
        if time.monotonic() - self.started >= YOUNG:
            self.young_exits = 0
            return 0.0
        self.young_exits += 1
        return float(min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (self.young_exits - 1)))


class Supervisor:
    def __init__(self, settings: Settings, count: int, port: int, directory: Path) -> None:
        self.settings = settings
        self.workers = [Worker(i) for i in range(count)]
        self.directory = directory
        self.env = self._environment(port)
        self.signals = 0  # SIGTERM and SIGINT received
        self.forwarded = 0  # of them, forwarded to the workers
        self.last_signal: int = signal.SIGTERM
        self.status = 0

    def _environment(self, port: int) -> dict[str, str]:
        env = dict(os.environ)
        for name in Settings.fields():  # flags too, not only the environment
            env[ENV_PREFIX + name.upper()] = str(getattr(self.settings, name))
        env[ENV_PREFIX + "WORKERS"] = "1"
        env[ENV_PREFIX + "PORT"] = str(port)
        return env

    def _spawn(self, worker: Worker) -> None:
        env = dict(self.env)
        env[ENV_PREFIX + "GATEWAY_ID"] = f"{self.settings.gateway_id}/{worker.index}"
        env.update(WorkerSlot.environment(worker.index, self.directory))
        worker.proc = subprocess.Popen(
            [sys.executable, "-m", "shared.cli", "gateway"],
            env=env,
            # Its own process group: Ctrl-C reaches the supervisor alone, which forwards it
            # once (two signals would mean "stop now" to a worker).
            process_group=0,
            preexec_fn=die_with_parent,
        )
        worker.started = time.monotonic()
        log.info("worker %d started: pid %d", worker.index, worker.proc.pid)

    def _note(self, signum: int, frame: FrameType | None) -> None:
        """Signal handler: only counts; the loop forwards (and logs) within 50 ms."""
        self.signals += 1
        self.last_signal = signum

    def _forward(self) -> None:
        while self.forwarded < self.signals:
            self.forwarded += 1
            what = "draining" if self.forwarded == 1 else "stopping now"
            log.info("%s: %s every worker", signal.Signals(self.last_signal).name, what)
            self._signal_all(signal.SIGTERM)

    def _signal_all(self, signum: int) -> None:
        for worker in self.workers:
            if worker.proc is not None and worker.proc.poll() is None:
                os.kill(worker.proc.pid, signum)

    def _reap(self, worker: Worker) -> None:
        assert worker.proc is not None
        pid, code = worker.proc.pid, worker.proc.returncode
        worker.proc = None
        WorkerSlot.forget(self.directory, worker.index)
        _forget_metrics(self.directory, pid)
        if self.signals:
            log.info("worker %d (pid %d) exited: %s", worker.index, pid, _status(code))
            return
        if code == BAD_SETTING:
            log.error("worker %d exited with a bad setting; stopping every worker", worker.index)
            self.status = BAD_SETTING
            self.signals = self.forwarded = 1
            self._signal_all(signal.SIGTERM)
            return
        delay = worker.backoff()
        worker.due = time.monotonic() + delay
        log.warning(
            "worker %d (pid %d) exited: %s; replacing it in %.1fs",
            worker.index,
            pid,
            _status(code),
            delay,
        )

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._note)
        try:
            while True:
                self._forward()
                for worker in self.workers:
                    if worker.proc is not None and worker.proc.poll() is not None:
                        self._reap(worker)
                    if worker.proc is None and not self.signals and time.monotonic() >= worker.due:
                        self._spawn(worker)
                if self.signals and all(w.proc is None for w in self.workers):
                    return self.status
                time.sleep(0.05)
        finally:
            for worker in self.workers:  # only after an error in this loop
                if worker.proc is not None and worker.proc.poll() is None:
                    worker.proc.kill()
                    worker.proc.wait()


def _status(code: int) -> str:
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"status {code}"


def _forget_metrics(directory: Path, pid: int) -> None:
    """Drop an exited worker's live gauges (its counters still count)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(directory / "metrics"))  # type: ignore[no-untyped-call]


def _reserve(host: str, port: int) -> socket.socket:
    """Bind (without listening) the port the workers will share: it fails here, in one
    line, when something else holds it; it tells the workers the port when ``port`` is 0;
    and nothing outside the set can take it while a worker is being replaced."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def supervise(settings: Settings, count: int) -> int:
    """Run ``count`` workers on ``settings.host:settings.port`` until they have drained;
    the exit status."""
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    try:
        reserved = _reserve(settings.host, settings.port)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", settings.host, settings.port, exc.strerror)
        return 1
    port = reserved.getsockname()[1]
    try:
        directory = Path(tempfile.mkdtemp(prefix="relaycast-workers-"))
    except OSError as exc:
        reserved.close()
        log.error("cannot make the workers' run directory (set TMPDIR to a writable one): %s", exc)
        return 1
    try:
        WorkerSlot.prepare(directory)
        log.info("%d workers on %s:%d", count, settings.host, port)
        return Supervisor(settings, count, port, directory).run()
    finally:
        reserved.close()
        shutil.rmtree(directory, ignore_errors=True)
