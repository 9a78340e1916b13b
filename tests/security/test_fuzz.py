"""Random and mutated input finds no crash, hang or leak: in the protocol decoder, the
session state machine, the token verifier, and a live gateway.

The in-process properties run a few hundred examples each; the live one a bounded number
of connections (each example opens its own), then checks that the gateway still answers,
that every connection and subscription it counted is gone, and that its memory stayed put.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import struct
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.auth import Guard, TokenError
from gateway.commands import Limits, RevokeCommand, SubscribeCommand, UnsubscribeCommand
from gateway.session import Session
from shared.protocol import decode_client
from shared.settings import Settings
from tests.helpers import GatewayProcess, wait_until
from tests.rawws import BINARY, CLOSE, CONT, PING, PONG, TEXT, RawWebSocket
from tests.security.conftest import NAMESPACES, SECRET, Keys, start_gateway

TYPES = ["subscribe", "unsubscribe", "ping", "pong", "auth", "refresh", "launch", "", "SUBSCRIBE"]
FIELDS = ["type", "channel", "since", "offset", "epoch", "id", "token", "data", "type"]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
channels = st.sampled_from(["public.a", "public.b", "tasks.projA.1", "tasks.projB.1", "x y", ""])
frames_like = st.builds(
    lambda kind, fields: {"type": kind, **fields},
    st.sampled_from(TYPES),
    st.dictionaries(
        st.sampled_from(FIELDS),
        json_values
        | channels
        | st.fixed_dictionaries({"offset": json_values, "epoch": json_values}),
        max_size=4,
    ),
)


def valid_frames(token: str) -> list[bytes]:
    return [
        json.dumps(f).encode()
        for f in (
            {"type": "subscribe", "channel": "public.a"},
            {"type": "subscribe", "channel": "tasks.projA.1", "since": {"offset": 3, "epoch": "e"}},
            {"type": "unsubscribe", "channel": "public.a"},
            {"type": "ping", "id": 7},
            {"type": "pong"},
            {"type": "auth", "token": token},
            {"type": "refresh", "token": token},
        )
    ]


@st.composite
def mutated(draw: st.DrawFn, base: list[bytes]) -> bytes:
    """A valid frame with a few bytes flipped, dropped, inserted or the tail cut off."""
    data = bytearray(draw(st.sampled_from(base)))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        match draw(st.sampled_from(["flip", "drop", "insert", "cut"])):
            case "flip":
                data[at] ^= 1 << draw(st.integers(0, 7))
            case "drop":
                del data[at]
            case "insert":
                data.insert(at, draw(st.integers(0, 255)))
            case "cut":
                del data[at:]
    return bytes(data)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


CLAIMS = ["exp", "nbf", "iat", "aud", "iss", "sub", "channels"]
jwt_like = st.builds(
    lambda header, payload, signature: ".".join(
        (b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature))
    ),
    st.dictionaries(
        st.sampled_from(["alg", "kid", "typ"]),
        json_values | st.sampled_from(["HS256", "ES256", "RS256", "none", "rsa-1"]),
    ),
    st.dictionaries(st.sampled_from(CLAIMS), json_values),
    st.binary(max_size=80),
)
"""Well-formed JWTs with headers and claims of any shape and a random signature."""


def signed(payload: dict[str, Any]) -> str:
    head = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps(payload).encode())
    return head + "." + b64(hmac.new(SECRET.encode(), head.encode(), hashlib.sha256).digest())


signed_like = st.builds(
    signed,
    st.fixed_dictionaries(
        {},
        optional={
            "exp": st.just(2**31) | json_values,
            "aud": st.just("relaycast") | json_values,
            "sub": st.text(max_size=300) | json_values,
            "channels": st.lists(st.text(max_size=300), max_size=5) | json_values,
            "nbf": json_values,
            "iat": json_values,
        },
    ),
)
"""Correctly signed HS256 tokens whose claims have any shape: they reach claim checks."""


def payloads(token: str) -> st.SearchStrategy[bytes]:
    base = valid_frames(token)
    return st.one_of(
        st.binary(max_size=200),
        mutated(base),
        frames_like.map(lambda f: json.dumps(f).encode()),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.sampled_from(base),
        st.builds(
            lambda kind, t: json.dumps({"type": kind, "token": t}).encode(),
            st.sampled_from(["auth", "refresh"]),
            jwt_like | signed_like,
        ),
    )


@pytest.fixture(scope="module")
def guard(keys: Keys) -> Guard:
    values = {k: v for k, v in keys.settings().items() if k != "namespaces"}
    return Guard.from_settings(Settings(namespaces=NAMESPACES, **values))


@pytest.fixture(scope="module")
def token(keys: Keys) -> str:
    return keys.token(channels=["tasks.projA.*", "public.*"])


FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(data=st.data())
def test_decoder_raises_only_decode_errors(token, data):
    payload = data.draw(payloads(token))
    with contextlib.suppress(msgspec.DecodeError, UnicodeDecodeError):
        decode_client(payload)


@FUZZ
@given(data=st.data())
def test_session_answers_any_frame_sequence_within_its_bounds(guard, token, data):
    limits = Limits(max_subscriptions=3, outbox_messages=16, outbox_bytes=4096, frame_rate=0)
    session = Session(limits, guard=guard)
    for payload in data.draw(st.lists(payloads(token), min_size=1, max_size=12)):
        command = session.receive(payload, now=0.0)
        assert command is None or isinstance(
            command, SubscribeCommand | UnsubscribeCommand | RevokeCommand
        )
        assert len(session.outbox) <= limits.outbox_messages
        assert len(session.subs) <= limits.max_subscriptions
        if session.close_code is not None:
            assert session.close_code in (4003, 4501, 4001)
            break
        session.take()


@FUZZ
@given(data=st.data())
def test_token_verifier_raises_only_token_errors(guard, token, data):
    candidate = data.draw(
        st.one_of(
            st.text(max_size=300),
            mutated([token.encode()]).map(lambda b: b.decode("latin-1")),
            st.lists(st.text(alphabet="abcXYZ-_=.{}", max_size=30), max_size=4).map(".".join),
            jwt_like,
            signed_like,
        )
    )
    with contextlib.suppress(TokenError):
        guard.verify(candidate)


# --- against a live gateway -------------------------------------------------------------------


@pytest.fixture(scope="module")
def target(keys, redis_url, package_gateways) -> tuple[GatewayProcess, int]:
    """A gateway of its own, and its memory before any fuzzing."""
    gateway = start_gateway(package_gateways, redis_url, keys, max_frame_bytes=4096)
    return gateway, gateway.rss()


CLOSES = {1002, 1007, 1009, 4003, 4029, 4501, 4502}
"""What a gateway may close a hostile connection with (docs/protocol.md)."""

header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=120)
handshake_headers = st.dictionaries(
    st.sampled_from(["Origin", "Sec-WebSocket-Protocol", "X-Forwarded-For", "Host"]),
    header_text,
    max_size=3,
)


async def exchange(port: int, frames: list[tuple[int, bytes, bool]], garbage: bytes) -> None:
    """One connection: the frames, then a ping that must be answered within 10 s, or the
    connection closed with a documented code; then maybe raw garbage, and goodbye."""
    ws = await RawWebSocket.connect(port)
    try:  # the gateway may drop a hostile connection while frames are still being sent
        for opcode, payload, fin in frames:
            ws.send_frame(opcode, payload, fin)
        ws.send_frame(TEXT, b'{"type":"ping","id":424242}')
        async with asyncio.timeout(10):
            while True:
                opcode, payload = await ws.read_frame(10)
                if opcode == CLOSE:
                    code = struct.unpack("!H", payload[:2])[0] if payload else 1006
                    assert code in CLOSES | {1006}, code
                    return
                if opcode == TEXT and b'"id":424242' in payload:
                    break
        ws.writer.write(garbage)
        with contextlib.suppress(ConnectionError):
            await ws.writer.drain()
        with contextlib.suppress(TimeoutError):
            await ws.read_frame(0.05)
    except ConnectionError:
        pass  # dropped: the gateway's health is checked after the fuzzing
    finally:
        await ws.close()


OPCODES = [TEXT, TEXT, TEXT, BINARY, CONT, PING, PONG, 0x3, 0xB]  # 0x3, 0xB: reserved


def ws_frames(token: str) -> st.SearchStrategy[list[tuple[int, bytes, bool]]]:
    """(opcode, payload, fin) of a few frames: mostly protocol-like text, some broken."""
    frame = st.tuples(st.sampled_from(OPCODES), payloads(token), st.booleans() | st.just(True))
    return st.lists(frame, min_size=1, max_size=4)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
async def test_live_gateway_survives_random_frames_and_handshakes(target, token, data):
    gateway, _ = target
    port = gateway.port
    frames = [
        (op, p[:125] if op in (PING, PONG) else p, fin)
        for op, p, fin in data.draw(ws_frames(token))
    ]
    garbage = data.draw(st.just(b"") | st.binary(max_size=40))
    headers = data.draw(handshake_headers)  # every draw before any I/O: replays stay exact
    await exchange(port, frames, garbage)
    raw_headers = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with contextlib.suppress(ConnectionRefusedError, ConnectionError):
        ws = await RawWebSocket.connect(port, headers=raw_headers)
        await ws.close()


async def test_live_gateway_is_unharmed_after_the_fuzzing(target):
    """Runs after the fuzz test above (same module): nothing crashed, nothing leaked."""
    gateway, rss_before = target
    assert gateway.ready()
    assert gateway.proc is not None and gateway.proc.poll() is None
    await wait_until(
        lambda: gateway.metric("relaycast_connections") == 0, 20, "every connection released"
    )
    assert gateway.metric("relaycast_subscriptions") == 0
    assert gateway.rss() - rss_before < 30 * 1024 * 1024
    ws = await RawWebSocket.connect(gateway.port)
    await ws.send_text('{"type":"subscribe","channel":"public.after"}')
    assert json.loads((await ws.read_frame())[1])["type"] == "subscribed"
    await ws.close()
