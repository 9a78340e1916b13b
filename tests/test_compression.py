"""permessage-deflate: negotiated when offered, each message compressed once for everyone.

Real gateway, real Redis, real sockets: the ``websockets`` client and the SDK offer the
extension as browsers do; the raw client (tests/rawws.py) sees the frames as they are
on the wire, RSV1 bit and byte counts included.
"""

from __future__ import annotations

import json
import os
import zlib

import pytest
from websockets.exceptions import NegotiationError

from gateway.client import Client
from gateway.client import Message as ClientMessage
from gateway.deflate import Negotiated, SharedDeflate, deflated_frame
from gateway.frames import FrameKind, OutFrame
from publisher import AsyncPublisher
from tests.helpers import GatewayProcess, open_ws, recv_json, subscribe
from tests.rawws import TEXT, RawWebSocket, subscribe_frame

OFFER = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
SMALL = {"n": 1}
LARGE = {"rows": [{"id": i, "name": f"row-{i}", "ok": i % 3 == 0} for i in range(200)]}
"""About 6 KB of JSON that compresses well, as lists of records do."""


def inflate(payload: bytes) -> bytes:
    """A message payload as RFC 7692 section 7.2.2 says to read it."""
    return zlib.decompressobj(wbits=-15).decompress(payload + b"\x00\x00\xff\xff")


@pytest.fixture
def gateway(redis_server, gateways) -> GatewayProcess:
    return GatewayProcess.start(gateways, redis_server.url, max_frame_bytes=4096)


async def publish(url: str, channel: str, *messages: object) -> None:
    async with AsyncPublisher(url) as publisher:
        for data in messages:
            await publisher.publish(channel, data)


async def raw_subscribe(port: int, channel: str, headers: str = "") -> RawWebSocket:
    raw = await RawWebSocket.connect(port, headers=headers)
    raw.writer.write(subscribe_frame(channel, None, None))
    _, payload = await raw.read_frame()
    assert json.loads(payload)["type"] == "subscribed"
    return raw


async def next_message(raw: RawWebSocket) -> tuple[int, bytes, int]:
    """The next message frame (server pings skipped): first byte, JSON, wire bytes."""
    while True:
        first, payload, size = await raw.read_wire_frame()
        data = inflate(payload) if first & 0x40 else payload
        if json.loads(data)["type"] == "message":
            return first, data, size


async def test_compressed_frames_are_made_once_and_smaller_on_the_wire(gateway, redis_server):
    one = await raw_subscribe(gateway.port, "zip.wire", OFFER)
    two = await raw_subscribe(gateway.port, "zip.wire", OFFER)
    plain = await raw_subscribe(gateway.port, "zip.wire")
    answer = one.head.decode().lower()
    assert "sec-websocket-extensions: permessage-deflate" in answer
    assert "server_no_context_takeover" in answer and "client_no_context_takeover" in answer
    assert "sec-websocket-extensions" not in plain.head.decode().lower()

    await publish(redis_server.url, "zip.wire", SMALL, LARGE)
    small, large = [await next_message(one) for _ in range(2)]
    small_plain, large_plain = [await next_message(plain) for _ in range(2)]
    # A small message stays uncompressed (RSV1 off); a large one is compressed (RSV1 on).
    assert small[0] == 0x81 and small[1] == small_plain[1]
    assert large[0] == 0xC1 and large_plain[0] == 0x81
    assert json.loads(large[1])["data"] == LARGE
    assert large[1] == large_plain[1]
    assert large[2] * 4 < large_plain[2], (large[2], large_plain[2])
    # Every client that negotiated gets the same bytes: compressed once.
    twice = [await next_message(two) for _ in range(2)]
    assert twice == [small, large]
    for raw in (one, two, plain):
        await raw.close()


async def test_websockets_client_and_sdk_negotiate_and_decode(gateway, redis_server):
    ws = await open_ws(gateway.ws_url)  # websockets offers permessage-deflate by default
    (extension,) = ws.protocol.extensions
    assert extension.name == "permessage-deflate"
    await subscribe(ws, "zip.sdk")  # sent compressed: the gateway inflates it
    async with Client(gateway.ws_url, ["zip.sdk"]) as client:
        events = aiter(client)
        assert (await anext(events)).channel == "zip.sdk"  # subscribed
        await publish(redis_server.url, "zip.sdk", SMALL, LARGE)
        got = [await anext(events) for _ in range(2)]
        assert client._ws is not None and client._ws.protocol.extensions
    assert [m.data for m in got if isinstance(m, ClientMessage)] == [SMALL, LARGE]
    assert [(await recv_json(ws))["data"] for _ in range(2)] == [SMALL, LARGE]
    await ws.close()


