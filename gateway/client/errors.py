"""What the Python client raises when retrying cannot help.

Everything else (a gateway that is down, restarting or draining, a dropped connection, a
busy load balancer) the client rides out by reconnecting. These mistakes would fail the
same way on every attempt, so the client stops and raises them from iteration,
:meth:`~gateway.client.Client.receive` and :meth:`~gateway.client.Client.wait_connected`::

    ClientError
    ├── InvalidURL               not a ws:// or wss:// URL
    ├── HandshakeRejected        the URL answered an HTTP status (404: not the gateway's /ws)
    ├── ConnectionRejected       the gateway closed with a terminal close code (4500 and up)
    │   └── AuthenticationFailed 4501: the token was refused
    ├── ChannelRefused           a subscribe the gateway will never serve (invalid channel,
    │                            no permission, no token)
    ├── ReconnectLimitReached    ``max_reconnects`` attempts in a row failed
    └── ClientClosed             the client was closed (``SyncClient.next`` after ``close``)
"""

from __future__ import annotations

__all__ = [
    "AuthenticationFailed",
    "ChannelRefused",
    "ClientClosed",
    "ClientError",
    "ConnectionRejected",
    "HandshakeRejected",
    "InvalidURL",
    "ReconnectLimitReached",
]


class ClientError(Exception):
    """The root of every error the client raises."""


class InvalidURL(ClientError, ValueError):
    """The URL is not a WebSocket URL the client can connect to."""

    def __init__(self, url: str, why: str) -> None:
        super().__init__(f"{url} is not a gateway WebSocket URL: {why}")
        self.url = url


class HandshakeRejected(ClientError):
    """The server answered the WebSocket upgrade with an HTTP status that will not change
    by retrying (404: a wrong path; 403: an origin or credential refused). Busy or
    starting answers (429, 502, 503, 504) are retried instead."""

    def __init__(self, url: str, status: int) -> None:
        super().__init__(f"{url} answered HTTP {status}; is that the gateway's /ws?")
        self.url = url
        self.status = status


class ConnectionRejected(ClientError):
    """The gateway closed the connection with a terminal close code (docs/protocol.md)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"the gateway closed the connection with {code}: {reason or 'no reason'}")
        self.code = code
        self.reason = reason


class AuthenticationFailed(ConnectionRejected):
    """The gateway refused the token (close code 4501): a new token is needed, not a retry."""


class ChannelRefused(ClientError):
    """The gateway answered a subscribe with an error that retrying cannot fix."""

    def __init__(self, channel: str | None, code: str, message: str) -> None:
        about = f" {channel}" if channel else ""
        super().__init__(f"the gateway refused{about}: {code}: {message}")
        self.channel = channel
        self.code = code
        self.message = message


class ReconnectLimitReached(ClientError):
    """The connection failed or was lost, and the ``max_reconnects`` attempts in a row
    that were allowed are used up (with 0, reconnecting is off)."""

    def __init__(self, max_reconnects: int, last: str) -> None:
        super().__init__(f"no reconnect left (max_reconnects={max_reconnects}); last: {last}")
        self.max_reconnects = max_reconnects
        self.last = last


class ClientClosed(ClientError):
    """The client was closed; it yields nothing more."""
