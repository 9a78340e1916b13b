"""The load clients' side of permessage-deflate (RFC 7692): the offer they make, and the
text of the whole frames in a read, compressed ones inflated.

The gateway sends every client the same compressed bytes for a message (no context
takeover), so one process inflates each distinct message once and finds the rest by
their bytes.
"""

from __future__ import annotations

import zlib

__all__ = ["OFFER", "Inflater"]

OFFER = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
_SYNC_TAIL = b"\x00\x00\xff\xff"  # removed by the sender of each compressed message
_INFLATED_KEPT = 4096  # compressed messages remembered; then the memo starts afresh


class Inflater:
    """Splits reads into frames and inflates compressed ones, remembering what it inflated."""

    def __init__(self) -> None:
        self.inflated: dict[bytes, bytes] = {}

    def frames(self, data: bytes) -> tuple[bytes, int, bytes]:
        """The payloads of the whole frames at the start of ``data``, joined (inflated
        where compressed); where the first incomplete frame starts; and the last close
        frame seen (for ``close_code()`` once the socket ends), else b""."""
        parts = []
        closing = b""
        i, end, n = 0, 0, len(data)
        inflated = self.inflated
        while n - i >= 2:
            first, length, head = data[i], data[i + 1] & 0x7F, 2
            if length == 126:
                length, head = int.from_bytes(data[i + 2 : i + 4]), 4
            elif length == 127:
                length, head = int.from_bytes(data[i + 2 : i + 10]), 10
            end = i + head + length
            if end > n or n - i < head:
                break
            body = data[i + head : end]
            if first & 0x40:
                text = inflated.get(body)
                if text is None:
                    if len(inflated) >= _INFLATED_KEPT:
                        inflated.clear()
                    text = zlib.decompressobj(wbits=-15).decompress(body + _SYNC_TAIL)
                    inflated[body] = text
                body = text
            elif first & 0x0F == 0x8:
                closing = data[i:end]
            parts.append(body)
            i = end
        return b"".join(parts), i, closing
