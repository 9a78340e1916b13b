"""``relaycast up``: a local Redis, a gateway and the publishers, as separate processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from shared.localredis import LocalRedis
from shared.settings import Settings

__all__ = ["run_up"]


def _relaycast(*args: str) -> list[str]:
    return [sys.executable, "-m", "shared.cli", *args]


def run_up(settings: Settings) -> int:
    """Start everything, print what runs where, stop it all on Ctrl-C or SIGTERM."""
    redis = LocalRedis().start()
    env = dict(os.environ)
    env["RELAYCAST_REDIS_URL"] = redis.url
    env.setdefault("RELAYCAST_DRAIN_SECONDS", "1")
    env.setdefault("RELAYCAST_MODE", "development")  # anonymous access; the gateway warns too
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        gateway = _relaycast("gateway", "--host", settings.host, "--port", str(settings.port))
        children.append(("gateway", subprocess.Popen(gateway, env=env)))
        children.append(("metrics publisher", subprocess.Popen(_relaycast("metrics"), env=env)))
        children.append(("alerts publisher", subprocess.Popen(_relaycast("alerts"), env=env)))
        children.append(("demo publisher", subprocess.Popen(_relaycast("demo"), env=env)))
        base = f"http://{settings.host}:{settings.port}"
        ws = f"ws://{settings.host}:{settings.port}/ws"
        redis_pid = redis.proc.pid if redis.proc else "?"
        print(
            "\nRelaycast is up (development mode: anyone may connect)\n"
            f"  redis-server      {redis.url}  ({redis.binary}, pid {redis_pid})\n"
            + "".join(f"  {name:<17} pid {proc.pid}\n" for name, proc in children)
            + f"  WebSocket         {ws}\n"
            f"  health, metrics   {base}/readyz  {base}/metrics\n"
            f"  HTTP API          {base}/api/openapi.json\n"
            f"  try               relaycast tail {ws} demo.ticks\n"
            f"                    relaycast tail {ws} tasks.web alerts@state metrics.fleet\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        while not stopping:
            for name, proc in children:
                if proc.poll() is not None:
                    print(f"relaycast up: {name} exited with {proc.returncode}; stopping")
                    stopping = True
            time.sleep(0.2)
    finally:
        for _, proc in children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in children:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                print(f"relaycast up: {name} did not stop; killing it")
                proc.kill()
        redis.close()
        print("relaycast up: stopped", flush=True)
    return 0
