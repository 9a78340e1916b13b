"""``python -m gateway``: the same as ``relaycast gateway``, without the other subcommands."""

import argparse
import sys

from gateway.cli import configure_gateway
from shared.cliflags import run_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway", description="run one gateway")
    configure_gateway(parser)
    return run_command("python -m gateway", parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
