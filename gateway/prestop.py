"""``relaycast drain``: start a gateway's staggered drain and wait until it has finished.

This is the gateway container's Kubernetes ``preStop`` hook. The kubelet runs the hook,
waits for it, and only then sends SIGTERM; the gateway takes a second SIGTERM during a
drain as "stop now". So the hook sends the SIGTERM itself (the gateway is PID 1 of its
container), which starts the drain at once: readiness turns 503, new connections are refused,
and clients are closed with 1012 spread over ``drain_seconds``. Then it waits until the
gateway has exited, so the kubelet's own SIGTERM comes after the drain, not in the
middle of it. When PID 1 exits, the container stops and the hook ends with it.
"""

from __future__ import annotations

import logging
import os
import signal
import time

import psutil

__all__ = ["drain"]

log = logging.getLogger("relaycast.drain")

MARGIN = 10.0
"""Seconds allowed beyond ``drain_seconds`` for the last close frames and shutdown."""


def _running(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def drain(pid: int, drain_seconds: float, *, margin: float = MARGIN) -> bool:
    """SIGTERM gateway ``pid`` and wait for it to exit, at most ``drain_seconds + margin``.

    Returns True when the gateway is gone (or was not running), False on timeout.
    """
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + drain_seconds + margin
    log.info("gateway pid %d draining over %.1fs", pid, drain_seconds)
    while _running(pid):
        if time.monotonic() > deadline:
            log.warning("gateway pid %d still running after %.1fs", pid, drain_seconds + margin)
            return False
        time.sleep(0.1)
    return True
