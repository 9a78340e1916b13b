"""The gateway's subcommands: ``relaycast gateway``, ``relaycast tail``, ``relaycast drain``.

Each ``configure_*`` fills in the parser ``relaycast`` made for the subcommand, with only
the flags that subcommand reads, and sets ``func`` to what runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
from urllib.parse import urlsplit

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

from shared.channels import InvalidChannel, check_channel
from shared.cliflags import add_settings_flags, settings_from
from shared.protocol import ErrorCode
from shared.settings import Settings, SettingsError

__all__ = ["configure_drain", "configure_gateway", "configure_tail"]

_PUBLISHER_ONLY = {
    "metrics_host",
    "metrics_interval",
    "metrics_idle_interval",
    "alerts_rules",
    "alerts_interval",
}
GATEWAY_SETTINGS = tuple(name for name in Settings.fields() if name not in _PUBLISHER_ONLY)
"""What a gateway reads: everything but the metrics and alerts publishers' settings."""


def configure_gateway(parser: argparse.ArgumentParser) -> None:
    add_settings_flags(parser, GATEWAY_SETTINGS)
    parser.set_defaults(func=_gateway)


def _gateway(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    count = settings.worker_count()
    if count > 1:
        from gateway.workers import supervise

        if settings.redis_url.startswith("memory:"):
            raise SettingsError(
                "RELAYCAST_WORKERS: each worker is a process of its own, and memory:// reaches"
                " one process only; use Redis with more than one worker"
            )
        return supervise(settings, count)
    from gateway.server import serve  # one worker: this process is the gateway, as always

    serve(settings)
    return 0


def configure_drain(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pid",
        type=int,
        default=1,
        help="the gateway's pid, or its supervisor's with --workers (default: 1, as in a"
        " container)",
    )
    add_settings_flags(parser, ["drain_seconds"])
    parser.set_defaults(func=_drain)


def _drain(args: argparse.Namespace) -> int:
    from gateway.prestop import drain

    return 0 if drain(args.pid, settings_from(args).drain_seconds) else 1


def configure_tail(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "url",
        help="gateway WebSocket URL, e.g. ws://127.0.0.1:8000/ws; several, comma-separated,"
        " are tried in turn on reconnect (resuming from the last offsets on any of them)",
    )
    parser.add_argument("channels", nargs="+", help="channels to follow")
    parser.add_argument(
        "--count", type=int, default=0, help="stop after this many messages (default: 0, never)"
    )
    parser.add_argument(
        "--token-file",
        default=None,
        help="file holding a connection token (JWT), read again for each connection and"
        " refresh (default: none, anonymous)",
    )
    parser.set_defaults(func=_tail)


class TailStop(Exception):
    """A mistake that retrying cannot fix: tail says it in one line and exits 1."""


def _check_urls(urls: list[str]) -> None:
    for url in urls:
        scheme = urlsplit(url).scheme
        if scheme not in ("ws", "wss"):
            hint = url.replace("http", "ws", 1) if scheme in ("http", "https") else "ws://HOST/ws"
            raise TailStop(f"{url} is not a WebSocket URL; use ws:// or wss://, e.g. {hint}")


async def _preflight(url: str) -> None:
    """Open one connection to tell a wrong path or a refusal (which never heals) from a
    gateway that is not up yet (which the client keeps trying)."""
    try:
        async with asyncio.timeout(10):
            ws = await connect(url, compression=None)
    except InvalidStatus as exc:
        status = exc.response.status_code
        if status in (429, 502, 503, 504):
            return  # busy or starting: the client retries
        raise TailStop(f"{url} answered HTTP {status}; is that the gateway's /ws?") from None
    except InvalidURI as exc:
        raise TailStop(f"{url}: {exc}") from None
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        print(f"# cannot reach {url} yet ({exc}); retrying", file=sys.stderr, flush=True)
        return
    await ws.close()


def _tail(args: argparse.Namespace) -> int:
    urls = args.url.split(",")
    try:
        _check_urls(urls)
        for channel in args.channels:
            check_channel(channel)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_follow(urls, args.channels, args.count, args.token_file))
    except (TailStop, InvalidChannel) as exc:
        print(f"relaycast tail: {exc}", file=sys.stderr)
        return 1
    return 0


async def _follow(urls: list[str], channels: list[str], count: int, token_file: str | None) -> None:
    from gateway.client import Client, Error, Message, Subscribed

    def token() -> str:
        assert token_file is not None
        with open(token_file) as file:  # read again for each connection and refresh
            return file.read().strip()

    for url in urls:
        await _preflight(url)
    # The client logs each failed connect; tail said it once above and waits quietly.
    logging.getLogger("relaycast.client").setLevel(logging.WARNING)
    seen = 0
    said: set[str] = set()
    async with Client(urls, channels, token=token if token_file else None) as client:
        async for event in client:
            if isinstance(event, Message):
                line = {"channel": event.channel, "offset": event.offset, "data": event.data}
                print(json.dumps(line), flush=True)
                seen += 1
                if count and seen >= count:
                    return
            elif isinstance(event, Subscribed):
                lost = "; history lost" if event.recovered is False else ""
                if event.channel not in said or lost:
                    said.add(event.channel)
                    print(
                        f"# subscribed {event.channel} after offset {event.offset}{lost}",
                        file=sys.stderr,
                        flush=True,
                    )
            elif isinstance(event, Error):
                if event.code == ErrorCode.UNAVAILABLE:
                    print(f"# {event.message}; waiting", file=sys.stderr, flush=True)
                    continue
                about = f" ({event.channel})" if event.channel else ""
                raise TailStop(f"the gateway refused{about}: {event.code}: {event.message}")
