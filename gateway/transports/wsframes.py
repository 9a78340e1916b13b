"""A client's WebSocket frames after the handshake (RFC 6455, section 5), read with no
state but the bytes of an unfinished frame.

websockets' sans-I/O ``ServerProtocol`` answers the handshake (:mod:`.websocket`). Kept
for the connection's life, its frame parser (three suspended generators, a stream
reader, the request, half a dozen lists) held about 2 KB of every idle connection. A
client sends few frames, and small ones, so the transport drops that object once the
handshake is answered and reads frames here: :func:`split` parses every whole frame at
the start of the bytes at hand and returns the rest, which the transport keeps until
more arrives (nothing, most of the time). A message sent in fragments is gathered in a
:class:`Partial`, which exists only while its fragments arrive.

What a client may not send raises :class:`Violation` with the close code RFC 6455 gives
it: 1002 for a protocol error, 1009 for a frame or message over the size limit.
"""

from __future__ import annotations

from typing import NamedTuple

from websockets.exceptions import ProtocolError
from websockets.frames import Close

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

from shared.protocol import CloseCode

__all__ = [
    "BINARY",
    "CLOSE",
    "CONT",
    "PING",
    "PONG",
    "TEXT",
    "Frame",
    "Partial",
    "Violation",
    "close_frame",
    "control_frame",
    "parse_close",
    "split",
]

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_OPCODES = frozenset({CONT, TEXT, BINARY, CLOSE, PING, PONG})


class Violation(Exception):
    """The client broke the protocol or a limit: close the connection with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Frame(NamedTuple):
    """One frame from the client, its payload unmasked."""

    opcode: int
    fin: bool
    rsv1: bool
    """Set on the first frame of a compressed message (permessage-deflate)."""
    data: bytes


def split(
    data: bytes | bytearray, max_size: int, *, deflate: bool = False
) -> tuple[list[Frame], bytes | bytearray]:
    """Every whole frame at the start of ``data``, and the bytes of the unfinished one
    (``data`` itself when no frame was whole).

    ``max_size`` bounds a frame's payload, so the bytes kept between reads stay under it
    plus a header. ``deflate``: the connection negotiated permessage-deflate, so RSV1
    may mark a message's first frame as compressed.

    Raises:
        Violation: a frame breaks RFC 6455 (1002), or announces more than ``max_size``
            bytes (1009) before they arrive.
    """
    frames: list[Frame] = []
    pos, end = 0, len(data)
    while end - pos >= 2:
        first, second = data[pos], data[pos + 1]
        opcode = first & 0x0F
        fin = first & 0x80 != 0
        rsv1 = first & 0x40 != 0
        if opcode not in _OPCODES:
            raise Violation(CloseCode.PROTOCOL_ERROR, "invalid opcode")
        if first & 0x30 or (rsv1 and not (deflate and opcode in (TEXT, BINARY))):
            raise Violation(CloseCode.PROTOCOL_ERROR, "reserved bits must be 0")
        if not second & 0x80:
            raise Violation(CloseCode.PROTOCOL_ERROR, "incorrect masking")
        length = second & 0x7F
        if opcode >= CLOSE and (length > 125 or not fin):
            raise Violation(CloseCode.PROTOCOL_ERROR, "control frame too long or fragmented")
        head = pos + 2
        if length == 126:
            if end - head < 2:
                break
            length = int.from_bytes(data[head : head + 2], "big")
            head += 2
        elif length == 127:
            if end - head < 8:
                break
            length = int.from_bytes(data[head : head + 8], "big")
            head += 8
        if length > max_size:
            raise Violation(CloseCode.MESSAGE_TOO_BIG, f"frame over {max_size} bytes")
        stop = head + 4 + length
        if stop > end:
            break
        payload = apply_mask(data[head + 4 : stop], data[head : head + 4])
        frames.append(Frame(opcode, fin, rsv1, payload))
        pos = stop
    return frames, (data[pos:] if pos else data)


class Partial:
    """A data message whose fragments are still arriving."""

    __slots__ = ("compressed", "fragments", "size")

    def __init__(self, first: Frame) -> None:
        self.fragments = [first.data]
        self.size = len(first.data)
        self.compressed = first.rsv1

    def add(self, data: bytes, max_size: int) -> None:
        """Append a continuation's payload.

        Raises:
            Violation: the message passed ``max_size`` bytes (1009).
        """
        self.size += len(data)
        if self.size > max_size:
            raise Violation(CloseCode.MESSAGE_TOO_BIG, f"message over {max_size} bytes")
        self.fragments.append(data)

    def data(self) -> bytes:
        return b"".join(self.fragments)


def parse_close(payload: bytes) -> None:
    """Check a close frame's payload: empty, or a valid code and a UTF-8 reason.

    Raises:
        Violation: a malformed close frame (1002), or a reason that is not UTF-8 (1007).
    """
    try:
        Close.parse(payload)
    except ProtocolError as exc:
        raise Violation(CloseCode.PROTOCOL_ERROR, str(exc)) from None
    except UnicodeDecodeError:
        raise Violation(CloseCode.INVALID_DATA, "close reason is not UTF-8") from None


def control_frame(opcode: int, payload: bytes) -> bytes:
    """A server (unmasked) control frame of at most 125 bytes: a pong, or a close."""
    return bytes((0x80 | opcode, len(payload))) + payload


def close_frame(code: int, reason: str) -> bytes:
    """A close frame with ``code`` and as much of ``reason`` as fits in 123 bytes of UTF-8."""
    text = reason.encode()[:123].decode(errors="ignore").encode()
    return control_frame(CLOSE, code.to_bytes(2, "big") + text)
