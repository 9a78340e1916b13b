"""Real Redis topologies for tests: a Redis Cluster, and a Sentinel-managed primary.

Every process is a ``redis-server`` child on a free 127.0.0.1 port, keeping nothing on
disk. The cluster is assembled with plain commands (``CLUSTER ADDSLOTSRANGE``, ``MEET``,
``REPLICATE``), so no ``redis-cli`` is needed; sentinels are ``redis-server <conf>
--sentinel``.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
from redis.crc import key_slot

from shared.localredis import LocalRedis, find_redis_server, free_port

__all__ = ["LocalCluster", "LocalSentinels", "redis_version", "wait_for"]

SLOTS = 16384


def redis_version() -> tuple[int, ...]:
    """Version of the redis-server binary the tests would start (0,) when there is none."""
    binary = find_redis_server()
    if binary is None:
        return (0,)
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    for word in out.split():
        if word.startswith("v="):
            return tuple(int(x) for x in word[2:].split("."))
    return (0,)


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    """Poll ``predicate`` (errors count as false) until true, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError, OSError):
            if predicate():
                return
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def _client(node: LocalRedis) -> redis.Redis:
    return redis.Redis(port=node.port, socket_timeout=5, socket_connect_timeout=2)


class LocalCluster:
    """A Redis Cluster of ``primaries`` shards, each with ``replicas`` replicas."""

    def __init__(self, primaries: int = 3, replicas: int = 0, node_timeout_ms: int = 1000) -> None:
        args = (
            "--cluster-enabled",
            "yes",
            "--cluster-node-timeout",
            str(node_timeout_ms),
            "--repl-diskless-sync-delay",
            "0",
            # CLUSTER SLOTS lists a replica once its offset moved: ping replicas each second.
            "--repl-ping-replica-period",
            "1",
            # Any replica may take over, however long it was cut off (tests kill freely).
            "--cluster-replica-validity-factor",
            "0",
        )
        count = primaries * (1 + replicas)
        self.nodes = [LocalRedis(args=args) for _ in range(count)]
        # Explicit bus ports: the default (port + 10000) may be taken or out of range.
        self.bus_ports = [free_port() for _ in self.nodes]
        for node, bus_port in zip(self.nodes, self.bus_ports, strict=True):
            node.args += (
                "--cluster-config-file",
                str(node.dir / "nodes.conf"),
                "--cluster-port",
                str(bus_port),
            )
        self.primaries = self.nodes[:primaries]
        self.replicas = replicas

    @property
    def url(self) -> str:
        """The seed URL: every node, so discovery works while any of them lives."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self, timeout: float = 30.0) -> LocalCluster:
        for node in self.nodes:
            node.start()
        count = len(self.primaries)
        ids = {}
        for i, node in enumerate(self.nodes):
            with _client(node) as c:
                c.execute_command("CLUSTER", "SET-CONFIG-EPOCH", i + 1)
                ids[node.port] = c.execute_command("CLUSTER", "MYID").decode()
        for i, node in enumerate(self.primaries):
            first, last = SLOTS * i // count, SLOTS * (i + 1) // count - 1
            with _client(node) as c:
                c.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        with _client(self.nodes[0]) as c:
            for node, bus_port in zip(self.nodes[1:], self.bus_ports[1:], strict=True):
                c.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port, bus_port)
        wait_for(self._all_known, timeout, "every node to know every other")
        for i, node in enumerate(self.nodes[count:]):
            primary = self.primaries[i % count]
            with _client(node) as c:
                c.execute_command("CLUSTER", "REPLICATE", ids[primary.port])
        wait_for(self._converged, timeout, "every node to see every shard with its replicas")
        return self

    def _converged(self) -> bool:
        if not self.healthy():
            return False
        for node in self.nodes:
            with _client(node) as c:
                ranges = c.execute_command("CLUSTER", "SLOTS")
            if len(ranges) != len(self.primaries):
                return False
            if any(len(r) - 3 != self.replicas for r in ranges):
                return False
        return True

    def _all_known(self) -> bool:
        for node in self.nodes:
            with _client(node) as c:
                lines = c.execute_command("CLUSTER", "NODES").decode().strip().splitlines()
            if len(lines) != len(self.nodes) or any("handshake" in ln for ln in lines):
                return False
        return True

    def alive(self) -> list[LocalRedis]:
        return [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]

    def healthy(self) -> bool:
        """Every live node says cluster_state:ok, and every live replica is in sync."""
        for node in self.alive():
            with _client(node) as c:
                if c.cluster("INFO")["cluster_state"] != "ok":
                    return False
                info = c.info("replication")
                if info["role"] == "slave" and info.get("master_link_status") != "up":
                    return False
        return True

    def owner(self, channel: str, prefix: str = "rc") -> LocalRedis:
        """The live primary that serves ``channel``'s slot, as that primary itself says."""
        slot = key_slot(f"{prefix}:{{{channel}}}".encode())
        for node in self.alive():
            with _client(node) as c:
                if c.info("replication")["role"] != "master":
                    continue
                for first, last, primary, *_ in c.execute_command("CLUSTER", "SLOTS"):
                    if first <= slot <= last and int(primary[1]) == node.port:
                        return node
        raise LookupError(f"no live primary serves {channel}")

    def replica_of(self, primary: LocalRedis) -> LocalRedis:
        with _client(primary) as c:
            primary_id = c.execute_command("CLUSTER", "MYID").decode()
        for node in self.alive():
            with _client(node) as c:
                line = next(
                    ln
                    for ln in c.execute_command("CLUSTER", "NODES").decode().splitlines()
                    if "myself" in ln
                )
            if line.split()[3] == primary_id:
                return node
        raise LookupError(f"no replica of :{primary.port}")

    def move_slot(self, channel: str, to: LocalRedis, prefix: str = "rc") -> None:
        """Migrate ``channel``'s slot, keys and all, to primary ``to`` (a live reshard)."""
        slot = key_slot(f"{prefix}:{{{channel}}}".encode())
        source = self.owner(channel, prefix)
        with _client(source) as src, _client(to) as dst:
            src_id = src.execute_command("CLUSTER", "MYID").decode()
            dst_id = dst.execute_command("CLUSTER", "MYID").decode()
            dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
            while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
                src.execute_command("MIGRATE", "127.0.0.1", to.port, "", 0, 5000, "KEYS", *keys)
            dst.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)

    def channels_per_shard(self, per_shard: int, stem: str, prefix: str = "rc") -> list[str]:
        """``per_shard`` channel names ``<stem>N`` served by each primary, per the slot map."""
        with _client(self.alive()[0]) as c:
            ranges = c.execute_command("CLUSTER", "SLOTS")
        found: dict[int, list[str]] = {int(r[2][1]): [] for r in ranges}
        n = 0
        while any(len(v) < per_shard for v in found.values()):
            name = f"{stem}{n}"
            slot = key_slot(f"{prefix}:{{{name}}}".encode())
            port = next(int(r[2][1]) for r in ranges if r[0] <= slot <= r[1])
            if len(found[port]) < per_shard:
                found[port].append(name)
            n += 1
        return [name for names in found.values() for name in names]

    def close(self) -> None:
        for node in self.nodes:
            node.close()


