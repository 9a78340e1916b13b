"""``relaycast up``: a local Redis, a gateway, the publishers and the notifier, as separate
processes.

Redis listens on a fixed port (6380 unless ``--redis-port`` says otherwise), so the
README's commands and ``Publisher("redis://127.0.0.1:6380/0")`` reach it as written,
and a Redis already on 6379 is never written to by mistake. Both ports are checked
before anything starts: a second ``relaycast up`` says which port is taken and exits 1.

The children run in sessions of their own, so Ctrl-C in the terminal reaches only this
process, which stops them in order: the gateway first (its clients are told to go),
then the publishers, then Redis, so nothing sees Redis vanish under it.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from shared.cliflags import add_settings_flags, settings_from
from shared.localredis import LocalRedis, die_with_parent
from shared.settings import Settings

__all__ = ["DEFAULT_REDIS_PORT", "configure_up", "run_up"]

DEFAULT_REDIS_PORT = 6380
"""Where ``relaycast up`` runs its Redis: one above Redis' own default, so a Redis already
running on 6379 is left alone."""


def configure_up(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis-port",
        type=int,
        default=DEFAULT_REDIS_PORT,
        help=f"port of the Redis it starts on 127.0.0.1 (default: {DEFAULT_REDIS_PORT})",
    )
    add_settings_flags(parser, ["host", "port"])
    parser.set_defaults(func=lambda args: run_up(settings_from(args), args.redis_port))


def _relaycast(*args: str) -> list[str]:
    return [sys.executable, "-m", "shared.cli", *args]


def _command_name() -> str:
    """How a user in this directory runs ``relaycast``: as installed beside this Python."""
    script = Path(sys.executable).parent / "relaycast"
    if not script.exists():
        return "relaycast"
    with_dir = Path(os.path.relpath(script)) if script.is_relative_to(Path.cwd()) else script
    return str(with_dir)


def port_in_use(host: str, port: int) -> bool:
    """Whether something listens on ``host:port`` (or the port cannot be bound there)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _busy(settings: Settings, redis_port: int) -> str | None:
    for what, host, port, flag in (
        ("the gateway", settings.host, settings.port, "--port"),
        ("Redis", "127.0.0.1", redis_port, "--redis-port"),
    ):
        if port_in_use(host, port):
            return (
                f"port {port} ({what}) on {host} is already in use; is another relaycast up "
                f"running? Stop it, or choose another port with {flag}"
            )
    return None


def _stop(name: str, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        print(f"relaycast up: {name} did not stop; killing it", flush=True)
        proc.kill()
        proc.wait()


def run_up(settings: Settings, redis_port: int = DEFAULT_REDIS_PORT) -> int:
    """Start everything, print what runs where, stop it all on Ctrl-C or SIGTERM."""
    busy = _busy(settings, redis_port)
    if busy is not None:
        print(f"relaycast up: {busy}", file=sys.stderr)
        return 1
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    try:
        redis = LocalRedis(port=redis_port, own_session=True)
    except FileNotFoundError as exc:  # no redis-server anywhere
        print(f"relaycast up: {exc}", file=sys.stderr)
        return 1
    try:
        redis.start()
    except (OSError, RuntimeError, TimeoutError) as exc:
        redis.close()
        print(f"relaycast up: cannot start Redis: {exc}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    env = dict(os.environ)
    env["RELAYCAST_REDIS_URL"] = redis.url
    env.setdefault("RELAYCAST_DRAIN_SECONDS", "1")
    env.setdefault("RELAYCAST_MODE", "development")  # anonymous access; the gateway warns too
    gateway: subprocess.Popen[bytes] | None = None
    publishers: list[tuple[str, subprocess.Popen[bytes]]] = []

    def child(*args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            _relaycast(*args), env=env, start_new_session=True, preexec_fn=die_with_parent
        )

    try:
        gateway = child("gateway", "--host", settings.host, "--port", str(settings.port))
        for name in ("metrics", "alerts", "demo"):
            publishers.append((f"{name} publisher", child(name)))
        publishers.append(("notifier", child("notify")))
        _banner(settings, redis, gateway, publishers)
        running = [("gateway", gateway), *publishers]
        while not stopping:
            for name, proc in running:
                if proc.poll() is not None:
                    print(f"relaycast up: {name} exited with {proc.returncode}; stopping")
                    stopping = True
            time.sleep(0.2)
    finally:
        if gateway is not None:
            _stop("gateway", gateway)
        for _, proc in publishers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in publishers:
            _stop(name, proc)
        redis.close()
        print("relaycast up: stopped", flush=True)
    return 0


def _banner(
    settings: Settings,
    redis: LocalRedis,
    gateway: subprocess.Popen[bytes],
    publishers: list[tuple[str, subprocess.Popen[bytes]]],
) -> None:
    base = f"http://{settings.host}:{settings.port}"
    ws = f"ws://{settings.host}:{settings.port}/ws"
    redis_pid = redis.proc.pid if redis.proc else "?"
    cmd = _command_name()
    print(
        "\nRelaycast is up (development mode: anyone may connect)\n"
        f"  dashboard         {base}/\n"
        f"  WebSocket         {ws}\n"
        f"  redis-server      {redis.url}  ({redis.binary}, pid {redis_pid})\n"
        f"  gateway           pid {gateway.pid}\n"
        + "".join(f"  {name:<17} pid {proc.pid}\n" for name, proc in publishers)
        + f"  health, metrics   {base}/readyz  {base}/metrics\n"
        f"  HTTP API          {base}/api/openapi.json\n"
        "Try, in another shell:\n"
        f"  {cmd} tail {ws} demo.ticks demo.hello\n"
        f"  {cmd} publish demo.hello '{{\"hi\": 1}}' --redis-url {redis.url}\n"
        "Press Ctrl-C to stop.\n",
        flush=True,
    )
