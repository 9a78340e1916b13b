"""What a connection's credentials are, in the terms a session needs: no JWT, no keys.

:class:`Grant` is what a verified token allows, :class:`TokenError` why a token was
refused, and :class:`Access` the policy a :class:`~gateway.session.Session` asks
(:class:`gateway.auth.Guard` implements it with real keys). Keeping these here lets the
session stay free of JWT and cryptography, and lets tests hand it a policy of their own.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Protocol

from shared.protocol import CloseCode, ErrorCode

__all__ = ["DENIED", "Access", "Grant", "TokenError"]

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


class Access(Protocol):
    """The access policy a session asks; no I/O."""

    auth_timeout: float
    """Seconds an anonymous connection with no subscription may stay (0: forever)."""

    def verify(self, token: str) -> Grant:
        """The grant of ``token``.

        Raises:
            TokenError: the token is refused.
        """
        ...

    def check(self, grant: Grant | None, channel: str) -> ErrorCode | None:
        """None when a connection holding ``grant`` may subscribe to ``channel``; else
        the error code to answer with (a key of :data:`DENIED`)."""
        ...

    def expired(self, grant: Grant, wall: float) -> bool:
        """Whether ``grant`` has run out at Unix time ``wall``."""
        ...
