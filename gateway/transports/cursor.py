"""A cursor: every channel's position on one HTTP stream, written as one string.

SSE and polling name their channels in the query (``?channel=a&channel=b``) and keep no
state between requests, so the client carries its positions. One string holds them all:
it is the ``id:`` of every SSE event (so the browser's ``Last-Event-ID`` resumes every
channel at once), and the ``since`` a poll sends and gets back.

Format: one entry per ``channel`` parameter, in the same order, joined by commas. An entry
is ``<epoch>:<offset>`` (the stream's epoch and the last offset the client has), or empty
when the client has no position in that channel yet. For ``?channel=a&channel=b``, with
``a`` at offset 12 of epoch ``3f2a9c01`` and ``b`` not yet subscribed::

    3f2a9c01:12,

Channel names are not repeated: the request's URL already lists them, and an
``EventSource`` reconnects to the same URL. An all-empty cursor is the empty string.
"""

from __future__ import annotations

import re

from gateway.frames import OutFrame
from shared.protocol import EPOCH_PATTERN, MAX_OFFSET, Position

__all__ = ["Cursor", "CursorError"]

_EPOCH = re.compile(EPOCH_PATTERN)
_OFFSET = re.compile(r"^[0-9]{1,19}\Z")  # ASCII digits only: "²".isdigit() is true


class CursorError(ValueError):
    """A cursor string does not match the request's channels; the message says how."""


class Cursor:
    """The positions of a request's channels, advanced by the frames written to it."""

    __slots__ = ("_index", "_text", "channels", "positions")

    def __init__(self, channels: list[str], positions: list[Position | None] | None = None) -> None:
        self.channels = channels
        self.positions: list[Position | None] = positions or [None] * len(channels)
        self._index = {channel: i for i, channel in enumerate(channels)}
        self._text: str | None = None

    @classmethod
    def parse(cls, channels: list[str], text: str) -> Cursor:
        """Read a cursor for ``channels``; the empty string means no positions.

        Raises:
            CursorError: wrong number of entries, or an entry that is not ``epoch:offset``.
        """
        if not text:
            return cls(channels)
        entries = text.split(",")
        if len(entries) != len(channels):
            raise CursorError(
                f"cursor has {len(entries)} entries for {len(channels)} channels;"
                " give one per channel, in order, empty for none"
            )
        positions: list[Position | None] = []
        for entry in entries:
            if not entry:
                positions.append(None)
                continue
            epoch, sep, offset = entry.rpartition(":")
            if (
                not sep
                or not epoch
                or not _EPOCH.match(epoch)
                or not _OFFSET.match(offset)
                or int(offset) > MAX_OFFSET
            ):
                # A fixed message: the entry is the client's bytes, and messages get logged.
                raise CursorError("a cursor entry is not <epoch>:<offset>")
            positions.append(Position(int(offset), epoch))
        return cls(channels, positions)

    def advance(self, frame: OutFrame) -> None:
        """Account for one frame written to the client."""
        if frame.channel is not None:
            index = self._index.get(frame.channel)
            if index is not None:
                known = self.positions[index]
                if known is not None:
                    self.positions[index] = Position(frame.offset, known.epoch)
                    self._text = None
        elif frame.subscribed is not None:
            subscribed = frame.subscribed
            index = self._index.get(subscribed.channel)
            if index is not None:
                self.positions[index] = Position(subscribed.offset, subscribed.epoch)
                self._text = None

    def __str__(self) -> str:
        if self._text is None:
            self._text = ",".join(
                "" if p is None else f"{p.epoch}:{p.offset}" for p in self.positions
            )
            if not self._text.strip(","):
                self._text = ""
        return self._text
