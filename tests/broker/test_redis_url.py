"""Broker URLs: which topology each names, and what a mistyped one says."""

from __future__ import annotations

import logging

import pytest

from gateway.app import create_app
from shared.broker.redis_scripts import PUBLISH_LUA, SHARDED_PUBLISH_LUA
from shared.broker.redis_url import parse_redis_url, redacted_url
from shared.settings import Settings


def test_a_plain_redis_url_is_one_server_and_passed_on_as_is():
    for url in ("redis://:pw@10.0.0.5:6379/2", "rediss://h:6380/0", "unix:///run/redis.sock"):
        target = parse_redis_url(url)
        assert (target.kind, target.url, target.nodes) == ("single", url, ())
        assert target.publish_script == PUBLISH_LUA


def test_a_cluster_url_lists_seed_nodes_and_publishes_with_spublish():
    target = parse_redis_url("redis+cluster://app:s%40cret@10.0.0.1:7000,10.0.0.2:7001,[::1]:7002")
    assert target.kind == "cluster"
    assert target.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 7001), ("::1", 7002))
    assert (target.username, target.password) == ("app", "s@cret")
    assert target.publish_script == SHARDED_PUBLISH_LUA
    assert "redis.call('SPUBLISH'" in SHARDED_PUBLISH_LUA
    assert target.node_url(("::1", 7002)) == "redis://app:s%40cret@[::1]:7002/0"


def test_a_sentinel_url_names_sentinels_service_and_database():
    target = parse_redis_url(
        "redis+sentinel://:pw@s1:26379,s2:26380/orders/3?sentinel_password=sentinel-pw"
    )
    assert target.kind == "sentinel"
    assert target.nodes == (("s1", 26379), ("s2", 26380))
    assert (target.service, target.db) == ("orders", 3)
    assert (target.username, target.password) == (None, "pw")
    assert target.sentinel_password == "sentinel-pw"
    assert target.publish_script == PUBLISH_LUA
    assert target.node_url(("10.0.0.9", 6379)) == "redis://:pw@10.0.0.9:6379/3"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("redis+cluster://", "names no host"),
        ("redis+cluster://h:7000/1", "only database 0"),
        ("redis+cluster://h", "expected host:port"),
        ("redis+sentinel://s1:26379", "/<service>"),
        ("redis+sentinel://s1:26379/a/b/c", "/<service>"),
    ],
)
def test_a_malformed_url_is_refused_with_what_is_wrong(url, words):
    with pytest.raises(ValueError, match=words):
        parse_redis_url(url)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@10.0.0.5:6379/2", "redis://:***@10.0.0.5:6379/2"),
        ("redis://app:s%40cret@h:6379/0?password=again", "redis://app:***@h:6379/0?password=***"),
        ("redis://:p@ss/w?rd@h:6379/0", "redis://:***@h:6379/0"),
        (
            "redis+sentinel://:pw@s1:26379,s2:26380/orders?sentinel_password=sp&ssl=1",
            "redis+sentinel://:***@s1:26379,s2:26380/orders?sentinel_password=***&ssl=1",
        ),
        ("redis://h:6379/0?password=pw", "redis://h:6379/0?password=***"),
        ("redis+cluster://h1:7000,h2:7001", "redis+cluster://h1:7000,h2:7001"),
        ("memory://", "memory://"),
    ],
)
def test_a_url_is_logged_with_every_password_masked(url: str, shown: str) -> None:
    assert redacted_url(url) == shown


async def test_the_gateway_logs_its_broker_url_without_passwords(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = "redis+sentinel://:data-pw@127.0.0.1:1/orders?sentinel_password=sentinel-pw"
    settings = Settings.load({"redis_url": url, "mode": "development"})
    app = create_app(settings)
    with caplog.at_level(logging.INFO):
        async with app.router.lifespan_context(app):
            pass
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "broker redis+sentinel://:***@127.0.0.1:1/orders?sentinel_password=***" in logged
    assert "data-pw" not in logged
    assert "sentinel-pw" not in logged
