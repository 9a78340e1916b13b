"""``python -m gateway``: the same as ``relaycast gateway``."""

from shared.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["gateway", *__import__("sys").argv[1:]]))
