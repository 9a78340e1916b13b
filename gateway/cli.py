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

from shared.cliflags import add_settings_flags, settings_from
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


def _tail(args: argparse.Namespace) -> int:
    from gateway.client import ClientError, InvalidChannel

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_follow(args.url.split(","), args.channels, args.count, args.token_file))
    except (ClientError, InvalidChannel) as exc:
        print(f"relaycast tail: {exc}", file=sys.stderr)
        return 1
    return 0


def _note(text: str) -> None:
    print(f"# {text}", file=sys.stderr, flush=True)


async def _follow(urls: list[str], channels: list[str], count: int, token_file: str | None) -> None:
    """Print each message as a JSON line, and on stderr one ``#`` line per state worth
    knowing; mistakes that retrying cannot fix come out of the client as ClientError."""
    from gateway.client import (
        Client,
        Disconnected,
        Error,
        Message,
        Reconnecting,
        StateChange,
        Subscribed,
    )

    def token() -> str:
        assert token_file is not None
        with open(token_file) as file:  # read again for each connection and refresh
            return file.read().strip()

    last: list[StateChange] = []

    def on_state(change: StateChange) -> None:
        if isinstance(change, Disconnected) and change.will_reconnect:
            _note(f"lost {change.url} ({change.code}); reconnecting")
        elif (
            isinstance(change, Reconnecting)
            and change.attempt == 1
            and not (last and isinstance(last[-1], Disconnected))  # not said just above
        ):
            _note(f"{change.cause}; retrying")
        last[:] = [change]

    # tail says what happens in its own lines; the client's log would repeat it
    logging.getLogger("relaycast.client").setLevel(logging.CRITICAL)
    seen = 0
    said: set[str] = set()
    client = Client(urls, channels, token=token if token_file else None, on_state=on_state)
    async with client:
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
                    _note(f"subscribed {event.channel} after offset {event.offset}{lost}")
            elif isinstance(event, Error):
                _note(f"{event.message}; waiting")
