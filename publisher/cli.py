"""The publishers' subcommands: ``relaycast publish``, ``metrics``, ``alerts``, ``demo``
and ``notify``.

Each ``configure_*`` fills in the parser ``relaycast`` made for the subcommand, with only
the flags that subcommand reads, and sets ``func`` to what runs it. A mistake or an
unreachable Redis is one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Coroutine
from typing import Any

from shared.broker import BrokerUnavailable
from shared.cliflags import add_settings_flags, settings_from

__all__ = [
    "configure_alerts",
    "configure_demo",
    "configure_metrics",
    "configure_notify",
    "configure_publish",
]

_BROKER = ("redis_url", "key_prefix", "namespaces", "max_payload_bytes")


def configure_publish(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("channel", help="the channel, e.g. demo.hello")
    parser.add_argument("json", help="the message, as JSON, e.g. '{\"hi\": 1}'")
    add_settings_flags(parser, _BROKER)
    parser.set_defaults(func=_publish)


def _publish(args: argparse.Namespace) -> int:
    from publisher.publish import Publisher

    try:
        data = json.loads(args.json)
    except json.JSONDecodeError as exc:
        print(f"relaycast publish: the message is not valid JSON: {exc}", file=sys.stderr)
        return 2
    settings = settings_from(args)
    try:
        with Publisher(settings=settings) as publisher:
            position = publisher.publish(args.channel, data)
    except BrokerUnavailable as exc:
        print(f"relaycast publish: {settings.redis_url}: {_first_line(exc)}", file=sys.stderr)
        return 1
    except (ValueError, TypeError) as exc:  # invalid channel, too large, memory:// ...
        print(f"relaycast publish: {_first_line(exc)}", file=sys.stderr)
        return 2
    print(json.dumps({"channel": args.channel, "offset": position.offset, "epoch": position.epoch}))
    return 0


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _run_forever(name: str, main: Coroutine[Any, Any, None]) -> int:
    """Run a publisher process until Ctrl-C or SIGTERM; a lost Redis is one line."""
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main)
    except BrokerUnavailable as exc:
        print(f"relaycast {name}: {_first_line(exc)}", file=sys.stderr)
        return 1
    return 0


def configure_metrics(parser: argparse.ArgumentParser) -> None:
    add_settings_flags(
        parser, [*_BROKER, "metrics_host", "metrics_interval", "metrics_idle_interval"]
    )
    parser.set_defaults(func=_metrics)


def _metrics(args: argparse.Namespace) -> int:
    from publisher.metrics import run_metrics

    return _run_forever("metrics", run_metrics(settings_from(args)))


def configure_alerts(parser: argparse.ArgumentParser) -> None:
    add_settings_flags(parser, [*_BROKER, "alerts_rules", "alerts_interval", "alerts_recent"])
    parser.set_defaults(func=_alerts)


def _alerts(args: argparse.Namespace) -> int:
    from publisher.alert_rules import RulesError
    from publisher.alerts import run_alerts

    try:
        return _run_forever("alerts", run_alerts(settings_from(args)))
    except (RulesError, ValueError) as exc:
        print(f"relaycast alerts: {exc}", file=sys.stderr)
        return 2


def configure_demo(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--interval",
        type=float,
        default=1.0,
        help="seconds between demo events; each job step takes half to twice this (default: 1.0)",
    )
    add_settings_flags(parser, [*_BROKER, "task_ttl"])
    parser.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from publisher.demo import run_demo

    return _run_forever("demo", run_demo(settings_from(args), interval=args.interval))


def configure_notify(parser: argparse.ArgumentParser) -> None:
    notify = ["notify_destinations", "notify_timeout", "notify_max_attempts"]
    smtp = ["notify_retry_delay", "smtp_host", "smtp_port", "smtp_from"]
    add_settings_flags(parser, [*_BROKER, *notify, *smtp])
    parser.set_defaults(func=_notify)


def _notify(args: argparse.Namespace) -> int:
    from publisher.notifier import run_notifier

    return _run_forever("notify", run_notifier(settings_from(args)))
