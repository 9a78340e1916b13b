"""Which Redis a URL names: one server, a Redis Cluster, or a Sentinel-managed primary.

- ``redis://``, ``rediss://``, ``unix://``: one server, in redis-py's URL syntax.
- ``redis+cluster://[[user]:password@]host:port[,host:port...]``: seed nodes of a Redis
  Cluster. Any one that answers is enough; the rest of the cluster is discovered.
- ``redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db]``: the
  sentinels watching the primary named ``service``. The user and password are the data
  nodes'; sentinels that require a password of their own take ``?sentinel_password=``.

The same URL serves gateways (:func:`shared.broker.create_broker`) and publishers
(:mod:`publisher.publish`), which get their command clients from here.
"""

from __future__ import annotations

from typing import Any, Literal, cast
from urllib.parse import parse_qs, parse_qsl, quote, unquote, urlencode, urlsplit

import msgspec
import redis
import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster
import redis.asyncio.sentinel as aiosentinel
import redis.cluster
import redis.sentinel

from shared.broker.redis_scripts import PUBLISH_LUA, SHARDED_PUBLISH_LUA

__all__ = [
    "CLUSTER_SCHEME",
    "SENTINEL_SCHEME",
    "Address",
    "AsyncCommandClient",
    "AsyncSentinelClient",
    "BlockingCommandClient",
    "RedisTarget",
    "SentinelClient",
    "async_command_client",
    "async_primary_client",
    "async_sentinel",
    "blocking_command_client",
    "parse_redis_url",
    "redacted_url",
    "release_idle",
]

CLUSTER_SCHEME = "redis+cluster"
SENTINEL_SCHEME = "redis+sentinel"

Address = tuple[str, int]
AsyncCommandClient = aioredis.Redis | aiocluster.RedisCluster
BlockingCommandClient = redis.Redis | redis.cluster.RedisCluster


