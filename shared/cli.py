"""The ``relaycast`` command: a table of subcommands, each configured by its home.

The table names each subcommand's home as ``"module:function"``; only the chosen one is
imported (with importlib, at run time), so ``shared`` imports neither the gateway nor the
publishers, and ``relaycast gateway`` loads nothing of the publishers or the bench. The
function fills in the subcommand's parser with its own flags and sets ``func``.

``relaycast bench`` lives with the tests (``tests/bench``): it runs from a source
checkout, found next to the installed ``shared`` package.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from shared.cliflags import run_command

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS: dict[str, tuple[str, str]] = {
    "up": ("shared.up:configure_up", "start Redis, a gateway and the publishers (make run)"),
    "gateway": ("gateway.cli:configure_gateway", "run one gateway process"),
    "tail": ("gateway.cli:configure_tail", "print the messages of channels as JSON lines"),
    "publish": ("publisher.cli:configure_publish", "publish one JSON message into a channel"),
    "metrics": ("publisher.cli:configure_metrics", "publish this host's metrics (psutil)"),
    "alerts": ("publisher.cli:configure_alerts", "raise and resolve alerts from rules"),
    "demo": ("publisher.cli:configure_demo", "publish demo tasks and ticks continuously"),
    "notify": ("publisher.cli:configure_notify", "deliver notifications to webhook/email sinks"),
    "drain": ("gateway.cli:configure_drain", "drain a gateway (SIGTERM) and wait for its exit"),
    "bench": ("", "measure gateways: fanout, idle, replay, sweep... (from a source checkout)"),
}
"""Subcommand -> (its home, ``"module:function"``, and its one-line help)."""

BENCH_HOME = "tests.bench.cli"
"""Where ``relaycast bench`` is defined, in a source checkout."""


def resolve(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    func: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return func


def _bench_home() -> Any | None:
    """The bench's CLI module from the source checkout this ``shared`` came from, or None."""
    root = Path(__file__).resolve().parent.parent
    if not (root / Path(*BENCH_HOME.split("."))).with_suffix(".py").is_file():
        return None
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(BENCH_HOME)


def _no_bench(args: argparse.Namespace) -> int:
    print(
        "relaycast bench runs from a source checkout (clone the repository, then make bench)",
        file=sys.stderr,
    )
    return 2


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s home is imported to give it its flags."""
    parser = argparse.ArgumentParser(
        prog="relaycast",
        description="Relaycast: a real-time broadcaster over Redis. "
        "`relaycast COMMAND --help` shows a command's flags.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (target, help_line) in COMMANDS.items():
        if name != command:
            sub.add_parser(name, help=help_line)
        elif name == "bench":
            home = _bench_home()
            if home is not None:
                home.add_parser(sub)
            else:
                p = sub.add_parser(name, help=help_line, add_help=False)
                p.add_argument("rest", nargs=argparse.REMAINDER)
                p.set_defaults(func=_no_bench)
        else:
            p = sub.add_parser(name, help=help_line, description=help_line)
            resolve(target)(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    args = build_parser(command if command in COMMANDS else None).parse_args(argv)
    return run_command(f"relaycast {args.command}", args)


if __name__ == "__main__":
    raise SystemExit(main())
