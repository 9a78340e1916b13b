"""The ``relaycast`` command: hands each subcommand to its home.

    relaycast up                      Redis, a gateway and the publishers, for a try-out
    relaycast gateway [--port 8000]   one gateway process
    relaycast publish CHANNEL JSON    publish one message
    relaycast tail URL CHANNEL...     print a channel's messages as JSON lines
    relaycast metrics                 publish this host's metrics while anyone listens
    relaycast alerts                  raise and resolve alerts from rules over the metrics
    relaycast drain [--pid 1]         drain a gateway and wait for it (a preStop hook)
    relaycast bench SCENARIO          measure gateways (fanout, idle, replay, sweep...)

Every setting is a flag too: ``--redis-url`` sets ``RELAYCAST_REDIS_URL``, and so on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import msgspec

from shared.settings import Settings, SettingsError

__all__ = ["main"]


def _add_settings_flags(parser: argparse.ArgumentParser, names: Sequence[str]) -> None:
    for name in names:
        parser.add_argument("--" + name.replace("_", "-"), dest=name, default=None, metavar="V")


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.load({n: getattr(args, n, None) for n in Settings.fields()})


def _cmd_gateway(args: argparse.Namespace) -> int:
    from gateway.server import serve

    serve(_settings(args))
    return 0


def _cmd_publish(args: argparse.Namespace) -> int:
    from publisher.publish import Publisher

    try:
        data = json.loads(args.json)
    except json.JSONDecodeError as exc:
        print(f"relaycast publish: JSON is not valid: {exc}", file=sys.stderr)
        return 2
    with Publisher(settings=_settings(args)) as publisher:
        position = publisher.publish(args.channel, data)
    print(json.dumps({"channel": args.channel, "offset": position.offset, "epoch": position.epoch}))
    return 0


def _cmd_tail(args: argparse.Namespace) -> int:
    from gateway.client import Client
    from shared.protocol import Error, Message, Subscribed

    token_file = args.token_file

    def token() -> str:
        with open(token_file) as file:  # read again for each connection and refresh
            return file.read().strip()

    async def run() -> None:
        count = 0
        source = token if token_file else None
        async with Client(args.url.split(","), args.channels, token=source) as client:
            async for event in client:
                if isinstance(event, Message):
                    line = {
                        "channel": event.channel,
                        "offset": event.offset,
                        "data": msgspec.json.decode(event.data),
                    }
                    print(json.dumps(line), flush=True)
                    count += 1
                    if args.count and count >= args.count:
                        return
                elif isinstance(event, Subscribed):
                    lost = "; history lost" if event.recovered is False else ""
                    print(
                        f"# subscribed {event.channel} after offset {event.offset}{lost}",
                        file=sys.stderr,
                        flush=True,
                    )
                elif isinstance(event, Error):
                    print(f"# error {event.code}: {event.message}", file=sys.stderr, flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0


def _cmd_drain(args: argparse.Namespace) -> int:
    from gateway.prestop import drain

    return 0 if drain(args.pid, _settings(args).drain_seconds) else 1


def _cmd_up(args: argparse.Namespace) -> int:
    from shared.up import run_up

    return run_up(_settings(args))


def _cmd_metrics(args: argparse.Namespace) -> int:
    from publisher.metrics import run_metrics

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_metrics(_settings(args)))
    return 0


def _cmd_alerts(args: argparse.Namespace) -> int:
    from publisher.alert_rules import RulesError
    from publisher.alerts import run_alerts

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run_alerts(_settings(args)))
    except (RulesError, ValueError) as exc:
        print(f"relaycast alerts: {exc}", file=sys.stderr)
        return 2
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from publisher.demo import run_demo

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_demo(_settings(args), interval=float(args.interval)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relaycast", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    every = Settings.fields()

    p = sub.add_parser("gateway", help="run one gateway process")
    _add_settings_flags(p, every)
    p.set_defaults(func=_cmd_gateway)

    p = sub.add_parser("publish", help="publish one JSON message")
    p.add_argument("channel")
    p.add_argument("json", help="the message, as JSON")
    _add_settings_flags(p, every)
    p.set_defaults(func=_cmd_publish)

    p = sub.add_parser("tail", help="print messages of channels as JSON lines")
    p.add_argument(
        "url",
        help="gateway WebSocket URL, e.g. ws://127.0.0.1:8000/ws; several, comma-separated,"
        " are tried in turn on reconnect (it resumes from its last offsets on any of them)",
    )
    p.add_argument("channels", nargs="+")
    p.add_argument("--count", type=int, default=0, help="stop after this many messages")
    p.add_argument(
        "--token-file",
        help="file holding a connection token (JWT); read again for each connection and refresh",
    )
    p.set_defaults(func=_cmd_tail)

    p = sub.add_parser("drain", help="drain a gateway (SIGTERM) and wait until it exits")
    p.add_argument("--pid", type=int, default=1, help="the gateway's pid (default 1: a container)")
    _add_settings_flags(p, every)
    p.set_defaults(func=_cmd_drain)

    p = sub.add_parser("up", help="start Redis, a gateway and the publishers locally")
    _add_settings_flags(p, every)
    p.set_defaults(func=_cmd_up)

    p = sub.add_parser("metrics", help="publish this host's metrics (psutil)")
    _add_settings_flags(p, every)
    p.set_defaults(func=_cmd_metrics)

    p = sub.add_parser("alerts", help="raise and resolve alerts from rules over the metrics")
    _add_settings_flags(p, every)
    p.set_defaults(func=_cmd_alerts)

    p = sub.add_parser("demo", help="publish demo events continuously")
    p.add_argument("--interval", default="1.0", help="seconds between demo events")
    _add_settings_flags(p, every)
    p.set_defaults(func=_cmd_demo)

    # The bench rig lives in the checkout's tests/, beside this package, which an
    # editable install does not put on sys.path; an installed wheel has no bench.
    root = Path(__file__).resolve().parent.parent
    if (root / "tests" / "bench" / "cli.py").is_file():
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        from tests.bench.cli import add_parser as add_bench

        add_bench(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args))
    except SettingsError as exc:
        print(f"relaycast: bad setting: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
