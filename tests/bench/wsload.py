"""A load process: many WebSocket clients on one ``epoll`` loop, and what they received.

The load generator must cost less per message than the gateway it measures, so it is not
built on asyncio or on a WebSocket library. Each process runs one plain ``epoll`` loop
over non-blocking sockets and keeps per connection only a byte tail and the number of
the next message it expects; :mod:`tests.rawws` finds the messages in each read.
Every connection holds exactly one subscription, so numbers are checked per connection:
a number above the expected one is loss, below it a duplicate.

With ``compression`` the clients offer permessage-deflate as browsers do. A connection
that negotiated it splits each read into frames and inflates the compressed ones before
the search; the gateway sends every client the same compressed bytes, so a process
inflates each message once and looks the rest up by their bytes (:mod:`tests.bench.inflater`).

The parent drives a process through a pipe and gets one reply per command (see
:func:`run`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import select
import socket
import time
from array import array
from multiprocessing.connection import Connection

from tests.bench.inflater import OFFER, Inflater
from tests.bench.loadconn import CLOSED, CONNECTING, HANDSHAKE, LIVE, SUBSCRIBING, LoadConn
from tests.bench.loadspec import LoadConfig, LoadStats
from tests.rawws import (
    ERROR,
    MESSAGE,
    PING_JSON,
    PONG_FRAME,
    SUBSCRIBED,
    close_code,
    handshake,
    subscribe_frame,
)

__all__ = ["OFFER", "LoadConfig", "LoadStats", "run"]

RECV_SIZE = 65536
"""Bytes asked of each recv. Larger buffers cost far more than they save: glibc serves
a 256 KiB allocation with mmap and munmap, about 14 µs per read."""
_KEEP = 512  # bytes of a read kept for the next one: longer than any frame's head
_findall = MESSAGE.findall
_time = time.time
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


class _Loader:
    def __init__(self, config: LoadConfig, pipe: Connection) -> None:
        self.config = config
        self.pipe = pipe
        self.poll = select.epoll()
        self.conns: dict[int, LoadConn] = {}
        self.queue: list[LoadConn] = []
        self.pending = 0
        self.stats = LoadStats()
        self.lat = array("d")
        self.received = 0
        self.last_recv = 0.0
        self.expect_last: int | None = None
        self.deadline = 0.0
        self.connect_started = 0.0
        self.connect_reply = False
        self.running = True
        self._cpu0 = 0.0
        self.inflater = Inflater()

    # --- connections -------------------------------------------------------------------

    def _open(self, conn: LoadConn) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((conn.source, 0))
            err = sock.connect_ex(conn.addr)
        except OSError:
            sock.close()
            self._failed(conn)
            return
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            self._failed(conn)
            return
        conn.sock = sock
        conn.state = CONNECTING
        conn.tail = b""
        self.conns[sock.fileno()] = conn
        self.pending += 1
        self.poll.register(sock.fileno(), select.EPOLLOUT)

    def _failed(self, conn: LoadConn) -> None:
        conn.state = CLOSED
        self.stats.failed += 1

    def _start_more(self) -> None:
        while self.queue and self.pending < self.config.max_pending:
            self._open(self.queue.pop())

    def _drop(self, fd: int, conn: LoadConn, code: int | None) -> None:
        was = conn.state
        with contextlib.suppress(OSError, ValueError):
            self.poll.unregister(fd)
        if conn.sock is not None:
            conn.sock.close()
        conn.sock = None
        del self.conns[fd]
        conn.state = CLOSED
        if was < LIVE:
            self.pending -= 1
            self._failed(conn)
            key = f"closed {code or 1006} before subscribed"
            self.stats.errors[key] = self.stats.errors.get(key, 0) + 1
            return
        key = str(code or 1006)
        self.stats.closes[key] = self.stats.closes.get(key, 0) + 1
        if self.config.resume and self.running:
            self.stats.reconnects += 1
            self.queue.append(conn)
            self._start_more()

    # --- inbound -----------------------------------------------------------------------

    def _readable(self, fd: int, conn: LoadConn) -> None:
        sock = conn.sock
        assert sock is not None
        try:
            data = sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(fd, conn, close_code(conn.tail))
            return
        if conn.state == LIVE:
            if PING_JSON in data:  # answered at once, as the SDK and browsers do
                with contextlib.suppress(OSError):
                    sock.send(PONG_FRAME)
            if conn.deflate:
                self._deflated(conn, conn.tail + data if conn.tail else data)
            else:
                self._messages(conn, conn.tail + data if conn.tail else data)
        elif conn.state == HANDSHAKE:
            self._handshake_reply(fd, conn, data)
        else:
            self._subscribed(fd, conn, conn.tail + data)

    def _messages(self, conn: LoadConn, data: bytes) -> None:
        """Count, check and time every message frame in ``data`` (the hot path)."""
        found = _findall(data)
        if found:
            self._count(conn, found)
            if data[-1] == 0x7D:  # "}": the read ends with a whole frame
                conn.tail = b""
            else:  # keep what follows the last complete head: it cannot match again
                conn.tail = data[data.rfind(b',"p"') + 4 :][-_KEEP:]
            return
        conn.tail = b"" if data[-1] == 0x7D else data[-_KEEP:]

    def _deflated(self, conn: LoadConn, data: bytes) -> None:
        """:meth:`_messages` for a connection with permessage-deflate: whole frames only,
        compressed ones inflated (each distinct one once per process)."""
        text, end, closing = self.inflater.frames(data)
        conn.tail = data[end:] or closing
        found = _findall(text)
        if found:
            self._count(conn, found)

    def _count(self, conn: LoadConn, found: list[tuple[bytes, bytes]]) -> None:
        """Count, check and time the messages ``found`` (publish time and number each)."""
        now = _time()
        count = len(found)
        if count == 1:
            t, n = found[0]
            if int(n) == conn.next_n:
                conn.next_n += 1
            else:
                self._check(conn, [int(n)])
            if not self.received % self.config.sample_every:
                self.lat.append(now - float(t))
        else:
            numbers = [int(n) for _, n in found]
            first = conn.next_n
            if numbers == list(range(first, first + count)):
                conn.next_n = first + count
            else:
                self._check(conn, numbers)
            every = self.config.sample_every
            if every == 1:
                self.lat.extend([now - float(t) for t, _ in found])
            else:
                seen = self.received
                self.lat.extend(
                    [now - float(t) for i, (t, _) in enumerate(found, seen) if not i % every]
                )
        self.received += count
        self.last_recv = now

    def _check(self, conn: LoadConn, numbers: list[int]) -> None:
        expected = conn.next_n
        for n in numbers:
            if n == expected:
                expected += 1
            elif n > expected:
                self.stats.lost += n - expected
                expected = n + 1
            else:
                self.stats.duplicates += 1
        conn.next_n = expected

    def _handshake_reply(self, fd: int, conn: LoadConn, data: bytes) -> None:
        buf = conn.tail + data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            conn.tail = buf
            return
        if not buf.startswith(b"HTTP/1.1 101"):
            self._drop(fd, conn, None)
            return
        conn.deflate = b"permessage-deflate" in buf[:end].lower()
        assert conn.sock is not None
        since = conn.next_n - 1 if conn.epoch is not None else 0
        epoch = conn.epoch if conn.epoch is not None else self.config.since_epoch
        conn.sock.send(subscribe_frame(conn.channel, since, epoch))
        conn.state = SUBSCRIBING
        conn.tail = b""
        self._subscribed(fd, conn, buf[end + 4 :])

    def _subscribed(self, fd: int, conn: LoadConn, buf: bytes) -> None:
        match = SUBSCRIBED.search(buf)
        if match is None:
            error = ERROR.search(buf)
            if error is not None:
                code = error.group(1).decode()
                self.stats.errors[code] = self.stats.errors.get(code, 0) + 1
                self._drop(fd, conn, None)
                return
            conn.tail = buf[-4096:]
            return
        resumed = conn.epoch is not None or self.config.since_epoch is not None
        if resumed:
            if b'"recovered":true' in buf[match.start() : match.end() + 40]:
                self.stats.recovered += 1
            else:
                self.stats.not_recovered += 1
        if conn.epoch is None and self.config.since_epoch is None:
            conn.next_n = int(match.group(1)) + 1
        conn.epoch = match.group(2).decode()
        conn.state = LIVE
        conn.tail = b""
        self.pending -= 1
        self.stats.connected += 1
        self._start_more()
        if conn.deflate:
            # Frames start right after the subscribed frame: the regex stops inside it.
            start = buf.find(b"}", match.end()) + 1
            if start < len(buf):
                self._deflated(conn, buf[start:])
            return
        rest = buf[match.end() :]
        if rest:
            self._messages(conn, rest)

    def _writable(self, fd: int, conn: LoadConn) -> None:
        sock = conn.sock
        assert sock is not None
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            self._drop(fd, conn, None)
            return
        host, port = conn.addr
        sock.send(handshake(host, port, headers=OFFER if self.config.compression else ""))
        conn.state = HANDSHAKE
        self.poll.modify(fd, select.EPOLLIN)

    # --- commands ------------------------------------------------------------------------

    def _command(self) -> None:
        command, arg = self.pipe.recv()
        if command == "connect":
            config = self.config
            self.connect_started = time.monotonic()
            for i in range(config.first + config.count - 1, config.first - 1, -1):
                addr = config.urls[i % len(config.urls)]
                source = config.sources[i % len(config.sources)]
                self.queue.append(LoadConn(addr, source, config.channels[i % len(config.channels)]))
            self.connect_reply = True
            self._start_more()
        elif command == "reset":
            self._reset()
            self.pipe.send(None)
        elif command == "collect":
            self.expect_last = int(arg["last"])
            self.deadline = time.monotonic() + float(arg["timeout"])
        elif command == "stop":
            self.running = False

    def _reset(self) -> None:
        self.stats = LoadStats(connected=self.stats.connected, failed=self.stats.failed)
        self.lat = array("d")
        self.received = 0
        self.last_recv = 0.0
        self._cpu0 = _cpu()

    def _collected(self) -> bool:
        last = self.expect_last
        assert last is not None
        if time.monotonic() < self.deadline and not self.queue and not self.pending:
            return all(c.next_n > last for c in self.conns.values())
        return time.monotonic() >= self.deadline

    def _reply_collect(self) -> None:
        last = self.expect_last
        assert last is not None
        self.expect_last = None
        stats = self.stats
        stats.missing = sum(max(0, last - c.next_n + 1) for c in self.conns.values())
        stats.missing += sum(max(0, last - c.next_n + 1) for c in self.queue)
        stats.open = sum(1 for c in self.conns.values() if c.state == LIVE)
        stats.cpu_seconds = _cpu() - self._cpu0
        stats.latencies = self.lat.tobytes()
        stats.received = self.received
        stats.last_recv = self.last_recv
        self.pipe.send(stats)

    def loop(self) -> None:
        self._cpu0 = _cpu()
        pipe_fd = self.pipe.fileno()
        self.poll.register(pipe_fd, select.EPOLLIN)
        conns = self.conns
        while self.running:
            events = self.poll.poll(0.05)
            for fd, event in events:
                if fd == pipe_fd:
                    self._command()
                    continue
                conn = conns.get(fd)
                if conn is None:
                    continue
                if event & select.EPOLLIN:
                    self._readable(fd, conn)
                elif event & select.EPOLLOUT:
                    self._writable(fd, conn)
                elif event & (select.EPOLLERR | select.EPOLLHUP):
                    self._drop(fd, conn, None)
            if self.connect_reply and not self.pending and not self.queue:
                self.connect_reply = False
                self.pipe.send(
                    {
                        "connected": self.stats.connected,
                        "failed": self.stats.failed,
                        "errors": dict(self.stats.errors),
                        "seconds": time.monotonic() - self.connect_started,
                    }
                )
            if self.expect_last is not None and self._collected():
                self._reply_collect()
        for fd, conn in list(conns.items()):
            with contextlib.suppress(OSError):
                self.poll.unregister(fd)
            if conn.sock is not None:
                conn.sock.close()
        self.poll.close()


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(wanted, hard), max(wanted, hard)))
        return
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run(config: LoadConfig, pipe: Connection) -> None:
    """Body of one load process.

    Commands (``(name, argument)`` tuples on ``pipe``) and replies:

    - ``("connect", None)``: open every connection and subscribe; replies
      ``{"connected", "failed", "seconds"}`` once none is in flight.
    - ``("reset", None)``: zero the counters (connections stay); replies None.
    - ``("collect", {"last": N, "timeout": T})``: wait until every connection has
      received message ``N`` of its channel, or ``T`` seconds; replies :class:`LoadStats`.
    - ``("stop", None)``: close everything and return.
    """
    if config.cpus:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, config.cpus)
    _raise_fd_limit(config.count + 64)
    loader = _Loader(config, pipe)
    try:
        loader.loop()
    finally:
        pipe.close()
