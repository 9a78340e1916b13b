"""Outgoing frames, encoded once and shared by every subscriber and transport.

A frame is a value: besides its bytes it carries its :class:`FrameKind` and, for a
``subscribed`` frame, the :class:`~shared.protocol.Subscribed` it was encoded from, so a
transport that must know what it writes (the HTTP cursor, polling's "is there news")
reads attributes instead of parsing bytes it produced itself.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec

from gateway.deflate import deflated_frame, frame_head
from shared.protocol import Message, Publication, Subscribed, encode

__all__ = ["FrameKind", "OutFrame", "control", "message"]


class FrameKind(enum.StrEnum):
    """The ``type`` of a server frame (the tag of its :mod:`shared.protocol` Struct)."""

    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    MESSAGE = "message"
    PING = "ping"
    PONG = "pong"
    AUTHENTICATED = "authenticated"
    ERROR = "error"


class OutFrame:
    """One encoded server frame.

    The JSON bytes are made once per message per gateway, and the WebSocket framing
    around them (``ws``) with them, so the fan-out never encodes per client; the
    compressed frame (``wsz``) is made once too, when first needed. ``channel``
    and ``offset`` are set for ``message`` frames only (control frames belong to no
    channel's stream, and conflation never drops them); ``subscribed`` is the Struct of a
    ``subscribed`` frame (its channel and position).
    """

    __slots__ = (
        "channel",
        "json",
        "kind",
        "latest",
        "offset",
        "subscribed",
        "time",
        "ws",
        "wsz",
    )

    def __init__(
        self,
        kind: FrameKind,
        json: bytes,
        channel: str | None = None,
        offset: int = 0,
        latest: bool = False,
        time: float = 0.0,
        subscribed: Subscribed | None = None,
    ) -> None:
        self.kind = kind
        self.json = json
        self.channel = channel
        self.offset = offset
        self.latest = latest
        self.time = time
        self.subscribed = subscribed
        self.ws = _text_frame(json)
        """The frame as one unmasked WebSocket text frame (an attribute, not a property:
        the fan-out reads it once per delivery)."""
        self.wsz = b""
        """The frame for connections that negotiated permessage-deflate, built by the
        first of them to send it (:meth:`deflated`); empty until then."""

    def deflated(self) -> bytes:
        """The frame compressed for permessage-deflate (or ``ws`` when that is no
        smaller), compressed at most once and shared by every such connection."""
        if not self.wsz:
            self.wsz = deflated_frame(self.json, self.ws)
        return self.wsz


def _text_frame(json: bytes) -> bytes:
    """``json`` as one unmasked WebSocket text frame (RFC 6455, section 5.2)."""
    return frame_head(0x81, len(json)) + json  # FIN, text


def message(channel: str, publication: Publication, latest: bool) -> OutFrame:
    """The ``message`` frame for one publication."""
    frame = Message(channel=channel, offset=publication.offset, data=msgspec.Raw(publication.data))
    return OutFrame(
        FrameKind.MESSAGE, encode(frame), channel, publication.offset, latest, publication.time
    )


def control(frame: Any) -> OutFrame:
    """A frame that belongs to no channel's stream (subscribed, error, pong...).

    Raises:
        ValueError: ``frame`` is not a server frame of :mod:`shared.protocol`.
    """
    kind = FrameKind(type(frame).__struct_config__.tag)
    subscribed = frame if isinstance(frame, Subscribed) else None
    return OutFrame(kind, encode(frame), subscribed=subscribed)
