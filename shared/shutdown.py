"""Shutdown steps that cannot keep a process from exiting.

A step of a shutdown (closing a hub, a broker, a pool) awaits tasks and connections it
cancelled. Under Python 3.11, a cancellation that arrives while a timeout inside the
awaited code (redis-py's, or ``asyncio.timeout``'s) expires can be lost: the task goes
on, and awaiting it never ends. :func:`finish` runs one step and gives up on it after a
bound, so the process still exits (and its supervisor, a Kubernetes pod or
``relaycast gateway --workers``, can start another), with a log line saying which step
hung.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

__all__ = ["STEP_SECONDS", "finish"]

log = logging.getLogger("relaycast.shutdown")

STEP_SECONDS = 5.0
"""How long one shutdown step may take before it is abandoned."""


async def finish(step: Coroutine[Any, Any, None], what: str, seconds: float = STEP_SECONDS) -> bool:
    """Run ``step`` for at most ``seconds``; False (and a warning) when it did not finish.

    An exception from the step is logged, not raised: the steps after it still run.
    """
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()  # not awaited: a step that ignores cancellation would hang us again
        log.warning("%s did not finish within %.1fs; going on without it", what, seconds)
        return False
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("%s failed: %s", what, exc, exc_info=exc)
    return True
