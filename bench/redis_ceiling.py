"""How many deliveries per second one Redis can push into gateways, with no gateway in the way.

``relaycast bench`` measures whole gateways; on a small machine the gateway's Python is the
limit long before Redis is. This script takes the gateway out: ``redis-benchmark`` runs
Relaycast's own publish script (the same Lua, keys and arguments as a publisher) as fast as
Redis takes it, while K raw connections subscribe to every channel, as K gateways would.
It reports publishes and deliveries per second and, steadier on a shared machine, the Redis
CPU each costs, from which it derives the ceiling of one Redis core.

    .venv/bin/python bench/redis_ceiling.py --gateways 0,1,4,16 --publishes 200000

It starts a private redis-server on 127.0.0.1 (never the one on 6379) and stops it after.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import selectors
import shutil
import socket
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

import redis

from shared.broker.redis_scripts import PUBLISH_LUA
from shared.localredis import LocalRedis

CHANNELS = 100
"""Channels each subscriber holds; the publishes all go to the first (redis-benchmark draws
each random placeholder on its own, so the meta, stream and channel keys of one call could
not be made to agree)."""
MARK = b"$7\r\nmessage\r\n"


def _subscribe(port: int, gateways: int, pipe: Connection) -> None:
    """K connections, each subscribed to every channel; count deliveries until told to stop."""
    sel = selectors.DefaultSelector()
    names = [f"rc:{{bench.{i}}}".encode() for i in range(CHANNELS)]
    command = b"*%d\r\n$9\r\nSUBSCRIBE\r\n" % (len(names) + 1) + b"".join(
        b"$%d\r\n%s\r\n" % (len(n), n) for n in names
    )
    for _ in range(gateways):
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
            data = conn.recv(1 << 20)
            tail = key.data[0] + data
            delivered += tail.count(MARK)
            key.data[0] = tail[-(len(MARK) - 1) :]
    pipe.send(delivered)


def _cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def measure(
    gateways: int, publishes: int, size: int, clients: int, pipeline: int
) -> dict[str, Any]:
    server = LocalRedis().start()
    try:
        client = redis.Redis(port=server.port)
        sha = client.script_load(PUBLISH_LUA)
        parent, child = mp.Pipe()
        reader = mp.Process(target=_subscribe, args=(server.port, gateways, child))
        reader.start()
        parent.recv()
        while gateways and int(client.pubsub_numsub("rc:{bench.0}")[0][1]) < gateways:
            time.sleep(0.01)
        cpu0, t0 = _cpu(client), time.monotonic()
        args = [
            "redis-benchmark", "-p", str(server.port), "-q", "-n", str(publishes),
            "-c", str(clients), "-P", str(pipeline),
            "EVALSHA", sha, "3", "rc:{bench.0}:m", "rc:{bench.0}:s", "rc:{bench.0}",
            "x" * size, "1700000000.5", "1000", "600", "86400", "e0",
        ]  # fmt: skip
        done = subprocess.run(args, capture_output=True, text=True, timeout=300)
        if done.returncode:
            raise RuntimeError(f"redis-benchmark failed: {done.stdout[-300:]}{done.stderr}")
        elapsed, cpu = time.monotonic() - t0, _cpu(client) - cpu0
        time.sleep(0.5)  # let the reader drain what is in flight
        parent.send("stop")
        delivered = int(parent.recv())
        reader.join(10)
        client.close()
    finally:
        server.close()
    return {
        "gateways": gateways,
        "publishes": publishes,
        "seconds": round(elapsed, 2),
        "publishes_per_s": round(publishes / elapsed),
        "deliveries": delivered,
        "deliveries_per_s": round(delivered / elapsed),
        "redis_cpu_share": round(cpu / elapsed, 2),
        "redis_us_per_publish": round(cpu / publishes * 1e6, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateways", default="0,1,4,16", help="subscriber connections to try")
    parser.add_argument("--publishes", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=200, help="payload bytes")
    parser.add_argument("--clients", type=int, default=8, help="redis-benchmark connections")
    parser.add_argument("--pipeline", type=int, default=16, help="redis-benchmark pipeline")
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()
    if shutil.which("redis-benchmark") is None:
        sys.exit("needs redis-benchmark (Debian: apt-get install redis-tools)")
    rows = [
        measure(int(k), opts.publishes, opts.size, opts.clients, opts.pipeline)
        for k in opts.gateways.split(",")
    ]
    base = next((r for r in rows if r["gateways"] == 0), None)
    for row in rows:
        if base is not None and row["gateways"]:
            extra = row["redis_us_per_publish"] - base["redis_us_per_publish"]
            row["redis_us_per_delivery"] = round(extra / row["gateways"], 3)
        if opts.json:
            print(json.dumps(row))
        else:
            print(
                f"{row['gateways']:>3} gateways: {row['publishes_per_s']:>8,} publishes/s "
                f"{row['deliveries_per_s']:>10,} deliveries/s  Redis CPU "
                f"{row['redis_cpu_share']:.0%}, {row['redis_us_per_publish']} µs/publish"
                + (
                    f" ({row['redis_us_per_delivery']} µs per delivery)"
                    if "redis_us_per_delivery" in row
                    else ""
                )
            )


if __name__ == "__main__":
    main()
