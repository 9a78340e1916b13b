"""The gateway's reader of client frames (gateway/transports/wsframes.py) against frames
that websockets' own client side serializes, cut into reads at every place, and against
each kind of frame RFC 6455 forbids.

Live gateways run the same reader in tests/test_bad_input.py, tests/test_compression.py
and the fuzzing in tests/security/test_fuzz.py.
"""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode

from gateway.deflate import InflateError, inflate
from gateway.transports.wsframes import (
    BINARY,
    CLOSE,
    CONT,
    PING,
    PONG,
    TEXT,
    Frame,
    Partial,
    Violation,
    close_frame,
    parse_close,
    split,
)
from tests.rawws import frame

LIMIT = 70_000


def client_bytes(frames: list[Frame]) -> bytes:
    """``frames`` as a client sends them, masked, by websockets' serializer."""
    return b"".join(
        WsFrame(Opcode(f.opcode), f.data, f.fin, f.rsv1).serialize(mask=True) for f in frames
    )


def read_in_pieces(data: bytes, cuts: list[int], *, deflate: bool = False) -> list[Frame]:
    """Feed ``data`` to :func:`split` in reads cut at ``cuts``, as the transport does."""
    frames: list[Frame] = []
    pending = b""
    start = 0
    for stop in [*sorted(cuts), len(data)]:
        got, pending = split(pending + data[start:stop], LIMIT, deflate=deflate)
        frames += got
        start = stop
    assert pending == b"", "bytes of no frame left over"
    return frames


data_frames = st.builds(
    Frame,
    st.sampled_from([TEXT, BINARY]),
    st.just(True),
    st.just(False),
    st.binary(max_size=300) | st.sampled_from([b"x" * 125, b"y" * 126, b"z" * 65_536]),
)
control_frames = st.builds(
    Frame, st.sampled_from([PING, PONG]), st.just(True), st.just(False), st.binary(max_size=125)
)


@settings(max_examples=150, deadline=None)
@given(st.lists(data_frames | control_frames, min_size=1, max_size=6), st.data())
def test_any_frames_in_any_reads_come_out_whole_and_in_order(frames, data):
    raw = client_bytes(frames)
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=8))
    assert read_in_pieces(raw, cuts) == frames


def test_a_frame_arriving_byte_by_byte_is_kept_until_whole_and_not_copied():
    raw = frame(TEXT, b'{"type":"subscribe","channel":"news"}' * 5)  # a 16-bit length
    pending = bytearray()  # what the transport keeps, appended in place
    for i in range(len(raw) - 1):
        pending += raw[i : i + 1]
        got, rest = split(pending, LIMIT)
        assert got == [] and rest is pending
    pending += raw[-1:]
    got, rest = split(pending, LIMIT)
    assert [f.data for f in got] == [b'{"type":"subscribe","channel":"news"}' * 5]
    assert rest == b""


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (frame(TEXT, b"{}")[:1] + bytes([2]) + b"{}", 1002),  # not masked
        (frame(0x3, b"{}"), 1002),  # a reserved opcode
        (bytes([0xA1]) + frame(TEXT, b"{}")[1:], 1002),  # RSV2
        (frame(TEXT, b"{}", rsv1=True), 1002),  # RSV1 with no extension negotiated
        (frame(PING, b"x" * 126), 1002),  # a control frame over 125 bytes
        (frame(PING, b"", fin=False), 1002),  # a fragmented control frame
        (frame(BINARY, b"x" * (LIMIT + 1))[:14], 1009),  # refused from its header alone
    ],
)
def test_frames_rfc_6455_forbids_are_refused_with_their_code(raw, code):
    with pytest.raises(Violation) as refused:
        split(raw, LIMIT)
    assert refused.value.code == code


def test_rsv1_marks_only_the_first_frame_of_a_message_when_deflate_was_negotiated():
    assert split(frame(TEXT, b"{}", rsv1=True), LIMIT, deflate=True)[0][0].rsv1
    for opcode in (CONT, PING):
        with pytest.raises(Violation):
            split(frame(opcode, b"", rsv1=True), LIMIT, deflate=True)


def test_a_message_in_fragments_is_bounded_as_a_whole():
    partial = Partial(Frame(TEXT, False, False, b"x" * 40_000))
    partial.add(b"y" * 30_000, LIMIT)
    with pytest.raises(Violation) as refused:
        partial.add(b"z" * 1_000, LIMIT)
    assert refused.value.code == 1009


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"", None),
        ((1000).to_bytes(2, "big") + b"bye", None),
        ((4000).to_bytes(2, "big"), None),
        (b"\x03", 1002),  # too short for a code
        ((1005).to_bytes(2, "big"), 1002),  # a code that may not be sent
        ((999).to_bytes(2, "big"), 1002),
        ((1000).to_bytes(2, "big") + b"\xff\xfe", 1007),  # a reason that is not UTF-8
    ],
)
def test_close_frames_are_checked(payload, code):
    if code is None:
        parse_close(payload)
        return
    with pytest.raises(Violation) as refused:
        parse_close(payload)
    assert refused.value.code == code


def test_a_close_frame_keeps_its_reason_valid_utf8_within_125_bytes():
    raw = close_frame(4001, "é" * 100)
    assert raw[0] == 0x80 | CLOSE and raw[1] == len(raw) - 2 <= 125
    assert int.from_bytes(raw[2:4], "big") == 4001
    assert raw[4:].decode() == "é" * 61


def test_compressed_messages_inflate_within_the_limit():
    message = b'{"type":"subscribe","channel":"metrics.host"}' * 20
    squeezer = zlib.compressobj(wbits=-15)
    body = squeezer.compress(message) + squeezer.flush(zlib.Z_SYNC_FLUSH)
    assert inflate(body[:-4], LIMIT) == message  # the sender drops the empty block
    with pytest.raises(InflateError) as refused:
        inflate(body[:-4], len(message) - 1)
    assert refused.value.code == 1009
    with pytest.raises(InflateError) as refused:
        inflate(b"\xff\xff\xff", LIMIT)
    assert refused.value.code == 1002