class RedisTarget(msgspec.Struct, frozen=True, kw_only=True):
    """A parsed broker URL.

    ``nodes`` are the cluster's seed nodes or the sentinels (empty for one server, whose
    ``url`` redis-py reads as it is).
    """

    kind: Literal["single", "cluster", "sentinel"]
    url: str
    nodes: tuple[Address, ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None

    @property
    def publish_script(self) -> str:
        """The publish script for this topology (sharded pub/sub on a cluster)."""
        return SHARDED_PUBLISH_LUA if self.kind == "cluster" else PUBLISH_LUA

    def node_url(self, address: Address) -> str:
        """A ``redis://`` URL of one data node, with this target's credentials."""
        auth = ""
        if self.password is not None:
            auth = f"{quote(self.username or '', safe='')}:{quote(self.password, safe='')}@"
        host = f"[{address[0]}]" if ":" in address[0] else address[0]
        return f"redis://{auth}{host}:{address[1]}/{self.db}"


def parse_redis_url(url: str) -> RedisTarget:
    """Parse a broker URL (see the module docstring).

    Raises:
        ValueError: the URL names no host, no service, or a database a cluster lacks.
    """
    scheme = url.partition("://")[0].lower()
    if scheme not in (CLUSTER_SCHEME, SENTINEL_SCHEME):
        return RedisTarget(kind="single", url=url)
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username = password = None
    if userinfo:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    nodes = tuple(_address(h) for h in hosts.split(",") if h)
    if not nodes:
        raise ValueError(f"{scheme}:// URL names no host: {url!r}")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    path = [p for p in parts.path.split("/") if p]
    if scheme == CLUSTER_SCHEME:
        if path not in ([], ["0"]):
            raise ValueError("Redis Cluster has only database 0; drop the path from the URL")
        return RedisTarget(
            kind="cluster", url=url, nodes=nodes, username=username, password=password
        )
    if not path or len(path) > 2:
        raise ValueError(f"a sentinel URL ends with /<service>[/<db>]: {url!r}")
    return RedisTarget(
        kind="sentinel",
        url=url,
        nodes=nodes,
        service=unquote(path[0]),
        db=int(path[1]) if len(path) == 2 else 0,
        username=username,
        password=password,
        sentinel_password=query.get("sentinel_password"),
    )


def _address(text: str) -> Address:
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit():
        raise ValueError(f"expected host:port, got {text!r}")
    return host.strip("[]"), int(port)


def _auth(target: RedisTarget) -> dict[str, Any]:
    return {"username": target.username, "password": target.password}


def _sentinel_kwargs(target: RedisTarget, options: dict[str, Any]) -> dict[str, Any]:
    kwargs = {k: v for k, v in options.items() if k.startswith("socket_")}
    if target.sentinel_password is not None:
        kwargs["password"] = target.sentinel_password
    return kwargs


class AsyncSentinelClient(aioredis.Redis):
    """A client of the current primary that also closes its sentinel connections."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        manager = getattr(self.connection_pool, "sentinel_manager", None)
        for sentinel in getattr(manager, "sentinels", ()):
            await sentinel.aclose()


class SentinelClient(redis.Redis):
    """The blocking twin of :class:`AsyncSentinelClient`."""

    def close(self) -> None:
        super().close()
        manager = getattr(self.connection_pool, "sentinel_manager", None)
        for sentinel in getattr(manager, "sentinels", ()):
            sentinel.close()


def async_sentinel(target: RedisTarget, **options: Any) -> aiosentinel.Sentinel:
    """The sentinels of ``target``; ``options`` also reach the data nodes' connections."""
    return aiosentinel.Sentinel(  # type: ignore[no-untyped-call]
        list(target.nodes), sentinel_kwargs=_sentinel_kwargs(target, options), **options
    )


def async_primary_client(
    sentinel: aiosentinel.Sentinel, target: RedisTarget, **options: Any
) -> AsyncSentinelClient:
    """A client of whichever server ``sentinel`` names the primary, found per connection."""
    client = sentinel.master_for(
        target.service, redis_class=AsyncSentinelClient, db=target.db, **_auth(target), **options
    )
    return cast(AsyncSentinelClient, client)


def async_command_client(target: RedisTarget, **options: Any) -> AsyncCommandClient:
    """An asyncio command client for ``target``; ``options`` are redis-py connection options.

    A cluster client follows MOVED and failovers itself; a sentinel client asks the
    sentinels for the primary on every new connection.
    """
    if target.kind == "cluster":
        nodes = [aiocluster.ClusterNode(h, p) for h, p in target.nodes]
        return aiocluster.RedisCluster(startup_nodes=nodes, **_auth(target), **options)
    if target.kind == "sentinel":
        return async_primary_client(async_sentinel(target, **options), target)
    return aioredis.Redis.from_url(target.url, **options)


def blocking_command_client(target: RedisTarget, **options: Any) -> BlockingCommandClient:
    """The blocking twin of :func:`async_command_client`."""
    if target.kind == "cluster":
        nodes = [
            redis.cluster.ClusterNode(h, p)  # type: ignore[no-untyped-call]
            for h, p in target.nodes
        ]
        return redis.cluster.RedisCluster(startup_nodes=nodes, **_auth(target), **options)
    if target.kind == "sentinel":
        sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            list(target.nodes), sentinel_kwargs=_sentinel_kwargs(target, options), **options
        )
        client = sentinel.master_for(  # type: ignore[no-untyped-call]
            target.service, redis_class=SentinelClient, db=target.db, **_auth(target)
        )
        return cast(SentinelClient, client)
    return redis.Redis.from_url(target.url, **options)


def redacted_url(url: str) -> str:
    """``url`` with every secret in it masked, for logs: the password before ``@`` and any
    query parameter whose name holds "password" (``?password=``, ``?sentinel_password=``).

    Works on any URL of the syntax above, and on ``memory://``.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    if "@" in rest:  # split at the last "@": a password may hold "@", "/" or "?" unquoted
        userinfo, rest = rest.rsplit("@", 1)
        user, colon, _ = userinfo.partition(":")
        rest = (f"{user}:***@" if colon else "***@") + rest
    rest, qmark, query = rest.partition("?")
    if qmark:
        pairs = [
            (name, "***" if "password" in name.lower() else value)
            for name, value in parse_qsl(query, keep_blank_values=True)
        ]
        query = urlencode(pairs, safe="*")
    return scheme + sep + rest + qmark + query


async def release_idle(client: AsyncCommandClient) -> None:
    """Close the connections of ``client`` that no command is using; they reopen when
    needed. A pool grows to as many connections as commands ran at once and would keep
    them all for good (each one a Redis client, counted against ``maxclients``)."""
    if isinstance(client, aiocluster.RedisCluster):
        for node in client.get_nodes():
            await node.disconnect_free_connections()
    else:
        await client.connection_pool.disconnect(inuse_connections=False)
