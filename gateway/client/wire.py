"""The client's side of the protocol beyond the shared frames: the subscribe frame it
sends, and which answers of a gateway mean "retry" and which mean "stop"."""

from __future__ import annotations

from urllib.parse import urlsplit

from websockets.exceptions import InvalidStatus, InvalidURI

from gateway.client.errors import (
    AuthenticationFailed,
    ClientError,
    ConnectionRejected,
    HandshakeRejected,
    InvalidURL,
)
from shared.protocol import RECONNECT_CLOSE_CODES, CloseCode, ErrorCode

__all__ = [
    "REFUSED_CODES",
    "RETRY_STATUSES",
    "check_rate",
    "check_url",
    "close_failure",
    "handshake_failure",
]

RETRY_STATUSES = frozenset({429, 502, 503, 504})
"""Handshake answers of a busy or starting gateway (or of its load balancer): retried."""

REFUSED_CODES = frozenset(
    {
        ErrorCode.INVALID_CHANNEL,
        ErrorCode.PERMISSION_DENIED,
        ErrorCode.UNAUTHORIZED,
        ErrorCode.TOO_MANY_SUBSCRIPTIONS,
    }
)
"""Error frames about a subscribe that no retry will change: raised as ChannelRefused."""


def check_url(url: str) -> str:
    """``url`` when it is a WebSocket URL with a host (raises InvalidURL)."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        hint = url.replace("http", "ws", 1) if parts.scheme in ("http", "https") else "ws://HOST/ws"
        raise InvalidURL(url, f"use ws:// or wss://, e.g. {hint}")
    if not parts.hostname:
        raise InvalidURL(url, "it names no host")
    return url


def check_rate(max_rate: float) -> float:
    if not max_rate > 0:
        raise ValueError(f"max_rate must be a number of updates per second above 0, not {max_rate}")
    return float(max_rate)


def handshake_failure(url: str, exc: Exception) -> str:
    """Why a connect failed, when retrying may help; raises when it cannot."""
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        if status not in RETRY_STATUSES:
            raise HandshakeRejected(url, status) from None
        return f"{url} answered HTTP {status}"
    if isinstance(exc, InvalidURI):
        raise InvalidURL(url, str(exc)) from None
    return f"cannot connect to {url}: {exc or type(exc).__name__}"


def close_failure(code: int, reason: str) -> ClientError | None:
    """The error a terminal close code means, or None when the client reconnects."""
    if code in RECONNECT_CLOSE_CODES or code == CloseCode.NORMAL:
        return None
    if code == CloseCode.UNAUTHORIZED:
        return AuthenticationFailed(code, reason)
    return ConnectionRejected(code, reason)
