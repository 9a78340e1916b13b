"""The wire protocol: every frame a client and a gateway exchange, as msgspec Structs.

This module is the single source of truth for the protocol; docs/protocol.md describes
the same frames for people. Frames are JSON objects tagged by their ``type`` field.

Client → server: :class:`Subscribe`, :class:`Unsubscribe`, :class:`Ping`, :class:`Pong`,
:class:`Auth`, :class:`Refresh`.
Server → client: :class:`Subscribed`, :class:`Unsubscribed`, :class:`Message`,
:class:`Ping`, :class:`Pong`, :class:`Authenticated`, :class:`Error`, and close codes
from :class:`CloseCode`.

The Redis envelope, :class:`Publication`, is here too: it is what every broker hands a
gateway, packed as a msgpack array by :func:`encode_publication` (and, inside Redis, by
the publish script, field for field in the same order).

Evolution rules: new fields get defaults; existing fields never change type.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any

import msgspec

__all__ = [
    "EPOCH_PATTERN",
    "MAX_OFFSET",
    "RECONNECT_CLOSE_CODES",
    "Auth",
    "Authenticated",
    "ClientMessage",
    "CloseCode",
    "Error",
    "ErrorCode",
    "Message",
    "Ping",
    "Pong",
    "Position",
    "Publication",
    "Refresh",
    "ServerMessage",
    "Subscribe",
    "Subscribed",
    "Unsubscribe",
    "Unsubscribed",
    "decode_client",
    "decode_publication",
    "decode_server",
    "encode",
    "encode_publication",
]


EPOCH_PATTERN = r"^[0-9A-Za-z_-]{0,64}\Z"
"""What an epoch a client sends back may look like. Gateways make 8 hex digits; the
check is strict (``\\Z``: ``$`` would let a final newline through) because an epoch is
echoed into SSE ``id:`` lines and logs, where a newline or colon forges events."""

MAX_OFFSET = 2**63 - 1
"""The largest offset (a Redis stream ID's first part is a 64-bit integer)."""


class Position(msgspec.Struct, frozen=True):
    """A place in a channel's stream: the offset of a message and the stream's epoch.

    Offsets start at 1 and grow by one with every publish (0: before the first). The
    epoch names one unbroken history; it changes only when the channel's history was
    lost, and then offsets from the old epoch mean nothing. A decoded position is
    checked: offset 0 to :data:`MAX_OFFSET`, epoch matching :data:`EPOCH_PATTERN`.
    """

    offset: Annotated[int, msgspec.Meta(ge=0, le=MAX_OFFSET)]
    epoch: Annotated[str, msgspec.Meta(pattern=EPOCH_PATTERN)]


class Publication(msgspec.Struct, array_like=True, frozen=True):
    """One published message as it travels through the broker (msgpack on Redis).

    ``data`` is the published value already encoded as JSON text; no gateway decodes it.
    ``time`` is the publisher's wall clock at publish, in seconds since the epoch.
    On the wire it is the msgpack array ``[offset, epoch, data, time]``; the publish
    script in Redis packs exactly that, so fields are only ever appended.
    """

    offset: int
    epoch: str
    data: str
    time: float


class _Frame(msgspec.Struct, tag_field="type", tag=str.lower, omit_defaults=True):
    """Base of every frame; the lower-cased class name is the ``type`` tag."""


# --- client → server -------------------------------------------------------------------


class Subscribe(_Frame):
    """Start receiving a channel. With ``since``, first replay what came after it.

    ``max_rate`` (latest-value channels only) asks for at most that many messages per
    second: the gateway sends this subscriber the newest value when the interval allows
    and drops the ones in between, for this subscriber alone.
    """

    channel: str
    since: Position | None = None
    max_rate: Annotated[float, msgspec.Meta(gt=0)] | None = None


class Unsubscribe(_Frame):
    """Stop receiving a channel."""

    channel: str


class Ping(_Frame):
    """Heartbeat. Either side may send it; the other answers with :class:`Pong`."""

    id: int | None = None


class Pong(_Frame):
    """Answer to :class:`Ping`, echoing its ``id``. Also counts as activity."""

    id: int | None = None


class Auth(_Frame):
    """Present a connection token (a JWT): channels that need one become readable.

    Answered with :class:`Authenticated`; a refused token closes the connection (4003
    expired, 4501 otherwise). The token never appears in a URL, so never in access logs.
    """

    token: str


class Refresh(_Frame):
    """Replace the connection's token with a fresh one of the same user before it expires.

    Answered with :class:`Authenticated`. Subscriptions the new token no longer covers
    end with ``unsubscribed`` (reason ``permission_denied``).
    """

    token: str


ClientMessage = Subscribe | Unsubscribe | Ping | Pong | Auth | Refresh


# --- server → client -------------------------------------------------------------------


class Subscribed(_Frame, kw_only=True):
    """A subscription is live.

    Every ``message`` of the channel that follows has an offset above ``offset``, in
    order; ``epoch`` names the stream. A fresh subscribe is told the channel's current
    position (a latest-value channel's newest message follows at once). A subscribe
    with ``since`` is answered with ``recovered``: true means every missed message
    follows this frame (``replayed`` of them), then live ones; false means the history
    no longer reaches back, or the epoch changed, and the client must reload its state.
    """

    channel: str
    offset: int
    epoch: str
    recovered: bool | None = None
    replayed: int | None = None


class Unsubscribed(_Frame, kw_only=True):
    """A subscription ended, at the client's request or the server's (see ``reason``)."""

    channel: str
    reason: str | None = None


class Message(_Frame, kw_only=True):
    """One published message. ``data`` is the published JSON value, untouched."""

    channel: str
    offset: int
    data: msgspec.Raw


class ErrorCode(enum.StrEnum):
    """Codes of :class:`Error` frames. The connection stays open after each."""

    BAD_FRAME = "bad_frame"
    """Not JSON, not an object, unknown ``type``, or a field of the wrong type."""
    INVALID_CHANNEL = "invalid_channel"
    """The channel name breaks the naming rules (docs/protocol.md)."""
    TOO_MANY_SUBSCRIPTIONS = "too_many_subscriptions"
    """The connection holds as many subscriptions as it may."""
    ALREADY_SUBSCRIBED = "already_subscribed"
    NOT_SUBSCRIBED = "not_subscribed"
    UNAVAILABLE = "unavailable"
    """The broker cannot be reached right now; try again."""
    PERMISSION_DENIED = "permission_denied"
    """The connection's token does not cover this channel."""
    UNAUTHORIZED = "unauthorized"
    """This channel needs a token, and the connection has presented none: send ``auth``."""
    MAX_RATE_UNSUPPORTED = "max_rate_unsupported"
    """``max_rate`` was asked for on a channel that is not latest-value (every message of
    an ordered channel is delivered)."""


class Error(_Frame, kw_only=True):
    """Something the client sent could not be served; ``channel`` names the one concerned."""

    code: str
    message: str
    channel: str | None = None


class Authenticated(_Frame, kw_only=True):
    """A token was accepted: the connection acts for ``user`` until ``expires`` (Unix
    seconds), unless a :class:`Refresh` comes first."""

    user: str
    expires: int | None = None


ServerMessage = Subscribed | Unsubscribed | Message | Ping | Pong | Authenticated | Error


# --- close codes -----------------------------------------------------------------------


class CloseCode(enum.IntEnum):
    """WebSocket close codes the gateway uses.

    Codes below 4500 (and 1001, 1012, 1013) mean: reconnect, with backoff and jitter,
    and resume from the last offset. Codes 4500 and up are terminal: reconnecting with
    the same request would fail the same way.
    """

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    """A frame that breaks RFC 6455 (unmasked, a reserved bit, a fragmented control frame)."""
    ABNORMAL_CLOSURE = 1006
    """Never sent: the connection dropped without a close frame (RFC 6455, 7.1.5)."""
    INVALID_DATA = 1007
    """A close frame whose reason is not UTF-8."""
    POLICY_VIOLATION = 1008
    """The upgrade was refused where the server cannot answer with an HTTP status."""
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    """The gateway is draining (deploy, scale-in): reconnect, to any gateway."""
    TRY_AGAIN_LATER = 1013
    HEARTBEAT_TIMEOUT = 4000
    """Nothing arrived from the client within the heartbeat timeout."""
    SLOW_CONSUMER = 4001
    """The client read too slowly and its outbox filled: reconnect and resume."""
    CONNECTION_AGED = 4002
    """The connection reached its maximum age: reconnect so load rebalances."""
    TOKEN_EXPIRED = 4003
    """The connection's token expired (or was expired when presented): fetch a new token,
    reconnect."""
    RATE_LIMITED = 4029
    """The client sent frames faster than allowed."""
    UNAUTHORIZED = 4501
    """The connection's token was refused (bad signature, algorithm, audience, issuer or
    claims), or it stayed anonymous with no subscription past the authentication deadline."""
    PROTOCOL_VIOLATION = 4502
    """The client kept sending frames that are not the protocol."""


RECONNECT_CLOSE_CODES = frozenset(
    {
        CloseCode.GOING_AWAY,
        CloseCode.ABNORMAL_CLOSURE,
        CloseCode.INTERNAL_ERROR,
        CloseCode.SERVICE_RESTART,
        CloseCode.TRY_AGAIN_LATER,
    }
    | set(range(4000, 4500))
)
"""Close codes after which a client reconnects and resumes (the rest are terminal)."""


# --- codecs ------------------------------------------------------------------------------

_encoder = msgspec.json.Encoder()
_client_decoder = msgspec.json.Decoder(ClientMessage)
_server_decoder = msgspec.json.Decoder(ServerMessage)
_publication_encoder = msgspec.msgpack.Encoder()
_publication_decoder = msgspec.msgpack.Decoder(Publication)


def encode(frame: Any) -> bytes:
    """Encode one frame (any Struct above) to JSON bytes."""
    return _encoder.encode(frame)


def decode_client(data: bytes | bytearray | memoryview | str) -> ClientMessage:
    """Decode a client frame.

    Raises:
        msgspec.DecodeError: not JSON, or not a valid client frame (its message says why).
        UnicodeDecodeError: a string in it is not valid UTF-8.
    """
    frame: ClientMessage = _client_decoder.decode(data)
    return frame


def decode_server(data: bytes | str) -> ServerMessage:
    """Decode a server frame (used by the SDKs and tests)."""
    frame: ServerMessage = _server_decoder.decode(data)
    return frame


def encode_publication(publication: Publication) -> bytes:
    """The msgpack form of a publication, as the publish script sends it over pub/sub."""
    return _publication_encoder.encode(publication)


def decode_publication(data: bytes) -> Publication:
    """Decode a publication from pub/sub.

    Raises:
        msgspec.DecodeError: not a msgpack ``[offset, epoch, data, time]`` array.
    """
    publication: Publication = _publication_decoder.decode(data)
    return publication
