"""The cursor of the HTTP transports: every channel's position in one string, no I/O."""

from __future__ import annotations

import pytest

from gateway.frames import FrameKind, OutFrame, control
from gateway.transports.cursor import Cursor, CursorError
from shared.protocol import Ping, Position, Subscribed


def message(channel: str, offset: int) -> OutFrame:
    return OutFrame(FrameKind.MESSAGE, b"{}", channel, offset)


class TestParse:
    def test_empty_text_means_no_positions(self):
        cursor = Cursor.parse(["a", "b"], "")
        assert cursor.positions == [None, None]
        assert str(cursor) == ""

    def test_entries_follow_the_channels_in_order(self):
        cursor = Cursor.parse(["a", "b", "c"], "e1:5,,e3:0")
        assert cursor.positions == [Position(5, "e1"), None, Position(0, "e3")]
        assert str(cursor) == "e1:5,,e3:0"

    @pytest.mark.parametrize(
        ("text", "reason"),
        [
            ("e1:5", "1 entries for 2 channels"),
            ("e1:5,e2:6,e3:7", "3 entries for 2 channels"),
            ("e1:5,e2", "is not <epoch>:<offset>"),
            ("e1:5,:6", "is not <epoch>:<offset>"),
            ("e1:-1,e2:6", "is not <epoch>:<offset>"),
            ("e1:5,e2:x", "is not <epoch>:<offset>"),
        ],
    )
    def test_malformed_text_is_refused_with_the_reason(self, text, reason):
        with pytest.raises(CursorError, match=reason):
            Cursor.parse(["a", "b"], text)


class TestAdvance:
    def test_subscribed_sets_the_position_and_messages_move_it(self):
        cursor = Cursor(["a", "b"])
        cursor.advance(control(Subscribed(channel="b", offset=7, epoch="eb")))
        assert str(cursor) == ",eb:7"
        cursor.advance(message("b", 8))
        cursor.advance(control(Subscribed(channel="a", offset=0, epoch="ea")))
        cursor.advance(message("a", 1))
        assert str(cursor) == "ea:1,eb:8"

    def test_a_restarted_stream_takes_its_new_epoch(self):
        cursor = Cursor.parse(["a"], "old:40")
        notice = Subscribed(channel="a", offset=3, epoch="new", recovered=False)
        cursor.advance(control(notice))
        assert str(cursor) == "new:3"

    def test_frames_of_other_channels_and_control_frames_change_nothing(self):
        cursor = Cursor.parse(["a"], "e:1")
        cursor.advance(message("zzz", 9))
        cursor.advance(control(Subscribed(channel="zzz", offset=1, epoch="x")))
        cursor.advance(control(Ping()))
        assert str(cursor) == "e:1"
