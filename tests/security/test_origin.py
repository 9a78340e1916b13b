"""The Origin allow-list: a page from a foreign origin gets 403 on every transport,
before anything is accepted; listed origins, the gateway's own origin and programs
(no ``Origin`` at all) get in."""

from __future__ import annotations

import httpx
import pytest

from gateway.origin import OriginPolicy
from shared.settings import Settings
from tests.rawws import RawWebSocket

FOREIGN = ["https://evil.example", "null", "https://app.example.com.evil.example",
           "http://app.example.com", "https://example.org"]  # fmt: skip
ALLOWED = ["https://app.example.com", "https://APP.example.com", "https://eu.example.org"]


class TestPolicy:
    def test_listed_wildcard_and_own_origins_pass_and_others_do_not(self):
        policy = OriginPolicy(
            ["https://app.example.com", "https://*.example.org"],
            own_hosts=("gw.internal", "gw.example"),
        )
        for origin in ALLOWED:
            assert policy.allows(origin, "gw.internal:8000"), origin
        for origin in FOREIGN:
            assert not policy.allows(origin, "gw.internal:8000"), origin
        assert policy.allows("http://gw.internal:8000", "gw.internal:8000")  # its own page
        assert policy.allows("https://gw.example", "gw.example:443")
        assert policy.allows(None, "gw.internal:8000")  # a program, not a page

    def test_empty_list_means_own_origin_in_production_and_any_in_development(self):
        production = OriginPolicy.from_settings(Settings(mode="production", host="gw"))
        assert not production.allows("https://evil.example", "gw:8000")
        assert production.allows("http://gw:8000", "gw:8000")
        assert production.allows("http://localhost:8000", "localhost:8000")
        assert production.allows("http://127.0.0.1:8000", "127.0.0.1:8000")
        assert production.allows("http://[::1]:8000", "[::1]:8000")

    def test_own_origin_is_only_a_name_the_gateway_knows_as_its_own(self):
        # DNS rebinding: evil.example resolves to the gateway, and the page's Origin and
        # the Host its browser sends agree. Neither is a name of the gateway's.
        production = OriginPolicy.from_settings(Settings(mode="production", host="0.0.0.0"))
        for host in ["evil.example:8000", "evil.example", "127.0.0.1.evil.example:8000"]:
            assert not production.allows(f"http://{host}", host), host
        assert not production.allows("http://localhost.evil.example", "localhost.evil.example")
        development = OriginPolicy.from_settings(Settings(mode="development"))
        assert development.allows("https://evil.example", "gw:8000")


async def websocket_status(port: int, origin: str) -> int:
    try:
        ws = await RawWebSocket.connect(port, headers=f"Origin: {origin}\r\n")
    except ConnectionRefusedError as exc:
        return int(str(exc).rsplit(" ", 1)[1])
    await ws.close()
    return 101


@pytest.mark.parametrize("origin", FOREIGN)
async def test_a_foreign_origin_gets_403_on_every_transport(gateway, origin):
    assert await websocket_status(gateway.port, origin) == 403
    headers = {"origin": origin}
    params = {"channel": "public.news"}
    async with httpx.AsyncClient(timeout=10, headers=headers) as client:
        async with client.stream("GET", gateway.url + "/sse", params=params) as response:
            assert response.status_code == 403
        assert (await client.get(gateway.url + "/poll", params=params)).status_code == 403
        assert (await client.options(gateway.url + "/auth/ticket")).status_code == 403
        assert (await client.post(gateway.url + "/auth/ticket")).status_code == 403


async def test_a_dns_rebinding_page_gets_403(gateway):
    """``Origin: http://evil.example:PORT`` with ``Host: evil.example:PORT`` (a name
    rebound to the gateway's address) is not the gateway's own origin."""
    own = f"evil.example:{gateway.port}"
    ws = RawWebSocket.connect(gateway.port, headers=f"Origin: http://{own}\r\n", host=own)
    with pytest.raises(ConnectionRefusedError, match="403"):
        await ws
    headers = {"origin": f"http://{own}", "host": own}
    async with httpx.AsyncClient(timeout=10, headers=headers) as client:
        params = {"channel": "public.news", "wait": "0"}
        assert (await client.get(gateway.url + "/poll", params=params)).status_code == 403
        assert (await client.post(gateway.url + "/auth/ticket")).status_code == 403


async def test_allowed_and_own_origins_get_in(gateway):
    for origin in [*ALLOWED, gateway.url]:
        assert await websocket_status(gateway.port, origin) == 101, origin
    async with httpx.AsyncClient(timeout=10) as client:
        params = {"channel": "public.news", "wait": "0"}
        headers = {"origin": "https://eu.example.org"}
        response = await client.get(gateway.url + "/poll", params=params, headers=headers)
        assert response.status_code == 200
        preflight = await client.options(gateway.url + "/auth/ticket", headers=headers)
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "https://eu.example.org"
        assert "authorization" in preflight.headers["access-control-allow-headers"]
