"""Garbage-collection pauses of a gateway the bench starts, logged for the bench to read.

The bench puts this directory on a gateway's ``PYTHONPATH`` with
``RELAYCAST_BENCH_GC_LOG`` naming a file, so Python imports it at start-up whatever
source tree the gateway runs from (the A and the B of an A/B run are measured alike).
Each collection appends one line, ``generation wall cpu collected`` (seconds of wall
clock and of the thread's CPU time: on a shared machine the wall clock also counts time
the process waited for a CPU), with one ``os.write``: no lock is taken inside the
collector.
"""

from __future__ import annotations

import gc
import os
import time
from typing import Any

_path = os.environ.get("RELAYCAST_BENCH_GC_LOG")
if _path:
    _fd = os.open(_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    _started = [0.0, 0.0]

    def _gc_timer(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            _started[0], _started[1] = time.perf_counter(), time.thread_time()
            return
        wall = time.perf_counter() - _started[0]
        cpu = time.thread_time() - _started[1]
        line = f"{info['generation']} {wall:.6f} {cpu:.6f} {info['collected']}\n"
        os.write(_fd, line.encode())

    gc.callbacks.append(_gc_timer)