async def test_bad_compressed_input_closes_with_1002(gateway):
    raw = await RawWebSocket.connect(gateway.port, headers=OFFER)
    raw.send_frame(TEXT, b"\xff not deflate", rsv1=True)
    code, _ = await raw.read_until_close()
    assert code == 1002
    await raw.close()


async def test_compressed_message_inflating_past_the_frame_limit_closes_with_1009(gateway):
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = bomb.compress(b'{"type":"ping","pad":"' + b"x" * 1_000_000 + b'"}')
    payload += bomb.flush(zlib.Z_SYNC_FLUSH)
    assert len(payload) < 4096  # the frame itself is within the limit
    raw = await RawWebSocket.connect(gateway.port, headers=OFFER)
    raw.send_frame(TEXT, payload[:-4], rsv1=True)
    code, _ = await raw.read_until_close()
    assert code == 1009
    await raw.close()


async def test_compressed_input_without_the_extension_closes_with_1002(gateway):
    raw = await RawWebSocket.connect(gateway.port)
    raw.send_frame(TEXT, zlib.compress(b'{"type":"ping"}')[2:-4], rsv1=True)
    code, _ = await raw.read_until_close()
    assert code == 1002
    await raw.close()


async def test_compression_off_sends_plain_frames(redis_server, gateways):
    gateway = GatewayProcess.start(gateways, redis_server.url, compression=False)
    raw = await raw_subscribe(gateway.port, "zip.off", OFFER)
    assert "sec-websocket-extensions" not in raw.head.decode().lower()
    await publish(redis_server.url, "zip.off", LARGE)
    first, data, _ = await next_message(raw)
    assert first == 0x81 and json.loads(data)["data"] == LARGE
    await raw.close()


# --- negotiation and framing, without a gateway -----------------------------------


@pytest.mark.parametrize(
    "offer",
    [
        [],
        [("client_max_window_bits", None)],
        [("client_max_window_bits", "10")],
        [("server_no_context_takeover", None)],
        [("server_max_window_bits", "15")],
    ],
)
def test_offers_the_shared_frames_can_serve_are_accepted(offer):
    params, extension = SharedDeflate().process_request_params(offer, [])
    names = [name for name, _ in params]
    assert names[:2] == ["server_no_context_takeover", "client_no_context_takeover"]
    assert isinstance(extension, Negotiated)
    if ("server_max_window_bits", "15") in offer:
        assert ("server_max_window_bits", "15") in params  # accepting it echoes it
    assert "client_max_window_bits" not in names  # any client window inflates


@pytest.mark.parametrize(
    "offer",
    [
        [("server_max_window_bits", "10")],  # a smaller window than the shared frames'
        [("server_max_window_bits", "16")],
        [("client_max_window_bits", "x")],
        [("server_no_context_takeover", "yes")],
        [("client_no_context_takeover", None), ("client_no_context_takeover", None)],
        [("mystery", "1")],
    ],
)
def test_offers_it_cannot_honour_are_declined(offer):
    with pytest.raises(NegotiationError):
        SharedDeflate().process_request_params(offer, [])


def test_a_frame_is_compressed_at_most_once_and_only_when_smaller():
    large = OutFrame(FrameKind.MESSAGE, json.dumps(LARGE).encode())
    first = large.deflated()
    assert first is large.deflated() and first[0] == 0xC1 and len(first) < len(large.ws)
    small = OutFrame(FrameKind.PING, b'{"type":"ping"}')
    assert small.deflated() is small.ws
    noise = OutFrame(FrameKind.MESSAGE, os.urandom(300))  # nothing to find twice
    assert noise.deflated() is noise.ws
    assert deflated_frame(b"x" * 500, b"\x81~\x01\xf4" + b"x" * 500)[0] == 0xC1
