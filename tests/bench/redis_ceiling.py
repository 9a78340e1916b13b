"""How many deliveries per second one Redis pushes into gateways, with no gateway in the way.

The other scenarios measure whole gateways; on a small machine the gateway's Python is
the limit long before Redis is. This one takes the gateway out: ``redis-benchmark`` runs
Relaycast's own publish script (the same Lua, keys and arguments as a publisher) as fast
as Redis takes it, while K raw connections subscribe to the channel, as K gateways
would. Each K in ``--subscribers`` is a step on a fresh private Redis. It reports
publishes and deliveries per second and, steadier on a shared machine, the Redis CPU
each costs (``INFO cpu``), from which the cost of one delivery into a gateway follows.

With two or more CPUs, Redis gets the gateway's CPU and ``redis-benchmark`` and the
subscribers the others.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import socket
import subprocess
import time
from multiprocessing.connection import Connection
from typing import Any

import redis

from shared.broker.redis_scripts import PUBLISH_LUA, channel_keys, publish_args
from shared.channels import Namespaces
from shared.localredis import LocalRedis
from tests.bench import report
from tests.bench.flow import Params
from tests.bench.rig import Rig, _mp

__all__ = ["redis_ceiling"]

CHANNEL = "bench.redis"
CHANNELS = 100
"""Channels each subscriber holds; the publishes all go to the first (redis-benchmark
draws each random placeholder on its own, so the keys of one call could not agree)."""
PIPELINE = 16
"""Commands each redis-benchmark connection keeps in flight."""
HISTORY = Namespaces.from_json('[{"pattern": "bench.*", "history_size": 1000, "history_ttl": 600}]')
"""The channel keeps history, as ordered channels do (1,000 messages, 10 minutes)."""
_MARK = b"$7\r\nmessage\r\n"


def _subscribe(port: int, count: int, cpus: list[int] | None, pipe: Connection) -> None:
    """``count`` connections, each subscribed to every channel; count deliveries until told."""
    if cpus:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, cpus)
    sel = selectors.DefaultSelector()
    names = [channel_keys("rc", f"{CHANNEL}.{i}" if i else CHANNEL)[2] for i in range(CHANNELS)]
    command = b"*%d\r\n$9\r\nSUBSCRIBE\r\n" % (len(names) + 1) + b"".join(
        b"$%d\r\n%s\r\n" % (len(n), n.encode()) for n in names
    )
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(command)
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ, [b""])
    pipe.send("ready")
    delivered = 0
    while not pipe.poll():
        for key, _ in sel.select(0.1):
            conn = key.fileobj
            assert isinstance(conn, socket.socket)
            tail = key.data[0] + conn.recv(1 << 20)
            delivered += tail.count(_MARK)
            key.data[0] = tail[-(len(_MARK) - 1) :]
    pipe.send(delivered)


def _cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _step(rig: Rig, params: Params, subscribers: int) -> dict[str, Any]:
    """One K: fresh Redis (unless the rig was given one), K subscribers, the publishes."""
    server = None if rig.options.redis_url else LocalRedis().start()
    try:
        if server is not None and server.proc is not None and rig.gateway_cpus:
            os.sched_setaffinity(server.proc.pid, rig.gateway_cpus)
        url = server.url if server is not None else rig.redis_url
        client = redis.Redis.from_url(url)
        host = client.connection_pool.connection_kwargs.get("host", "127.0.0.1")
        port = int(client.connection_pool.connection_kwargs.get("port", 6379))
        sha = client.script_load(PUBLISH_LUA)
        meta, stream, channel = channel_keys("rc", CHANNEL)
        options = HISTORY(CHANNEL)
        data = "x" * params.size
        parent, child = _mp.Pipe()
        reader = _mp.Process(
            target=_subscribe, args=(port, subscribers, rig.load_cpus, child), daemon=True
        )
        reader.start()
        rig.publishers.append(reader)
        parent.recv()
        while subscribers and int(client.pubsub_numsub(channel)[0][1]) < subscribers:
            time.sleep(0.01)
        cpu0, t0 = _cpu(client), time.monotonic()
        args = [
            "redis-benchmark", "-h", str(host), "-p", str(port), "-q",
            "-n", str(params.publishes), "-c", str(params.clients), "-P", str(PIPELINE),
            "EVALSHA", sha, "3", meta, stream, channel,
            *(str(a) for a in publish_args(data, options, time.time(), "e0")),
        ]  # fmt: skip
        done = subprocess.run(args, capture_output=True, text=True, timeout=300)
        if done.returncode:
            raise RuntimeError(f"redis-benchmark failed: {done.stdout[-300:]}{done.stderr}")
        elapsed, cpu = time.monotonic() - t0, _cpu(client) - cpu0
        time.sleep(0.5)  # let the subscribers read what is in flight
        parent.send("stop")
        delivered = int(parent.recv())
        reader.join(10)
        client.close()
    finally:
        if server is not None:
            server.close()
    return {
        "subscribers": subscribers,
        "publishes": params.publishes,
        "seconds": round(elapsed, 2),
        "publishes_per_s": round(params.publishes / elapsed),
        "deliveries": delivered,
        "deliveries_per_s": round(delivered / elapsed),
        "redis_cpu_share": round(cpu / elapsed, 2),
        "redis_us_per_publish": round(cpu / params.publishes * 1e6, 2),
    }


def redis_ceiling(rig: Rig, params: Params) -> dict[str, Any]:
    """Publishes and deliveries per second of one Redis, at each count of subscribers."""
    result: dict[str, Any] = {
        "scenario": "redis",
        "title": f"redis-benchmark runs the publish script {params.publishes:,} times"
        f" ({params.size}-byte payloads, history kept; {params.clients} connections,"
        f" pipeline {PIPELINE}) while K connections subscribe, as K gateways would",
        "params": {k: v for k, v in vars(params).items() if k != "rates"},
        "machine": report.machine(rig.gateway_cpus, rig.load_cpus),
    }
    if shutil.which("redis-benchmark") is None:
        result["problems"] = ["needs redis-benchmark (Debian: apt-get install redis-tools)"]
        return result
    steps = [_step(rig, params, k) for k in params.subscribers]
    base = next((s for s in steps if s["subscribers"] == 0), None)
    for step in steps:
        if base is not None and step["subscribers"]:
            extra = step["redis_us_per_publish"] - base["redis_us_per_publish"]
            step["redis_us_per_delivery"] = round(extra / step["subscribers"], 3)
    result["redis_steps"] = steps
    result["problems"] = []
    return result
