"""``relaycast bench SCENARIO``: flags, the run, the table or JSON.

    relaycast bench fanout --clients 1000 --rate 100000 --duration 10
    relaycast bench idle --clients 10000 --json
    relaycast bench sweep --rates 50000,100000,200000 --record tests/bench/results.jsonl

By default the bench starts a private redis-server and one gateway, pinned apart from
its load processes; ``--redis-url`` and ``--gateway-url`` point it at running ones.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tests.bench import report
from tests.bench.ceiling import ceiling
from tests.bench.rig import Rig, RigOptions
from tests.bench.scenarios import SCENARIOS, Params

__all__ = ["add_parser", "run_bench"]

CHOICES = [*SCENARIOS, "ceiling", "hotpath", "redis", "history", "tasks"]


def add_parser(sub: Any) -> None:
    """Add the ``bench`` subcommand to the ``relaycast`` parser's subparsers."""
    p = sub.add_parser(
        "bench",
        help="measure gateways: fanout, channels, idle, replay, sweep, overload, ceiling,"
        " hotpath; and Redis alone: redis, history, tasks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d = Params()
    p.add_argument("scenario", choices=CHOICES)
    p.add_argument("--clients", type=int, default=None, help="connections (default per scenario)")
    p.add_argument("--rate", type=float, default=d.rate, help="deliveries/s offered")
    p.add_argument("--duration", type=float, default=d.duration, help="seconds of publishing")
    p.add_argument("--size", type=int, default=d.size, help="payload bytes")
    p.add_argument("--channels", type=int, default=1, help="fanout: channels to spread over")
    p.add_argument("--no-history", action="store_true", help="channels that keep no history")
    p.add_argument(
        "--compression",
        action="store_true",
        help="fanout, channels, idle, hotpath: clients offer permessage-deflate (as browsers do)",
    )
    p.add_argument("--backlog", type=int, default=d.backlog, help="replay: messages to resume")
    p.add_argument("--heartbeat", type=float, default=d.heartbeat, help="idle: ping interval")
    p.add_argument("--rates", default=None, help="sweep: comma-separated deliveries/s")
    p.add_argument("--p99-bound", type=float, default=d.p99_bound_ms, help="sweep: ms")
    p.add_argument("--freeze", type=float, default=d.freeze, help="overload: seconds frozen")
    p.add_argument("--publishes", type=int, default=d.publishes, help="redis: per step")
    p.add_argument(
        "--subscribers",
        default=None,
        help="redis: comma-separated counts of connections standing in for gateways",
    )
    p.add_argument("--tasks", type=int, default=100_000, help="tasks: how many to seed")
    p.add_argument("--loaders", type=int, default=0, help="load processes (0: auto)")
    p.add_argument("--sources", type=int, default=4, help="source addresses 127.0.0.1..N")
    p.add_argument("--gateways", type=int, default=1, help="gateways to start")
    p.add_argument(
        "--workers", type=int, default=1, help="worker processes per gateway (--no-pin to spread)"
    )
    p.add_argument("--ramp", type=int, default=256, help="handshakes in flight per process")
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    p.add_argument("--nice", type=int, default=0, help="priority of the processes started")
    p.add_argument("--redis-url", default=None, help="use this Redis instead of a private one")
    p.add_argument("--gateway-url", action="append", default=[], help="use this gateway (http)")
    p.add_argument("--gateway-pid", action="append", type=int, default=[], help="its pid")
    p.add_argument(
        "--gateway-source", default=None, help="run gateways from this source tree (A/B runs)"
    )
    p.add_argument("--json", action="store_true", help="one JSON line instead of the table")
    p.add_argument(
        "--record",
        default=None,
        help="append the result to this JSON-lines file (from a clean checkout only)",
    )
    p.set_defaults(func=run_bench)


_DEFAULT_CLIENTS = {"idle": 10_000, "replay": 500, "redis": 8}


def params_from(args: argparse.Namespace) -> Params:
    params = Params(
        clients=args.clients or _DEFAULT_CLIENTS.get(args.scenario, 1000),
        rate=args.rate,
        duration=args.duration,
        size=args.size,
        history=not args.no_history,
        channels=args.channels,
        freeze=args.freeze,
        backlog=args.backlog,
        heartbeat=args.heartbeat,
        p99_bound_ms=args.p99_bound,
        publishes=args.publishes,
        compression=args.compression,
    )
    if args.rates:
        params.rates = tuple(float(r) for r in args.rates.split(","))
    if args.subscribers:
        params.subscribers = tuple(int(k) for k in args.subscribers.split(","))
    return params


def run_bench(args: argparse.Namespace) -> int:
    """Run one scenario; print and record its result. Exit 1 when it reports problems."""
    if args.record and (why := report.check_recordable(args.record)):
        print(f"relaycast bench: not recording: {why}", file=sys.stderr)
        return 2
    options = RigOptions(
        redis_url=args.redis_url,
        gateway_urls=args.gateway_url,
        gateway_pids=args.gateway_pid,
        gateways=args.gateways,
        workers=args.workers,
        loaders=args.loaders,
        sources=args.sources,
        ramp=args.ramp,
        pin=not args.no_pin,
        gateway_source=args.gateway_source,
        nice=args.nice,
    )
    params = params_from(args)
    with Rig(options) as rig:
        if args.scenario == "ceiling":
            result = ceiling(rig, params)
        elif args.scenario == "hotpath":
            from tests.bench.hotpath import hotpath

            result = hotpath(rig, params)
        elif args.scenario == "tasks":
            from tests.bench.task_queries import task_queries

            result = task_queries(rig, params, args.tasks)
        elif args.scenario == "redis":
            from tests.bench.redis_ceiling import redis_ceiling

            result = redis_ceiling(rig, params)
        elif args.scenario == "history":
            from tests.bench.history_bench import history_bench

            result = history_bench(rig, params)
        else:
            result = SCENARIOS[args.scenario](rig, params)
    if args.json:
        report.dump(result)
    else:
        print(report.table(result), flush=True)
    if args.record:
        report.record(result, args.record, args.gateway_source)
    return 1 if result.get("problems") else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="relaycast")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
