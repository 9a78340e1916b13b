"""Connection tokens: what the gateway accepts, what it refuses, and how it says so.

Refused tokens close the connection: 4003 when the token expired (fetch a new one,
reconnect), 4501 for anything else (this token will never do). A connection without a
token may read public channels only; a protected channel answers ``unauthorized``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from gateway.auth import Guard, TokenError, TokenKeys
from shared.protocol import CloseCode
from shared.settings import Settings, SettingsError
from tests.helpers import open_ws, recv_json, subscribe
from tests.security.conftest import API_KEY, NAMESPACES, SECRET, Keys, unsigned_token

EXPIRED, REFUSED = CloseCode.TOKEN_EXPIRED, CloseCode.UNAUTHORIZED


def settings(keys: Keys, **overrides: Any) -> Settings:
    values = {k: v for k, v in keys.settings().items() if k != "namespaces"}
    return Settings(namespaces=NAMESPACES, **{**values, **overrides})


def confused_token(keys: Keys) -> str:
    """HS256 'signed' with the ES256 public key as the HMAC secret (algorithm confusion)."""

    def part(value: bytes) -> str:
        return base64.urlsafe_b64encode(value).rstrip(b"=").decode()

    head = part(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = part(json.dumps({"sub": "mallory", "channels": ["*"], "aud": "relaycast",
                            "exp": int(time.time() + 300)}).encode())  # fmt: skip
    signature = hmac.new(keys.pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{part(signature)}"


BAD_TOKENS = {
    # name: (make the token, reason label, close code)
    "expired": (lambda k: k.token(ttl=-60), "expired", EXPIRED),
    "wrong secret": (lambda k: k.token(key="another-secret-" + "x" * 32), "signature", REFUSED),
    "RS256 by a stranger": (lambda k: k.token(alg="RS256", key=k.stranger), "signature", REFUSED),
    "alg none": (lambda k: unsigned_token(), "algorithm", REFUSED),
    "algorithm confusion": (confused_token, "signature", REFUSED),
    "HS512": (lambda k: k.token(alg="HS512", key=SECRET * 2), "algorithm", REFUSED),
    "wrong audience": (lambda k: k.token(aud="another-service"), "audience", REFUSED),
    "no audience": (lambda k: k.token(aud=None), "claims", REFUSED),
    "no exp": (lambda k: k.token(exp=None), "claims", REFUSED),
    "not yet valid": (lambda k: k.token(nbf=int(time.time() + 600)), "not_yet_valid", REFUSED),
    "channels not a list": (lambda k: k.token(channels="tasks.*"), "claims", REFUSED),
    "unknown kid": (lambda k: k.token(alg="RS256", kid="rsa-9"), "key", REFUSED),
    "garbage": (lambda k: "not.a.jwt", "malformed", REFUSED),
}


class TestVerification:
    """TokenKeys and Guard in-process: each kind of token, each setting."""

    @pytest.mark.parametrize("alg", ["HS256", "ES256", "RS256"])
    def test_each_algorithm_with_its_key_is_accepted(self, keys, alg):
        grant = TokenKeys.from_settings(settings(keys)).verify(keys.token(alg=alg))
        assert grant.user == "alice"
        assert grant.patterns == ("tasks.projA.*",)
        assert grant.covers("tasks.projA.7") and not grant.covers("tasks.projB.7")

    @pytest.mark.parametrize("name", list(BAD_TOKENS))
    def test_a_bad_token_is_refused_with_its_reason_and_close_code(self, keys, name):
        make, reason, code = BAD_TOKENS[name]
        token = make(keys)
        with pytest.raises(TokenError) as caught:
            TokenKeys.from_settings(settings(keys)).verify(token)
        assert (caught.value.reason, caught.value.close_code) == (reason, code)
        assert all(part not in str(caught.value) for part in token.split(".") if len(part) > 8)

    def test_issuer_is_checked_when_configured(self, keys):
        verifier = TokenKeys.from_settings(settings(keys, token_issuer="https://login.example"))
        assert verifier.verify(keys.token(iss="https://login.example")).user == "alice"
        with pytest.raises(TokenError, match="issuer"):
            verifier.verify(keys.token(iss="https://evil.example"))

    def test_token_algorithms_narrow_what_is_accepted(self, keys):
        verifier = TokenKeys.from_settings(settings(keys, token_algorithms="ES256"))
        assert verifier.verify(keys.token(alg="ES256")).user == "alice"
        for alg in ("HS256", "RS256"):
            with pytest.raises(TokenError, match="algorithm"):
                verifier.verify(keys.token(alg=alg))

    @pytest.mark.parametrize(
        ("overrides", "words"),
        [
            ({"token_secret": "", "token_public_key": "", "token_jwks_file": ""}, "token keys"),
            ({"api_key": ""}, "RELAYCAST_API_KEY"),
            ({"token_secret": "short"}, "at least 32 bytes"),
            ({"token_algorithms": "HS256,none"}, "none not accepted"),
            ({"token_public_key": "/nonexistent.pem"}, "RELAYCAST_TOKEN_PUBLIC_KEY"),
            ({"token_jwks_file": "/nonexistent.json"}, "RELAYCAST_TOKEN_JWKS_FILE"),
        ],
    )
    def test_production_settings_that_leave_the_gateway_open_are_refused(
        self, keys, overrides, words
    ):
        with pytest.raises(SettingsError, match=words):
            Guard.from_settings(settings(keys, **overrides))

    def test_development_needs_no_keys_and_opens_every_channel(self):
        guard = Guard.from_settings(Settings(mode="development", namespaces=NAMESPACES))
        assert guard.check(None, "tasks.projB.1") is None

    def test_namespace_access_decides_each_channel(self, keys):
        guard = Guard.from_settings(settings(keys))
        alice = guard.verify(keys.token())
        assert guard.check(None, "public.news") is None
        assert guard.check(None, "members.chat") == "unauthorized"
        assert guard.check(alice, "members.chat") is None
        assert guard.check(None, "tasks.projA.1") == "unauthorized"
        assert guard.check(alice, "tasks.projA.1") is None
        assert guard.check(alice, "tasks.projB.1") == "permission_denied"
        assert guard.check(alice, "anything.else") == "permission_denied"  # default: claims


# --- against a live gateway -----------------------------------------------------------------


async def closed_with(ws: Any, timeout: float = 10.0) -> tuple[int, list[dict[str, Any]]]:
    """Read until the gateway closes: (close code, frames read before, pings left out)."""
    frames = []
    try:
        while True:
            frames.append(await recv_json(ws, timeout))
    except ConnectionClosed as exc:
        assert exc.rcvd is not None, "closed without a close frame"
        return exc.rcvd.code, frames


async def assert_alive(ws: Any, ping_id: int = 1) -> None:
    await ws.send(json.dumps({"type": "ping", "id": ping_id}))
    assert await recv_json(ws) == {"type": "pong", "id": ping_id}


@pytest.mark.parametrize("name", list(BAD_TOKENS))
async def test_a_bad_token_in_an_auth_frame_closes_before_any_subscribe(gateway, keys, name):
    make, _, code = BAD_TOKENS[name]
    ws = await open_ws(gateway.ws_url)
    # Sent together: the subscribe must not be served on the strength of a refused token.
    await ws.send(json.dumps({"type": "auth", "token": make(keys)}))
    await ws.send(json.dumps({"type": "subscribe", "channel": "tasks.projA.1"}))
    got, frames = await closed_with(ws)
    assert got == code
    assert frames == []


@pytest.mark.parametrize("name", ["expired", "alg none", "wrong audience", "wrong secret"])
async def test_a_bad_token_in_the_handshake_closes_with_its_code(gateway, keys, name):
    make, _, code = BAD_TOKENS[name]
    ws = await open_ws(gateway.ws_url, subprotocols=["relaycast", "bearer." + make(keys)])
    assert ws.subprotocol == "relaycast"
    with contextlib.suppress(ConnectionClosed):  # it may be closed already
        await ws.send(json.dumps({"type": "subscribe", "channel": "tasks.projA.1"}))
    got, frames = await closed_with(ws)
    assert (got, frames) == (code, [])


async def test_no_token_reads_public_channels_and_is_told_unauthorized_elsewhere(gateway):
    ws = await open_ws(gateway.ws_url)
    await subscribe(ws, "public.news")
    for channel in ("tasks.projA.1", "members.chat", "other.thing"):
        await ws.send(json.dumps({"type": "subscribe", "channel": channel}))
        frame = await recv_json(ws)
        assert (frame["type"], frame["code"], frame["channel"]) == (
            "error",
            "unauthorized",
            channel,
        )
    await assert_alive(ws)  # a denied subscribe leaves the connection open
    await ws.close()


@pytest.mark.parametrize("alg", ["HS256", "ES256", "RS256"])
async def test_a_valid_token_in_the_handshake_authenticates(gateway, keys, alg):
    token = keys.token(alg=alg, sub="bob")
    ws = await open_ws(gateway.ws_url, subprotocols=["relaycast", "bearer." + token])
    assert ws.subprotocol == "relaycast"  # never the token echoed back
    frame = await recv_json(ws)
    assert frame["type"] == "authenticated" and frame["user"] == "bob"
    assert frame["expires"] > time.time()
    await subscribe(ws, "tasks.projA.1")
    await subscribe(ws, "members.chat")
    await ws.close()


async def test_a_valid_auth_frame_authenticates(gateway, keys):
    ws = await open_ws(gateway.ws_url)
    await ws.send(json.dumps({"type": "auth", "token": keys.token(alg="ES256")}))
    assert (await recv_json(ws))["type"] == "authenticated"
    await subscribe(ws, "tasks.projA.2")
    await ws.close()


async def test_api_key_is_required_for_publishing_over_http(gateway):
    body = {"channel": "public.news", "data": {"n": 1}}
    async with httpx.AsyncClient(timeout=10) as client:
        url = gateway.url + "/api/publish"
        assert (await client.post(url, json=body)).status_code == 401
        wrong = {"authorization": "Bearer " + API_KEY[:-1] + "x"}
        assert (await client.post(url, json=body, headers=wrong)).status_code == 401
        right = {"authorization": "Bearer " + API_KEY}
        assert (await client.post(url, json=body, headers=right)).status_code == 200
