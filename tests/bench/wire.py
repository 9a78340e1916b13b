"""The bytes the bench's load clients exchange with a gateway, built and found cheaply.

Client frames carry an all-zero mask key, so their payload goes out as is (RFC 6455
requires a mask, not a random one, of a server to check). Inbound data is searched with
regular expressions rather than split into frames: the bench publisher writes payloads
as ``{"t":<time>,"n":<number>,"p":"..."}``, and :data:`MESSAGE` finds every message
frame's publish time and number in a read with one C-level scan.
"""

from __future__ import annotations

import base64
import os
import re

__all__ = [
    "ERROR",
    "MESSAGE",
    "PING",
    "PONG_FRAME",
    "SUBSCRIBED",
    "close_code",
    "handshake",
    "subscribe_frame",
    "text_frame",
]

MESSAGE = re.compile(rb'"data":\{"t":([0-9.]+),"n":(\d+),"p"')
"""A message frame's head up to its payload's padding: groups publish time and number."""
SUBSCRIBED = re.compile(rb'\{"type":"subscribed","channel":"[^"]*","offset":(\d+),"epoch":"(\w*)"')
ERROR = re.compile(rb'\{"type":"error","code":"(\w+)"')


def handshake(host: str, port: int) -> bytes:
    """The HTTP upgrade request for ``/ws``."""
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def text_frame(payload: bytes) -> bytes:
    """A client text frame with an all-zero mask key (the payload goes out as is)."""
    n = len(payload)
    head = bytes((0x81, 0x80 | n)) if n < 126 else b"\x81\xfe" + n.to_bytes(2, "big")
    return head + b"\x00\x00\x00\x00" + payload


PING = b'{"type":"ping"'
"""The start of a server ping frame's JSON (the gateway's heartbeat)."""
PONG_FRAME = text_frame(b'{"type":"pong"}')


def subscribe_frame(channel: str, offset: int | None, epoch: str | None) -> bytes:
    """A subscribe, with ``since: {offset, epoch}`` when ``epoch`` is given."""
    since = "" if epoch is None else f',"since":{{"offset":{offset or 0},"epoch":"{epoch}"}}'
    return text_frame(f'{{"type":"subscribe","channel":"{channel}"{since}}}'.encode())


def close_code(tail: bytes) -> int | None:
    """The code of a close frame that ends ``tail`` exactly, if one does."""
    start = max(0, len(tail) - 130)
    i = tail.rfind(b"\x88", start)
    while i >= 0:
        if i + 4 <= len(tail) and tail[i + 1] == len(tail) - i - 2:
            return int.from_bytes(tail[i + 2 : i + 4], "big")
        i = tail.rfind(b"\x88", start, i)
    return None
