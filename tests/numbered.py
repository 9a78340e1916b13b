"""Numbered, timestamped messages into Redis at a paced rate, for the tests and the bench.

It speaks RESP on a plain socket and pipelines ``EVALSHA`` of the same publish script
the publisher library runs (:data:`shared.broker.redis_scripts.PUBLISH_LUA`), so a message
gets its offset and history exactly as a real publish does, at a few microseconds of
Python per message. Payloads are ``{"t":<publish time>,"n":<number>,"p":"..."}``,
padded to the requested size with :data:`PADDING`: the bench's load processes read ``t``
and ``n`` back (:data:`tests.rawws.MESSAGE`), the tests' subscribers check ``n``.

Messages go out round by round: round ``n`` publishes message ``n`` on every channel.
The bench runs :func:`run` in a process of its own; a test runs
:class:`NumberedPublisher` beside its event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import hiredis
from redis.connection import parse_url

from shared.broker.redis_link import encode_command
from shared.broker.redis_scripts import PUBLISH_LUA, channel_keys, publish_args
from shared.channels import Namespaces

__all__ = ["NumberedPublisher", "PublishConfig", "PublishResult", "payload", "publish", "run"]

BATCH = 256
"""Most publishes written in one pipeline round trip."""


@dataclass
class PublishConfig:
    """One publishing run."""

    redis_url: str
    channels: list[str]
    size: int = 200
    rate: float = 0.0
    """Messages per second over all channels; 0 publishes as fast as Redis answers."""
    rounds: int = 0
    """Stop after this many rounds (message numbers); 0 means only ``duration`` counts."""
    duration: float = 10.0
    first: int = 1
    """Number of the first round (a later run on the same channels continues numbering)."""
    prefix: str = "rc"
    namespaces: str = ""
    cpus: list[int] | None = None


@dataclass
class PublishResult:
    """What a run published: every channel got rounds ``first``..``last``."""

    published: int = 0
    last: int = 0
    seconds: float = 0.0
    epochs: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    cpu_seconds: float = 0.0


def _padding(size: int) -> bytes:
    """Text that compresses about as well as JSON records do (some 3:1 with deflate),
    not as a run of one letter would (100:1): names, numbers and words from a fixed
    seed, without quotes or backslashes."""
    rng = random.Random(20261207)
    keys = [b"id", b"host", b"cpu", b"mem", b"disk", b"rx", b"tx", b"state", b"latency", b"ts"]
    words = [b"web", b"db", b"cache", b"ok", b"warn", b"idle", b"busy", b"eu-west", b"us-east"]
    out = bytearray()
    while len(out) < size:
        key = rng.choice(keys)
        if rng.random() < 0.4:
            value = b"%s-%d" % (rng.choice(words), rng.randrange(100))
        else:
            value = b"%.*f" % (rng.randrange(4), rng.random() * 10 ** rng.randrange(1, 7))
        out += b"%s=%s " % (key, value)
    return bytes(out[:size])


PADDING = _padding(1 << 16)
"""The padding of every payload (its first bytes, as many as the size needs)."""


def payload(n: int, size: int, now: float) -> bytes:
    """A message of about ``size`` bytes: publish time, number, padding."""
    head = b'{"t":%.6f,"n":%d,"p":"' % (now, n)
    need = max(0, size - len(head) - 2)
    pad = PADDING[:need] if need <= len(PADDING) else (PADDING * (need // len(PADDING) + 1))[:need]
    return head + pad + b'"}'


class _Redis:
    """Just enough of a Redis client: pipelined commands on one socket, hiredis replies."""

    def __init__(self, url: str) -> None:
        opts = parse_url(url)  # type: ignore[no-untyped-call]
        if "path" in opts:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(opts["path"])
        else:
            host, port = opts.get("host", "127.0.0.1"), int(opts.get("port", 6379))
            self.sock = socket.create_connection((host, port), timeout=30)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = hiredis.Reader()
        if opts.get("password"):
            user = [opts["username"]] if opts.get("username") else []
            self.call([("AUTH", *user, opts["password"])])
        if opts.get("db"):
            self.call([("SELECT", opts["db"])])

    def call(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        self.sock.sendall(b"".join(encode_command(*c) for c in commands))
        replies: list[Any] = []
        while len(replies) < len(commands):
            reply = self.reader.gets()
            if reply is False:
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("redis closed the connection")
                self.reader.feed(data)
                continue
            replies.append(reply)
        return replies

    def close(self) -> None:
        self.sock.close()


def publish(config: PublishConfig, stop: threading.Event | None = None) -> PublishResult:
    """Publish for ``config.duration`` seconds (or ``config.rounds`` rounds, or until
    ``stop`` is set), paced."""
    redis = _Redis(config.redis_url)
    sha = hashlib.sha1(PUBLISH_LUA.encode()).hexdigest()
    redis.call([("SCRIPT", "LOAD", PUBLISH_LUA)])
    namespaces = Namespaces.from_json(config.namespaces) if config.namespaces else Namespaces()
    targets = [
        (channel, channel_keys(config.prefix, channel), namespaces(channel))
        for channel in config.channels
    ]
    result = PublishResult(last=config.first - 1)
    cpu0 = time.process_time()
    start = time.monotonic()
    end = start + config.duration if config.duration else float("inf")
    n = config.first
    i = 0  # index into targets within round n
    sent = 0
    try:
        while True:
            now = time.monotonic()
            # Stop only between rounds, so every channel has the same last number.
            if i == 0 and (
                now >= end
                or (config.rounds and n >= config.first + config.rounds)
                or (stop is not None and stop.is_set())
            ):
                break
            due = BATCH if not config.rate else int((now - start) * config.rate) + 1 - sent
            if due <= 0:
                # Until the next message is due; a slow rate still notices ``stop``.
                time.sleep(min(0.05, (sent - (now - start) * config.rate) / config.rate))
                continue
            wall = time.time()
            commands = []
            numbers = []
            for _ in range(min(due, BATCH)):
                channel, keys, options = targets[i]
                data = payload(n, config.size, wall)
                args = publish_args(data, options, wall, os.urandom(4).hex())
                commands.append(("EVALSHA", sha, 3, *keys, *args))
                numbers.append((channel, n))
                i += 1
                if i == len(targets):
                    i, n = 0, n + 1
                    if (config.rounds and n >= config.first + config.rounds) or (
                        time.monotonic() >= end
                    ):
                        break
            replies = redis.call(commands)
            for (channel, number), reply in zip(numbers, replies, strict=True):
                if isinstance(reply, hiredis.ReplyError):
                    if len(result.errors) < 5:
                        result.errors.append(str(reply))
                    continue
                result.epochs.setdefault(channel, reply[1].decode())
                if int(reply[0]) != number and len(result.errors) < 5:
                    result.errors.append(f"{channel}: message {number} got offset {reply[0]}")
            sent += len(commands)
    finally:
        redis.close()
    result.published = sent
    result.last = n - 1
    result.seconds = time.monotonic() - start
    result.cpu_seconds = time.process_time() - cpu0
    return result


def run(config: PublishConfig, pipe: Connection) -> None:
    """Body of the publisher process: wait for ``go``, publish, send the result."""
    if config.cpus:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, config.cpus)
    try:
        if pipe.recv() == "go":
            pipe.send(publish(config))
    finally:
        pipe.close()


class NumberedPublisher:
    """Publishes ``n`` = 1, 2, ... on one channel every ``interval`` seconds until stopped.

    It publishes from a thread, so a test's event loop (its subscribers) never waits
    for it, and the numbers stay consecutive whatever the loop is doing.
    """

    def __init__(self, redis_url: str, channel: str, interval: float) -> None:
        self.config = PublishConfig(
            redis_url=redis_url, channels=[channel], size=0, rate=1 / interval, duration=0
        )
        self._stop = threading.Event()
        self._task: asyncio.Future[PublishResult] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(asyncio.to_thread(publish, self.config, self._stop))

    async def stop(self) -> int:
        """Stop publishing; return how many messages went out (every call, once stopped)."""
        self._stop.set()
        if self._task is None:
            return 0
        result = await self._task
        if result.errors:
            raise AssertionError(f"publishing failed: {result.errors}")
        return result.published
