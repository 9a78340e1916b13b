"""Hostile values in queries, cursors, headers and frames: each is refused with a clear
400/422 or error frame, and none reaches a traceback, a forged SSE event, a forged log
line or an answer that shows the broker's internals."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.helpers import GatewayProcess, open_ws, recv_json, wait_until
from tests.security.conftest import API_KEY

FORGED_CLOSE = 'a\n\nevent: close\ndata: {"code":4501}\n\nid: z:1'


def no_traceback(gateway: GatewayProcess) -> None:
    log = gateway.log_path.read_text(errors="replace")
    assert "Traceback" not in log, gateway.log_tail()


@pytest.mark.parametrize("wait", ["nan", "NaN", "inf", "-inf", "1e999", "-1", "soon"])
async def test_a_wait_that_is_not_a_finite_number_is_refused(gateway, keys, wait):
    """``wait=nan`` made ``min(nan, 25)`` a deadline that never passed: the poll spun on
    zero timeouts at most of a core until the client left."""
    headers = {"authorization": "Bearer " + keys.token(channels=["tasks.quiet.*"])}
    async with httpx.AsyncClient(timeout=5, headers=headers) as client:
        params = {"channel": "tasks.quiet.1", "wait": wait}
        response = await client.get(gateway.url + "/poll", params=params)
    assert response.status_code == 400, response.text
    assert "wait must be a number" in response.text


async def test_malformed_numbers_get_400_or_422_not_500(gateway):
    """``"²".isdigit()`` is true but ``int("²")`` raises; 5,000 digits exceed ``int()``'s
    limit. Each of these was a 500 and a 3 KB traceback in the log."""
    async with httpx.AsyncClient(timeout=10) as client:
        params = {"channel": "public.news", "since": "abc:\u00b2", "wait": "0"}
        assert (await client.get(gateway.url + "/poll", params=params)).status_code == 400
        async with client.stream("GET", gateway.url + "/sse", params=params) as response:
            assert response.status_code == 400
        headers = {"last-event-id": b"abc:\xb2"}
        query = {"channel": "public.news"}
        async with client.stream(
            "GET", gateway.url + "/sse", params=query, headers=headers
        ) as response:
            assert response.status_code == 400
        api = {"authorization": "Bearer " + API_KEY}
        for limit in ["\u00b2", "9" * 5000, "-1", "1.5", "0"]:
            response = await client.get(
                gateway.url + "/api/tasks/P", params={"limit": limit}, headers=api
            )
            assert response.status_code == 422, (limit[:10], response.text)
            assert response.json()["error"]["code"] == "invalid_query"
    no_traceback(gateway)


@pytest.mark.parametrize(
    "since",
    [
        FORGED_CLOSE,
        "a\r:1",
        "a b:1",
        "a:b:1",
        "a" * 65 + ":1",
        "abc:1\n",
        "abc:99999999999999999999",
    ],
)
async def test_an_epoch_that_could_forge_sse_events_is_refused(gateway, since):
    """The epoch of a cursor went raw into ``id:`` lines, so newlines in it forged an
    ``event: close`` that tells relaycast.js to stop for good."""
    async with httpx.AsyncClient(timeout=10) as client:
        params = {"channel": "public.news", "since": since}
        async with client.stream("GET", gateway.url + "/sse", params=params) as response:
            assert response.status_code == 400
            assert "event: close" not in (await response.aread()).decode()
        response = await client.get(gateway.url + "/poll", params={**params, "wait": "0"})
        assert response.status_code == 400


async def test_a_good_cursor_still_resumes(gateway):
    async with httpx.AsyncClient(timeout=10) as client:
        params = {"channel": "public.news", "since": "3f2a_9c-01:0", "wait": "0"}
        response = await client.get(gateway.url + "/poll", params=params)
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("since", "field"),
    [
        ({"offset": -1, "epoch": "abc"}, "offset"),
        ({"offset": 2**63, "epoch": "abc"}, "offset"),
        ({"offset": 1, "epoch": "a\n\nevent: close"}, "epoch"),
    ],
)
async def test_a_resume_position_out_of_range_gets_a_fixed_error(gateway, since, field):
    """``offset: -1`` reached Redis and came back as "Invalid stream ID ... script:
    <sha>, on @user_script:18": the client gets ``bad_frame`` naming the field."""
    ws = await open_ws(gateway.ws_url)
    await ws.send(json.dumps({"type": "subscribe", "channel": "public.news", "since": since}))
    frame = await recv_json(ws)
    assert (frame["type"], frame["code"]) == ("error", "bad_frame"), frame
    assert f"$.since.{field}" in frame["message"]
    for internal in ("script", "stream ID", "user_script"):
        assert internal not in frame["message"]
    await ws.send(json.dumps({"type": "ping", "id": 1}))
    assert await recv_json(ws) == {"type": "pong", "id": 1}  # still open
    await ws.close()


async def test_client_bytes_never_forge_a_log_line(gateway):
    """A decode error's message carries the client's bytes; in the log, newlines and ANSI
    escapes come out escaped, so no line of the log is the client's."""
    forged = "FORGED 2026-01-01 00:00:00 ERROR relaycast.gateway: root login"
    ws = await open_ws(gateway.ws_url)
    await ws.send(json.dumps({"type": f"x\n{forged}\r\x1b[2J\x1b]0;owned\x07\u2028"}))
    frame = await recv_json(ws)
    assert frame["code"] == "bad_frame"
    await ws.close()

    def logged() -> bool:
        return "FORGED 2026" in gateway.log_path.read_text(errors="replace")

    await wait_until(logged, 10, "the bad frame logged")
    log = gateway.log_path.read_text(errors="replace")
    assert not any(line.startswith("FORGED") for line in log.splitlines())
    assert "\x1b" not in log and "\x07" not in log and "\u2028" not in log
    assert "\\x0aFORGED 2026" in log and "\\x1b[2J" in log


@pytest.mark.parametrize("claims", [{"exp": float("inf")}, {"exp": float("nan")},
                                    {"iat": float("nan")}, {"exp": 1e300}])  # fmt: skip
async def test_non_finite_numbers_in_a_signed_token_are_refused(gateway, keys, claims):
    """A login service that signs ``exp: Infinity`` (json allows it) makes a token whose
    numbers cannot be compared or converted: refused as malformed, not a 500."""
    headers = {"authorization": "Bearer " + keys.token(**claims)}
    async with httpx.AsyncClient(timeout=10, headers=headers) as client:
        params = {"channel": "tasks.projA.1", "wait": "0"}
        response = await client.get(gateway.url + "/poll", params=params)
    assert response.status_code == 401, response.text
    no_traceback(gateway)
