"""Connection tokens and channel permissions: who a connection is, and what it may read.

A client proves who it is with a JWT signed by the application's login service. The
gateway only verifies; it never issues tokens. Claims it reads:

- ``sub``: the user (a string; optional, shown back in ``authenticated``);
- ``channels``: the channel patterns the token may subscribe to, shell-style
  (``["tasks.projA.*", "metrics.*"]``; ``*`` matches dots too);
- ``exp`` (required), ``nbf``, ``iat``, ``aud`` (must equal ``token_audience`` when that
  is set) and ``iss`` (must equal ``token_issuer`` when that is set).

Keys come from settings: an HS256 secret, an RS256 or ES256 public key (PEM), and/or a
JWKS file. The accepted algorithms are a fixed list (``token_algorithms``, a subset of
HS256, RS256 and ES256), and each key verifies only its own algorithm, so ``alg: none``
and algorithm confusion (an RSA public key used as an HMAC secret) are refused.

Each subscribe is checked against the channel's namespace (:data:`shared.channels.Access`):
``public`` channels are open to all, ``authenticated`` ones to any valid token, ``claims``
ones to a token whose patterns match. ``notifications.<user>`` is read only by a token whose
``sub`` is that user, whatever its patterns. In development mode every channel is open.

Error messages are fixed strings: they never echo a token or a key.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from gateway import observe
from gateway.access import DENIED, Grant, TokenError
from shared.protocol import CloseCode, ErrorCode
from shared.settings import Settings, SettingsError

__all__ = [
    "ALGORITHMS",
    "DENIED",
    "Grant",
    "Guard",
    "TokenError",
    "TokenKeys",
]

log = logging.getLogger("relaycast.auth")

ALGORITHMS = ("HS256", "RS256", "ES256")
"""Every algorithm a token may be signed with; ``token_algorithms`` picks among these."""

MIN_SECRET_BYTES = 32
MAX_TIME = 253402300799
"""The last second of the year 9999: a larger ``exp`` is no time (and overflows encoders)."""
MAX_PATTERNS = 1000
NOTIFICATIONS = "notifications."
"""Prefix of the per-user notification channels (:mod:`shared.state.notifications`)."""


@dataclass(frozen=True, slots=True)
class _Key:
    algorithm: str
    key: Any
    kid: str | None


class TokenKeys:
    """The keys tokens are verified with, each bound to its one algorithm."""

    def __init__(self, keys: list[_Key], audience: str, issuer: str, leeway: float) -> None:
        self.keys = keys
        self.algorithms = {k.algorithm for k in keys}
        self.audience = audience or None
        self.issuer = issuer or None
        self.leeway = leeway

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenKeys:
        """Load the configured keys.

        Raises:
            SettingsError: an unknown algorithm, a short secret, or a key or JWKS file
                that cannot be read; the message names the setting.
        """
        accepted = {a.strip() for a in settings.token_algorithms.split(",") if a.strip()}
        unknown = accepted - set(ALGORITHMS)
        if unknown:
            raise SettingsError(
                f"RELAYCAST_TOKEN_ALGORITHMS: {', '.join(sorted(unknown))} not accepted;"
                f" use some of {', '.join(ALGORITHMS)}"
            )
        keys: list[_Key] = []
        if settings.token_secret:
            if len(settings.token_secret.encode()) < MIN_SECRET_BYTES:
                raise SettingsError(
                    f"RELAYCAST_TOKEN_SECRET must be at least {MIN_SECRET_BYTES} bytes"
                )
            keys.append(_Key("HS256", settings.token_secret.encode(), None))
        if settings.token_public_key:
            keys.append(_pem_key(settings.token_public_key))
        if settings.token_jwks_file:
            keys += _jwks_keys(settings.token_jwks_file)
        usable = [k for k in keys if k.algorithm in accepted]
        if keys and not usable:
            raise SettingsError(
                "RELAYCAST_TOKEN_ALGORITHMS excludes the algorithm of every configured key"
            )
        return cls(usable, settings.token_audience, settings.token_issuer, settings.token_leeway)

    def verify(self, token: str) -> Grant:
        """The grant of a valid token.

        Raises:
            TokenError: the token is malformed, unsigned, signed with another algorithm
                or key, expired, not yet valid, for another audience or issuer, or its
                claims have the wrong shape.
        """
        if not self.keys:
            raise TokenError("no_keys", "this gateway has no token keys configured")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("malformed", "token is not a valid JWT") from None
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self.algorithms:
            raise TokenError("algorithm", "token algorithm is not accepted")
        kid = header.get("kid")
        candidates = [
            k
            for k in self.keys
            if k.algorithm == algorithm and (k.kid is None or kid is None or k.kid == kid)
        ]
        if not candidates:
            raise TokenError("key", "no key matches the token's key id")
        for key in candidates:
            try:
                claims = jwt.decode(
                    token,
                    key.key,
                    algorithms=[algorithm],
                    audience=self.audience,
                    issuer=self.issuer,
                    leeway=self.leeway,
                    options={"require": ["exp"], "verify_aud": self.audience is not None},
                )
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError as exc:
                raise _refusal(exc) from None
            except (OverflowError, ValueError, TypeError):  # e.g. "exp": 1e999, signed
                raise TokenError("malformed", "token is not a valid JWT") from None
            return _grant(claims)
        raise TokenError("signature", "token signature does not verify")


def _refusal(exc: jwt.PyJWTError) -> TokenError:
    match exc:
        case jwt.ExpiredSignatureError():
            return TokenError("expired", "token expired", CloseCode.TOKEN_EXPIRED)
        case jwt.InvalidAudienceError():
            return TokenError("audience", "token audience is not accepted")
        case jwt.InvalidIssuerError():
            return TokenError("issuer", "token issuer is not accepted")
        case jwt.ImmatureSignatureError() | jwt.InvalidIssuedAtError():
            return TokenError("not_yet_valid", "token is not valid yet (nbf or iat)")
        case jwt.MissingRequiredClaimError(claim=claim) if claim in ("exp", "aud", "iss"):
            return TokenError("claims", f"token lacks the {claim} claim")
        case _:
            return TokenError("malformed", "token is not a valid JWT")


def _grant(claims: dict[str, Any]) -> Grant:
    user = claims.get("sub", "")
    patterns = claims.get("channels", [])
    if (
        not isinstance(user, str)
        or not isinstance(patterns, list)
        or len(patterns) > MAX_PATTERNS
        or not all(isinstance(p, str) and 0 < len(p) <= 256 for p in patterns)
    ):
        raise TokenError("claims", "token claims: sub must be a string, channels a list")
    token_id = claims.get("jti", "")
    issued = claims.get("iat")
    if not isinstance(token_id, str) or len(token_id) > 256:
        raise TokenError("claims", "token claims: jti must be a string of at most 256")
    if issued is not None and not _finite_number(issued):
        raise TokenError("claims", "token claims: iat must be a number")
    if not _finite_number(claims["exp"]) or claims["exp"] > MAX_TIME:
        raise TokenError("claims", "token claims: exp must be a time before the year 10000")
    return Grant(
        user[:256],
        tuple(patterns),
        float(claims["exp"]),
        token_id,
        None if issued is None else float(issued),
    )


def _finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _pem_key(text: str) -> _Key:
    source = "RELAYCAST_TOKEN_PUBLIC_KEY"
    try:
        pem = text if "-----BEGIN" in text else Path(text).read_text()
        key = load_pem_public_key(pem.encode())
    except (OSError, ValueError) as exc:
        raise SettingsError(f"{source}: not a PEM public key or a readable PEM file") from exc
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise SettingsError(f"{source}: RSA keys must be at least 2048 bits")
        return _Key("RS256", key, None)
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return _Key("ES256", key, None)
    raise SettingsError(f"{source}: use an RSA (RS256) or P-256 (ES256) public key")


def _jwks_keys(path: str) -> list[_Key]:
    source = "RELAYCAST_TOKEN_JWKS_FILE"
    try:
        jwks = jwt.PyJWKSet.from_dict(json.loads(Path(path).read_text()))
    except (OSError, ValueError, jwt.PyJWTError) as exc:
        raise SettingsError(f"{source}: cannot read a JWK set from {path}") from exc
    keys = []
    for jwk in jwks.keys:
        if jwk.public_key_use not in (None, "sig") or jwk.algorithm_name not in ALGORITHMS:
            continue
        if jwk.algorithm_name == "HS256" and len(jwk.key) < MIN_SECRET_BYTES:
            raise SettingsError(f"{source}: HS256 keys must be at least {MIN_SECRET_BYTES} bytes")
        if isinstance(jwk.key, rsa.RSAPublicKey) and jwk.key.key_size < 2048:
            raise SettingsError(f"{source}: RSA keys must be at least 2048 bits")
        keys.append(_Key(jwk.algorithm_name, jwk.key, jwk.key_id))
    if not keys:
        raise SettingsError(f"{source}: no HS256, RS256 or ES256 signing key in {path}")
    return keys


class Guard:
    """The gateway's access policy: verifies tokens, decides each subscribe, and says when
    a connection's credentials ran out. Shared by every transport; no I/O."""

    def __init__(self, settings: Settings, keys: TokenKeys) -> None:
        self.keys = keys
        self.development = settings.mode == "development"
        self.auth_timeout = 0.0 if self.development else settings.auth_timeout
        self.options = settings.channel_options
        self.revoked: Callable[[Grant], bool] | None = None
        """Set by :class:`gateway.revocation.Revocations`: whether a grant was revoked."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Guard:
        """Build the guard; in production, refuse settings that leave the gateway open.

        Raises:
            SettingsError: production without token keys or without an API key, or a
                key that cannot be loaded.
        """
        keys = TokenKeys.from_settings(settings)
        if settings.mode == "production":
            missing = []
            if not keys.keys:
                missing.append(
                    "token keys (RELAYCAST_TOKEN_SECRET, RELAYCAST_TOKEN_PUBLIC_KEY"
                    " or RELAYCAST_TOKEN_JWKS_FILE)"
                )
            if not settings.api_key:
                missing.append("an API key (RELAYCAST_API_KEY)")
            if missing:
                raise SettingsError(
                    "production mode needs "
                    + " and ".join(missing)
                    + "; for a local try-out set RELAYCAST_MODE=development (or run relaycast up)"
                )
        return cls(settings, keys)

    def verify(self, token: str) -> Grant:
        """The grant of ``token``; counts a refusal in the metrics.

        Raises:
            TokenError: see :meth:`TokenKeys.verify`.
        """
        try:
            grant = self.keys.verify(token)
            if self.is_revoked(grant):
                raise TokenError("revoked", "token revoked")
            return grant
        except TokenError as exc:
            observe.AUTH_REFUSALS.labels(exc.reason).inc()
            raise

    def is_revoked(self, grant: Grant) -> bool:
        """Whether ``grant``'s token was revoked (:mod:`gateway.revocation`)."""
        return self.revoked is not None and self.revoked(grant)

    def check(self, grant: Grant | None, channel: str) -> ErrorCode | None:
        """None when a connection holding ``grant`` may subscribe to ``channel``; else the
        error code to answer with (counted in the metrics)."""
        if self.development:
            return None
        if channel.startswith(NOTIFICATIONS):
            return self._check_own_notifications(grant, channel)
        access = self.options(channel).access
        if access == "public":
            return None
        if grant is None:
            observe.AUTH_REFUSALS.labels("unauthorized").inc()
            return ErrorCode.UNAUTHORIZED
        if access == "authenticated" or grant.covers(channel):
            return None
        observe.AUTH_REFUSALS.labels("permission_denied").inc()
        return ErrorCode.PERMISSION_DENIED

    def _check_own_notifications(self, grant: Grant | None, channel: str) -> ErrorCode | None:
        """``notifications.<user>`` is read by a token whose ``sub`` is that user, and by no
        other, whatever its patterns or the namespace's ``access`` say."""
        if grant is None:
            observe.AUTH_REFUSALS.labels("unauthorized").inc()
            return ErrorCode.UNAUTHORIZED
        if grant.user and channel == NOTIFICATIONS + grant.user:
            return None
        observe.AUTH_REFUSALS.labels("permission_denied").inc()
        return ErrorCode.PERMISSION_DENIED

    def expired(self, grant: Grant, wall: float) -> bool:
        """Whether ``grant``'s token has expired at Unix time ``wall`` (with the leeway)."""
        return wall > grant.expires + self.keys.leeway
