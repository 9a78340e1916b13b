"""Client text made safe for a log line.

Decode errors, channel names and cursors carry a client's bytes. Written raw, a newline
starts a forged log entry and an ANSI escape rewrites an operator's terminal, so every
piece of client text goes through :func:`printable` before it reaches a log line.
"""

from __future__ import annotations

__all__ = ["printable"]

_ESCAPES = {i: f"\\x{i:02x}" for i in [*range(0x20), *range(0x7F, 0xA0)]} | {
    ord("\\"): "\\\\",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def printable(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters, with control characters (newlines, ANSI
    escapes, line separators) and backslashes written as escapes."""
    return text[:limit].translate(_ESCAPES)
