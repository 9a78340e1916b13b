"""A task's kept log: read newest first, by level, by text, a page at a time.

The lines are a Redis stream per task (``rc:{tasks.<p>}:log:<id>``), appended by the same
script that publishes the ``task.log`` event (:mod:`shared.state.task_scripts`) and bounded
there by ``task_log_lines`` and ``task_log_age``, apart from the channel's history. A line's
stream id is its ``id`` and the paging cursor.
"""

from __future__ import annotations

import msgspec
import redis.asyncio as aioredis

from shared.state.task_query import InvalidCursor, redis_call
from shared.state.tasks import LOG_LEVELS, InvalidTask, LogLine

__all__ = ["LogPage", "read_log"]

_LOG_SCAN = 20000
"""Lines one read may scan for matches before it returns with a cursor."""

_decode_line = msgspec.json.Decoder(LogLine).decode


class LogPage(msgspec.Struct, kw_only=True):
    """Lines of a task's log, newest first; ``cursor`` (a line id) fetches older ones."""

    lines: list[LogLine]
    cursor: str | None = None


async def read_log(
    redis: aioredis.Redis,
    key: str,
    *,
    level: str | None = None,
    search: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> LogPage:
    """Lines of the log in stream ``key``, newest first: at ``level`` or above, containing
    ``search`` (case-insensitive, in the message or the fields' values), older than
    ``cursor`` (a line id from an earlier page).

    Raises:
        InvalidTask: an unknown level or a limit outside 1-1000. InvalidCursor: a
        malformed cursor.
    """
    if level is not None and level not in LOG_LEVELS:
        raise InvalidTask(f"level must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    if not 1 <= limit <= 1000:
        raise InvalidTask(f"limit must be 1-1000, got {limit}")
    high = "+"
    if cursor is not None:
        ms, dash, seq = cursor.partition("-")
        if not (dash and ms.isascii() and ms.isdigit() and seq.isascii() and seq.isdigit()):
            raise InvalidCursor(f"malformed cursor {cursor[:40]!r}: pass a line id")
        high = f"({cursor}"
    least = LOG_LEVELS.index(level) if level else 0
    needle = search.casefold() if search else None
    lines: list[LogLine] = []
    scanned = 0
    while len(lines) < limit and scanned < _LOG_SCAN:
        batch = await redis_call(redis.xrevrange(key, max=high, min="-", count=500))
        if not batch:
            return LogPage(lines=lines)
        for line_id, fields in batch:
            scanned += 1
            high = f"({line_id.decode()}"
            line = _decode_line(fields[b"l"])
            if LOG_LEVELS.index(line.level) < least:
                continue
            if needle and needle not in (line.message + str(line.fields or "")).casefold():
                continue
            line.id = line_id.decode()
            lines.append(line)
            if len(lines) == limit:
                break
    return LogPage(lines=lines, cursor=high[1:])
