"""Outgoing frames, encoded once and shared by every subscriber and transport."""

from __future__ import annotations

import struct
from typing import Any

import msgspec

from shared.protocol import Message, Publication, encode

__all__ = ["OutFrame", "control", "message"]


class OutFrame:
    """One encoded server frame.

    The JSON bytes are made once per message per gateway, and the WebSocket framing
    around them (``ws``) with them, so the fan-out never encodes per client.
    """

    __slots__ = ("channel", "json", "latest", "offset", "time", "ws")

    def __init__(
        self,
        json: bytes,
        channel: str | None = None,
        offset: int = 0,
        latest: bool = False,
        time: float = 0.0,
    ) -> None:
        self.json = json
        self.channel = channel
        self.offset = offset
        self.latest = latest
        self.time = time
        self.ws = _text_frame(json)
        """The frame as one unmasked WebSocket text frame (an attribute, not a property:
        the fan-out reads it once per delivery)."""


def _text_frame(json: bytes) -> bytes:
    """``json`` as one unmasked WebSocket text frame (RFC 6455, section 5.2)."""
    n = len(json)
    if n < 126:
        head = bytes((0x81, n))
    elif n < 65536:
        head = struct.pack("!BBH", 0x81, 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 127, n)
    return head + json


def message(channel: str, publication: Publication, latest: bool) -> OutFrame:
    """The ``message`` frame for one publication."""
    frame = Message(channel=channel, offset=publication.offset, data=msgspec.Raw(publication.data))
    return OutFrame(encode(frame), channel, publication.offset, latest, publication.time)


def control(frame: Any) -> OutFrame:
    """A frame that belongs to no channel's stream (subscribed, error, pong...)."""
    return OutFrame(encode(frame))
