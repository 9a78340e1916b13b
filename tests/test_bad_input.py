"""Bad input gets a clear error frame or close code; the gateway keeps serving everyone."""

from __future__ import annotations

import asyncio
import json

import pytest

from publisher import AsyncPublisher
from tests.helpers import GatewayProcess, open_ws, recv_json, subscribe
from tests.rawws import BINARY, CLOSE, CONT, PING, PONG, TEXT, RawWebSocket, frame


@pytest.fixture
def gateway(redis_server, gateways) -> GatewayProcess:
    return GatewayProcess.start(
        gateways, redis_server.url, max_frame_bytes=4096, max_subscriptions=3
    )


async def expect_error(ws, code: str) -> dict:
    frame = await recv_json(ws)
    assert frame["type"] == "error", frame
    assert frame["code"] == code, frame
    assert frame["message"]
    return frame


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "bad_frame"),
        ("[1, 2, 3]", "bad_frame"),
        ('"just a string"', "bad_frame"),
        ('{"type": "launch", "channel": "x"}', "bad_frame"),
        ('{"channel": "no.type"}', "bad_frame"),
        ('{"type": "subscribe", "channel": 42}', "bad_frame"),
        ('{"type": "subscribe", "channel": "a", "since": {"offset": "x"}}', "bad_frame"),
        ('{"type": "subscribe", "channel": "has space"}', "invalid_channel"),
        ('{"type": "subscribe", "channel": ""}', "invalid_channel"),
        ('{"type": "subscribe", "channel": "' + "c" * 129 + '"}', "invalid_channel"),
        ('{"type": "subscribe", "channel": "rc:{injected}"}', "invalid_channel"),
        ('{"type": "unsubscribe", "channel": "never.subscribed"}', "not_subscribed"),
    ],
)
async def test_bad_frame_gets_error_and_connection_stays_usable(gateway, frame, code):
    ws = await open_ws(gateway.ws_url)
    await ws.send(frame)
    await expect_error(ws, code)
    # Same connection, still served.
    await ws.send(json.dumps({"type": "ping", "id": 7}))
    assert await recv_json(ws) == {"type": "pong", "id": 7}
    await ws.close()


async def test_subscribing_twice_and_past_the_limit_are_refused(gateway):
    ws = await open_ws(gateway.ws_url)
    for n in range(3):
        await subscribe(ws, f"limit.{n}")
    await ws.send(json.dumps({"type": "subscribe", "channel": "limit.0"}))
    await expect_error(ws, "already_subscribed")
    await ws.send(json.dumps({"type": "subscribe", "channel": "limit.3"}))
    frame = await expect_error(ws, "too_many_subscriptions")
    assert frame["channel"] == "limit.3"
    await ws.close()


async def test_invalid_utf8_in_a_binary_frame_is_a_bad_frame(gateway):
    raw = await RawWebSocket.connect(gateway.port)
    raw.send_frame(BINARY, b'{"type":"subscribe","channel":"\xff\xfe"}')
    opcode, payload = await raw.read_frame()
    assert opcode == TEXT
    assert json.loads(payload)["code"] == "bad_frame"
    await raw.close()


async def test_oversized_frame_closes_with_1009(gateway):
    raw = await RawWebSocket.connect(gateway.port)
    raw.send_frame(TEXT, b'{"type":"ping","pad":"' + b"x" * 5000 + b'"}')
    code, _ = await raw.read_until_close()
    assert code == 1009
    await raw.close()


async def test_oversized_message_in_fragments_closes_with_1009(gateway):
    raw = await RawWebSocket.connect(gateway.port)
    raw.send_frame(TEXT, b"x" * 3000, fin=False)
    raw.send_frame(CONT, b"x" * 3000, fin=True)
    code, _ = await raw.read_until_close()
    assert code == 1009
    await raw.close()


async def test_fragmented_frame_is_reassembled(gateway):
    raw = await RawWebSocket.connect(gateway.port)
    raw.send_frame(TEXT, b'{"type":"pi', fin=False)
    raw.send_frame(CONT, b'ng","id":3}', fin=True)
    opcode, payload = await raw.read_frame()
    assert (opcode, json.loads(payload)) == (TEXT, {"type": "pong", "id": 3})
    await raw.close()


async def test_unmasked_client_frame_is_a_protocol_error(gateway):
    raw = await RawWebSocket.connect(gateway.port)
    raw.writer.write(b"\x81\x0f" + b'{"type":"ping"}')  # RFC 6455 5.1: clients must mask
    code, _ = await raw.read_until_close()
    assert code == 1002
    await raw.close()


async def test_unknown_path_is_404_and_others_keep_receiving(gateway, redis_server):
    with pytest.raises(ConnectionRefusedError, match="404"):
        await RawWebSocket.connect(gateway.port, path="/nope")
    listener = await open_ws(gateway.ws_url)
    await subscribe(listener, "after.abuse")
    garbage = await open_ws(gateway.ws_url)
    for _ in range(200):
        await garbage.send("\x00garbage")
    async with AsyncPublisher(redis_server.url) as publisher:
        await publisher.publish("after.abuse", {"ok": True})
    frame = await recv_json(listener)
    assert frame["type"] == "message" and frame["data"] == {"ok": True}
    await listener.close()
    await garbage.close()


async def test_a_ping_is_answered_with_its_payload_and_a_close_is_echoed_then_eof(gateway):
    raw = await RawWebSocket.connect(gateway.port)
    raw.send_frame(PING, b"are you there")
    assert await raw.read_frame() == (PONG, b"are you there")
    raw.send_frame(CLOSE, (1000).to_bytes(2, "big") + b"done")
    assert await raw.read_frame() == (CLOSE, (1000).to_bytes(2, "big") + b"done")
    assert await asyncio.wait_for(raw.reader.read(), 10) == b""  # the gateway ends the TCP
    await raw.close()


async def test_a_frame_sent_a_few_bytes_at_a_time_is_read_whole(gateway):
    raw = await RawWebSocket.connect(gateway.port)
    wire = frame(TEXT, json.dumps({"type": "ping", "id": 5, "pad": "p" * 200}).encode())
    for start in range(0, len(wire), 7):
        raw.writer.write(wire[start : start + 7])
        await raw.writer.drain()
        await asyncio.sleep(0.001)  # separate TCP segments, separate reads
    opcode, payload = await raw.read_frame()
    assert (opcode, json.loads(payload)) == (TEXT, {"type": "pong", "id": 5})
    await raw.close()


async def test_a_close_with_a_reason_that_is_not_utf8_closes_with_1007(gateway):
    raw = await RawWebSocket.connect(gateway.port)
    raw.send_frame(CLOSE, (1000).to_bytes(2, "big") + b"\xff\xfe")
    code, _ = await raw.read_until_close()
    assert code == 1007
    await raw.close()
