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
ones to a token whose patterns match. In development mode every channel is open.

Error messages are fixed strings: they never echo a token or a key.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from gateway import observe
from gateway.frames import control
from shared.protocol import Authenticated, CloseCode, ErrorCode, Unsubscribed
from shared.settings import Settings, SettingsError

if TYPE_CHECKING:
    from gateway.session import Session

__all__ = [
    "ALGORITHMS",
    "DENIED",
    "Grant",
    "Guard",
    "TokenError",
    "TokenKeys",
    "enforce_credentials",
    "take_token",
]

log = logging.getLogger("relaycast.auth")

ALGORITHMS = ("HS256", "RS256", "ES256")
"""Every algorithm a token may be signed with; ``token_algorithms`` picks among these."""

MIN_SECRET_BYTES = 32
MAX_TIME = 253402300799
"""The last second of the year 9999: a larger ``exp`` is no time (and overflows encoders)."""
MAX_PATTERNS = 1000

DENIED = {
    ErrorCode.UNAUTHORIZED: "this channel needs a token: send auth first",
    ErrorCode.PERMISSION_DENIED: "the connection's token does not cover this channel",
}
"""The message of each error a refused subscribe gets."""


@dataclass(frozen=True, slots=True)
class Grant:
    """What a verified token allows: who (``user``), which channels (``patterns``), until
    when (``expires``, Unix seconds)."""

    user: str
    patterns: tuple[str, ...]
    expires: float
    token_id: str = ""
    """The token's ``jti`` (empty when it has none): what revokes this one token."""
    issued: float | None = None
    """The token's ``iat``: a user's revocation covers tokens issued before it."""

    def covers(self, channel: str) -> bool:
        return any(fnmatch.fnmatchcase(channel, p) for p in self.patterns)


class TokenError(Exception):
    """A token was refused. ``reason`` labels the metric, ``close_code`` tells the client
    what to do (4003: fetch a new token; 4501: this token will never do), and the message
    is safe to send and log: it never contains the token."""

    def __init__(self, reason: str, message: str, close_code: int = CloseCode.UNAUTHORIZED):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.close_code = close_code


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

    def expired(self, grant: Grant, wall: float) -> bool:
        """Whether ``grant``'s token has expired at Unix time ``wall`` (with the leeway)."""
        return wall > grant.expires + self.keys.leeway


# --- a session's credentials over its life ------------------------------------------------


def take_token(session: Session, token: str) -> tuple[str, ...]:
    """Verify ``token`` for ``session`` (an ``auth`` or ``refresh`` frame, or the token of
    a WebSocket handshake) and answer ``authenticated``.

    A refused token closes the session: 4003 when it expired, 4501 otherwise, and 4501
    when it names another user than the session's earlier token. Subscriptions the new
    grant no longer covers are ended (``unsubscribed``, reason ``permission_denied``);
    returns their channels, which the hub must leave.
    """
    guard = session.guard
    if guard is None:
        session.send_error(ErrorCode.UNAUTHORIZED, "this endpoint takes no tokens")
        return ()
    try:
        grant = guard.verify(token)
    except TokenError as exc:
        log.debug("session %d: token refused (%s)", session.id, exc.reason)
        session.close(exc.close_code, exc.message)
        return ()
    if session.grant is not None and grant.user != session.grant.user:
        observe.AUTH_REFUSALS.labels("other_user").inc()
        session.close(CloseCode.UNAUTHORIZED, "a refreshed token must name the same user")
        return ()
    session.grant = grant
    session.send(control(Authenticated(user=grant.user, expires=int(grant.expires))))
    revoked = tuple(c for c in session.subs if guard.check(grant, c) is not None)
    for channel in revoked:
        del session.subs[channel]
        reason = ErrorCode.PERMISSION_DENIED
        session.send(control(Unsubscribed(channel=channel, reason=reason)))
    return revoked


def enforce_credentials(session: Session, wall: float, now: float) -> None:
    """Close ``session`` when its token expired (4003), or when it is anonymous and holds
    no subscription past the authentication deadline (4501, production only). ``wall`` is
    Unix time, ``now`` the transport's clock (as in ``session.opened``)."""
    guard = session.guard
    if guard is None or session.close_code is not None:
        return
    if session.grant is not None:
        if guard.expired(session.grant, wall):
            observe.AUTH_REFUSALS.labels("expired").inc()
            session.close(CloseCode.TOKEN_EXPIRED, "token expired; fetch a new one")
    elif guard.auth_timeout and not session.subs and now - session.opened > guard.auth_timeout:
        observe.LIMIT_HITS.labels("auth_timeout").inc()
        session.close(CloseCode.UNAUTHORIZED, "no token and no subscription in time")
