"""permessage-deflate (RFC 7692) compressed once per message, for every subscriber.

Per-connection compression would break encode-once and keep zlib state for every
connection (tens to hundreds of KiB each). This gateway instead answers every offer with
``server_no_context_takeover`` (a server may set it unasked, RFC 7692 section 7.1.1.1):
each message is then compressed alone, so the one compressed frame built per message
(:func:`deflated_frame`, cached on the ``OutFrame``) is valid for every connection that
negotiated the extension, whatever else it was sent before.

It also answers with ``client_no_context_takeover`` (section 7.1.1.2): a client
compresses each of its messages alone, and :func:`inflate` decompresses each with a
zlib object freed when the message ends. A connection keeps no zlib state between
messages, outgoing or incoming, and a compressed message inflating past the frame size
limit closes the connection with 1009 as an oversized frame does.

The window: a message of ``n`` bytes is compressed with the smallest window of at least
``n`` bytes (2^9 to 2^15; a smaller window cannot compress a message worse, since no
match reaches further back than its start, and it costs far less memory to set up). An
offer that limits the server's window below 2^15 (``server_max_window_bits``) is
declined, as the shared frames could not honour it for every message; the client's own
window is never limited, since any window up to 2^15 inflates with a 2^15 one.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

from websockets.exceptions import (
    DuplicateParameter,
    InvalidParameterName,
    InvalidParameterValue,
    NegotiationError,
)
from websockets.extensions.base import Extension, ServerExtensionFactory
from websockets.typing import ExtensionName, ExtensionParameter

from shared.protocol import CloseCode

__all__ = [
    "MIN_SIZE",
    "InflateError",
    "Negotiated",
    "SharedDeflate",
    "deflated_frame",
    "frame_head",
    "inflate",
]

NAME = ExtensionName("permessage-deflate")

MIN_SIZE = 100
"""JSON shorter than this goes out uncompressed without trying: the frame's fixed text
(type, channel, offset) leaves a short message almost nothing to find twice."""

LEVEL = 1
"""zlib level: done once per message, but a channel with one subscriber pays it per
delivery; level 1 costs about half of level 6 for some 5-10 % larger output on JSON."""

_TAIL = b"\x00\x00\xff\xff"
"""The empty stored block a sync flush ends with: removed when sending, restored when
receiving (RFC 7692, section 7.2.1 and 7.2.2)."""

_WINDOW_BITS = frozenset(str(bits) for bits in range(8, 16))


def frame_head(first: int, size: int) -> bytes:
    """The head of an unmasked (server) WebSocket frame: ``first`` is its first byte (FIN,
    RSV bits, opcode), ``size`` its payload length (RFC 6455, section 5.2)."""
    if size < 126:
        return bytes((first, size))
    if size < 65536:
        return struct.pack("!BBH", first, 126, size)
    return struct.pack("!BBQ", first, 127, size)


def deflated_frame(json: bytes, plain: bytes) -> bytes:
    """``json`` as one compressed WebSocket text frame (RSV1 set), or ``plain`` (the
    uncompressed frame) when compression would not make it smaller.

    Each call compresses alone (no context takeover), so the result suits every
    connection that negotiated :class:`SharedDeflate`.
    """
    n = len(json)
    if n < MIN_SIZE:
        return plain
    bits = min(15, max(9, n.bit_length()))
    compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, -bits, max(1, bits - 7))
    body = compressor.compress(json) + compressor.flush(zlib.Z_SYNC_FLUSH)
    size = len(body) - 4  # without the empty block's four bytes
    head = frame_head(0xC1, size)  # FIN, RSV1 (compressed), text
    if len(head) + size >= len(plain):
        return plain
    return head + body[:-4]


class InflateError(Exception):
    """A client's compressed message the gateway refuses: close with ``code``."""

    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code


class Negotiated(Extension):
    """The extension as a connection's handshake records it (websockets' ``extensions``).

    It transforms no frame: the transport writes data frames pre-framed (compressed or
    not), never compresses a control frame, and inflates a client's compressed message
    whole with :func:`inflate` (:mod:`gateway.transports.wsframes` reads the frames).
    """

    name = NAME


def inflate(data: bytes, max_size: int) -> bytes:
    """A client's compressed message, inflated with a zlib object of its own (the gateway
    asks every client for ``client_no_context_takeover``).

    Raises:
        InflateError: not a valid deflate stream (1002), or more than ``max_size`` bytes
            once inflated (1009).
    """
    decoder = zlib.decompressobj(wbits=-15)
    try:
        # One byte over the limit tells "exactly the limit" from "more than it".
        out = decoder.decompress(data + _TAIL, max_size + 1)
    except zlib.error:
        raise InflateError(CloseCode.PROTOCOL_ERROR, "invalid compressed data") from None
    if decoder.unconsumed_tail or len(out) > max_size:
        raise InflateError(CloseCode.MESSAGE_TOO_BIG, f"message over {max_size} bytes")
    return out


class SharedDeflate(ServerExtensionFactory):
    """Accepts a permessage-deflate offer the shared frames can serve; see the module."""

    name = NAME

    def process_request_params(
        self, params: Sequence[ExtensionParameter], accepted_extensions: Sequence[Extension]
    ) -> tuple[list[ExtensionParameter], Extension]:
        """The response's parameters and the connection's :class:`Negotiated` extension.

        Raises:
            NegotiationError: the offer asks for what the shared frames cannot do, or
                is malformed; the client's next offer, if any, is tried.
        """
        if any(extension.name == NAME for extension in accepted_extensions):
            raise NegotiationError(f"skipped duplicate {NAME}")
        response: list[ExtensionParameter] = [
            ("server_no_context_takeover", None),
            ("client_no_context_takeover", None),
        ]
        seen: set[str] = set()
        for key, value in params:
            if key in seen:
                raise DuplicateParameter(key)
            seen.add(key)
            if key in ("server_no_context_takeover", "client_no_context_takeover"):
                if value is not None:
                    raise InvalidParameterValue(key, value)
            elif key == "server_max_window_bits":
                if value not in _WINDOW_BITS:
                    raise InvalidParameterValue(key, value)
                if value != "15":
                    raise NegotiationError(f"server_max_window_bits={value} is not served")
                response.append((key, value))  # accepting it means echoing it
            elif key == "client_max_window_bits":
                if value is not None and value not in _WINDOW_BITS:
                    raise InvalidParameterValue(key, value)
            else:
                raise InvalidParameterName(key)
        return response, Negotiated()
