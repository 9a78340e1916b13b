"""What a gateway knows when it is one worker of ``relaycast gateway --workers N``.

The supervisor (:mod:`gateway.workers`) starts each worker as an ordinary one-process
gateway and tells it, by two variables, the run directory it made and the worker's
index. A worker then listens with ``SO_REUSEPORT`` on the shared port, and writes its
readiness to ``ready/<index>.json`` in that directory every half second, so that
``/readyz``, whichever worker the kernel hands the request to, answers for the whole set.
Its Prometheus samples go to ``metrics/`` (prometheus-client's multiprocess mode), so
``/metrics`` does too.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import msgspec

__all__ = ["DIR_ENV", "INDEX_ENV", "STALE_SECONDS", "WorkerSlot", "WorkerState"]

DIR_ENV = "RELAYCAST_WORKER_SET_DIR"
"""The supervisor's run directory (set for workers only, never by hand)."""
INDEX_ENV = "RELAYCAST_WORKER_INDEX"
"""The worker's index in its set, from 0."""
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""Where prometheus-client keeps each process's samples in multiprocess mode."""

REPORT_INTERVAL = 0.5
"""Seconds between a worker's readiness reports."""
STALE_SECONDS = 5.0
"""A report older than this counts as not ready: the worker's event loop is stuck."""


class WorkerState(msgspec.Struct, kw_only=True):
    """One worker's readiness, as ``/readyz`` shows it."""

    gateway: str
    pid: int
    ready: bool
    broker: str
    draining: bool
    connections: int
    at: float = 0.0
    """Wall-clock time of the report (seconds since the epoch)."""


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(WorkerState)


class WorkerSlot:
    """One worker's place in the set: its index and the set's run directory."""

    def __init__(self, index: int, directory: Path) -> None:
        self.index = index
        self.directory = directory

    @classmethod
    def from_environment(cls) -> WorkerSlot | None:
        """This process's slot when a supervisor started it, else None."""
        directory, index = os.environ.get(DIR_ENV), os.environ.get(INDEX_ENV)
        if not directory or index is None or not index.isdigit():
            return None
        return cls(int(index), Path(directory))

    @staticmethod
    def environment(index: int, directory: Path) -> dict[str, str]:
        """The variables the supervisor gives worker ``index``."""
        return {
            DIR_ENV: str(directory),
            INDEX_ENV: str(index),
            METRICS_ENV: str(directory / "metrics"),
        }

    @staticmethod
    def prepare(directory: Path) -> None:
        """Make the run directory's parts (the supervisor does this once per run)."""
        (directory / "ready").mkdir(parents=True, exist_ok=True)
        (directory / "metrics").mkdir(parents=True, exist_ok=True)

    @staticmethod
    def forget(directory: Path, index: int) -> None:
        """Drop a worker's readiness report once it has exited (the supervisor does this)."""
        with contextlib.suppress(FileNotFoundError):
            (directory / "ready" / f"{index}.json").unlink()

    def report(self, state: WorkerState) -> None:
        """Write this worker's readiness; replaced atomically, so a reader never sees half."""
        state.at = time.time()
        path = self.directory / "ready" / f"{self.index}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(_encoder.encode(state))
        os.replace(temporary, path)

    def peers(self) -> dict[int, WorkerState]:
        """Every worker's last report, by index; a stale one reads as not ready."""
        states: dict[int, WorkerState] = {}
        now = time.time()
        for path in (self.directory / "ready").glob("*.json"):
            try:
                state = _decoder.decode(path.read_bytes())
            except (OSError, msgspec.DecodeError):
                continue  # gone since the listing: that worker exited
            if now - state.at > STALE_SECONDS:
                state.ready = False
            with contextlib.suppress(ValueError):
                states[int(path.stem)] = state
        return states
