"""The Python subscriber SDK: one connection to any gateway, kept alive for you.

    async with Client("ws://127.0.0.1:8000/ws", ["tasks.demo"]) as client:
        async for event in client:
            if isinstance(event, Message):
                print(event.channel, event.offset, event.data)  # data: the decoded JSON value

``connection`` holds the asyncio :class:`Client`, ``events`` what it hands out (messages
with typed events of the built-in channels, state changes), ``errors`` what it raises
when retrying cannot help, ``wire`` which answers of a gateway mean retry and which
mean stop, ``tokens`` the token source and refresh, and ``sync`` the :class:`SyncClient`
for scripts and notebooks. docs/sdk-python.md is the tour.
"""

from gateway.client.connection import Client, ConnectionState, Event, StateCallback
from gateway.client.errors import (
    AuthenticationFailed,
    ChannelRefused,
    ClientClosed,
    ClientError,
    ConnectionRejected,
    HandshakeRejected,
    InvalidURL,
    ReconnectLimitReached,
)
from gateway.client.events import (
    BUILT_IN_EVENTS,
    Connected,
    Disconnected,
    Message,
    Reconnecting,
    StateChange,
    event_type,
    register_event,
)
from gateway.client.sync import SyncClient
from gateway.client.tokens import TokenSource
from shared.channels import InvalidChannel
from shared.protocol import Error, Position, Subscribed, Unsubscribed

__all__ = [
    "BUILT_IN_EVENTS",
    "AuthenticationFailed",
    "ChannelRefused",
    "Client",
    "ClientClosed",
    "ClientError",
    "Connected",
    "ConnectionRejected",
    "ConnectionState",
    "Disconnected",
    "Error",
    "Event",
    "HandshakeRejected",
    "InvalidChannel",
    "InvalidURL",
    "Message",
    "Position",
    "ReconnectLimitReached",
    "Reconnecting",
    "StateCallback",
    "StateChange",
    "Subscribed",
    "SyncClient",
    "TokenSource",
    "Unsubscribed",
    "event_type",
    "register_event",
]
