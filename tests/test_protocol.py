"""Every frame round-trips through its codec; bad frames fail with a readable reason."""

from __future__ import annotations

import msgspec
import pytest

from shared import protocol as p

CLIENT_FRAMES = [
    p.Subscribe(channel="a.b"),
    p.Subscribe(channel="a.b", since=p.Position(offset=5, epoch="e1")),
    p.Unsubscribe(channel="a.b"),
    p.Ping(),
    p.Ping(id=3),
    p.Pong(id=3),
    p.Auth(token="header.payload.signature"),
    p.Refresh(token="header.payload.signature"),
]
SERVER_FRAMES = [
    p.Subscribed(channel="c", offset=0, epoch="e"),
    p.Subscribed(channel="c", offset=9, epoch="e", recovered=False, replayed=0),
    p.Unsubscribed(channel="c", reason="done"),
    p.Message(channel="c", offset=1, data=msgspec.Raw(b'{"x":[1,2]}')),
    p.Ping(),
    p.Pong(id=1),
    p.Error(code="bad_frame", message="nope", channel="c"),
    p.Authenticated(user="alice", expires=1767225600),
]


@pytest.mark.parametrize("frame", CLIENT_FRAMES, ids=repr)
def test_client_frame_round_trips(frame):
    assert p.decode_client(p.encode(frame)) == frame


@pytest.mark.parametrize("frame", SERVER_FRAMES, ids=repr)
def test_server_frame_round_trips(frame):
    decoded = p.decode_server(p.encode(frame))
    if isinstance(frame, p.Message):
        assert bytes(decoded.data) == bytes(frame.data)
        assert (decoded.channel, decoded.offset) == (frame.channel, frame.offset)
    else:
        assert decoded == frame


def test_frames_are_tagged_by_lowercase_type_and_omit_defaults():
    assert p.encode(p.Subscribe(channel="x")) == b'{"type":"subscribe","channel":"x"}'
    assert p.encode(p.Ping()) == b'{"type":"ping"}'


def test_message_data_is_carried_untouched():
    raw = b'{"b":1,"a":[1.50,"\\u00e9"]}'
    encoded = p.encode(p.Message(channel="c", offset=2, data=msgspec.Raw(raw)))
    assert raw in encoded


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b'{"type":"shout"}', "Invalid value 'shout'"),
        (b'{"type":"subscribe"}', "missing required field `channel`"),
        (b'{"type":"subscribe","channel":1}', "Expected `str`, got `int`"),
        (b"[]", "Expected `object`, got `array`"),
        (b"{", "truncated"),
    ],
)
def test_bad_client_frames_say_why(data, words):
    with pytest.raises(msgspec.DecodeError, match=words):
        p.decode_client(data)


def test_server_frames_are_not_accepted_from_clients():
    with pytest.raises(msgspec.DecodeError):
        p.decode_client(p.encode(p.Message(channel="c", offset=1, data=msgspec.Raw(b"1"))))


def test_reconnect_codes_cover_drain_and_slow_but_not_terminal_ones():
    assert {1012, 4000, 4001, 4002} <= p.RECONNECT_CLOSE_CODES
    assert not {1000, 4501, 4502} & p.RECONNECT_CLOSE_CODES


PUBLICATIONS = [
    p.Publication(1, "e1", '{"x":1}', 1767225600.25),
    p.Publication(2**40, "", "", 0.0),
    p.Publication(7, "a3f9", '"caf\\u00e9 \u2603"', 1.5),
]


@pytest.mark.parametrize("publication", PUBLICATIONS, ids=repr)
def test_publication_round_trips_in_msgpack(publication):
    assert p.decode_publication(p.encode_publication(publication)) == publication


def test_publication_is_the_array_the_publish_script_packs():
    # The Lua publish script packs {offset, epoch, data, time}: a positional array.
    packed = p.encode_publication(p.Publication(3, "e", "{}", 2.5))
    assert msgspec.msgpack.decode(packed) == [3, "e", "{}", 2.5]
    assert p.decode_publication(msgspec.msgpack.encode([3, "e", "{}", 2.5])) == p.Publication(
        3, "e", "{}", 2.5
    )


def test_a_malformed_publication_fails_to_decode():
    with pytest.raises(msgspec.DecodeError):
        p.decode_publication(msgspec.msgpack.encode({"offset": 1}))


def test_a_negative_offset_is_not_a_position():
    frame = b'{"type":"subscribe","channel":"a","since":{"offset":-1,"epoch":"e"}}'
    with pytest.raises(msgspec.ValidationError, match=r">= 0 - at `\$.since.offset`"):
        p.decode_client(frame)