class LocalSentinels:
    """A primary, ``replicas`` replicas and ``sentinels`` sentinels watching ``service``."""

    def __init__(self, replicas: int = 1, sentinels: int = 3, service: str = "relaycast") -> None:
        self.service = service
        # A replica syncs at once, not after the default 5 s wait for others to join the
        # transfer (after a failover, from the new primary too).
        sync = ("--repl-diskless-sync-delay", "0")
        self.primary = LocalRedis(args=sync)
        self.replicas = [
            LocalRedis(args=(*sync, "--replicaof", "127.0.0.1", str(self.primary.port)))
            for _ in range(replicas)
        ]
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self.dir = Path(tempfile.mkdtemp(prefix="relaycast-sentinel-"))
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def nodes(self) -> list[LocalRedis]:
        return [self.primary, *self.replicas]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{self.service}"

    def start(self, timeout: float = 30.0) -> LocalSentinels:
        for node in self.nodes:
            node.start()
        binary = find_redis_server()
        assert binary is not None
        quorum = len(self.sentinel_ports) // 2 + 1
        for port in self.sentinel_ports:
            conf = self.dir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {self.dir}\n"
                f"sentinel monitor {self.service} 127.0.0.1 {self.primary.port} {quorum}\n"
                f"sentinel down-after-milliseconds {self.service} 1000\n"
                f"sentinel failover-timeout {self.service} 10000\n"
            )
            log = open(self.dir / f"sentinel-{port}.log", "ab")  # noqa: SIM115
            self.sentinels.append(
                subprocess.Popen(
                    [binary, str(conf), "--sentinel"], stdout=log, stderr=subprocess.STDOUT
                )
            )
            log.close()
        wait_for(self.settled, timeout, "sentinels to know the replicas and each other")
        return self

    def sentinel_info(self, port: int) -> dict[str, Any]:
        with redis.Redis(port=port, socket_timeout=2, decode_responses=True) as c:
            reply = c.execute_command("SENTINEL", "MASTER", self.service)
        if isinstance(reply, dict):
            return reply
        return dict(zip(reply[::2], reply[1::2], strict=True))

    def settled(self) -> bool:
        """Every sentinel sees every replica and every other sentinel."""
        for port in self.sentinel_ports:
            info = self.sentinel_info(port)
            if int(info["num-slaves"]) != len(self.replicas):
                return False
            if int(info["num-other-sentinels"]) != len(self.sentinel_ports) - 1:
                return False
        for node in self.replicas:
            with _client(node) as c:
                if c.info("replication").get("master_link_status") != "up":
                    return False
        return True

    def current_primary_port(self) -> int:
        """The primary port a majority of sentinels report."""
        votes: dict[int, int] = {}
        for port in self.sentinel_ports:
            with contextlib.suppress(redis.RedisError, OSError):
                info = self.sentinel_info(port)
                votes[int(info["port"])] = votes.get(int(info["port"]), 0) + 1
        return max(votes, key=lambda p: votes[p])

    def close(self) -> None:
        for proc in self.sentinels:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
        for node in self.nodes:
            node.close()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.dir)
