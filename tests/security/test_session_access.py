"""The Session's part in access control, fed and drained with no I/O: it asks its guard,
answers with frames, returns the hub's commands, and spends its frame bucket."""

from __future__ import annotations

import json

import pytest

from gateway.auth import Guard
from gateway.commands import Limits, RevokeCommand, SubscribeCommand
from gateway.session import Session, State
from shared.settings import Settings
from tests.security.conftest import NAMESPACES, Keys


@pytest.fixture(scope="module")
def guard(keys: Keys) -> Guard:
    values = {k: v for k, v in keys.settings(auth_timeout=10).items() if k != "namespaces"}
    return Guard.from_settings(Settings(namespaces=NAMESPACES, **values))


def frames(session: Session) -> list[dict]:
    return [json.loads(f.json) for f in session.take()]


def send(session: Session, **frame: object) -> object:
    return session.receive(json.dumps(frame), now=0.0)


def test_auth_then_subscribe_within_the_tokens_patterns(guard, keys):
    session = Session(Limits(), guard=guard)
    assert send(session, type="subscribe", channel="tasks.projA.1") is None
    assert frames(session)[0]["code"] == "unauthorized"
    assert session.state is State.ANONYMOUS
    assert send(session, type="auth", token=keys.token(sub="ann")) is None
    assert session.state is State.AUTHENTICATED
    assert frames(session)[0] == {
        "type": "authenticated",
        "user": "ann",
        "expires": session.grant.expires,
    }
    assert send(session, type="subscribe", channel="tasks.projA.1") == SubscribeCommand(
        "tasks.projA.1", None
    )
    assert send(session, type="subscribe", channel="tasks.projB.1") is None
    assert frames(session)[-1]["code"] == "permission_denied"


def test_a_narrower_refresh_revokes_what_it_no_longer_covers(guard, keys):
    session = Session(Limits(), guard=guard)
    send(session, type="auth", token=keys.token(channels=["tasks.*"]))
    send(session, type="subscribe", channel="tasks.projA.1")
    send(session, type="subscribe", channel="tasks.projB.1")
    session.take()
    command = send(session, type="refresh", token=keys.token(channels=["tasks.projA.*"]))
    assert command == RevokeCommand(("tasks.projB.1",))
    assert list(session.subs) == ["tasks.projA.1"]
    assert frames(session)[-1] == {
        "type": "unsubscribed",
        "channel": "tasks.projB.1",
        "reason": "permission_denied",
    }


def test_expiry_and_the_anonymous_deadline_close_the_session(guard, keys):
    session = Session(Limits(), guard=guard)
    send(session, type="auth", token=keys.token(ttl=60))
    session.check_credentials(wall=session.grant.expires, now=0.0)
    assert session.close_code is None
    session.check_credentials(wall=session.grant.expires + 1, now=0.0)
    assert session.close_code == 4003

    anonymous = Session(Limits(), guard=guard)
    anonymous.check_credentials(wall=0.0, now=9.0)
    assert anonymous.close_code is None
    anonymous.check_credentials(wall=0.0, now=11.0)
    assert anonymous.close_code == 4501


def test_frames_beyond_the_burst_close_with_4029_and_the_rate_refills():
    session = Session(Limits(frame_rate=2, frame_burst=3))
    for _ in range(3):
        session.receive('{"type":"ping"}', now=0.0)
    assert session.close_code is None
    session.receive('{"type":"ping"}', now=0.5)  # one more token after 0.5 s at 2/s
    assert session.close_code is None
    session.receive('{"type":"ping"}', now=0.5)
    assert session.close_code == 4029
    made_by_the_gateway = Session(Limits(frame_rate=2, frame_burst=1))
    for _ in range(5):  # no clock reading: frames the gateway made itself are not counted
        made_by_the_gateway.receive('{"type":"ping"}')
    assert made_by_the_gateway.close_code is None
