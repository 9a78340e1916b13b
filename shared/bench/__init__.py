"""``relaycast bench``: the capacity tool that measures gateways as users run them.

- :mod:`shared.bench.rig` starts and pins Redis, gateways, load and publisher processes.
- :mod:`shared.bench.wsload` is a load process: many raw WebSocket clients on one epoll loop.
- :mod:`shared.bench.pubload` publishes numbered, timestamped messages at a paced rate.
- :mod:`shared.bench.scenarios` and :mod:`shared.bench.ceiling` are the runs.
- :mod:`shared.bench.report` turns figures into a table, JSON, and the results record.
- :mod:`shared.bench.cli` is the ``bench`` subcommand.

docs/performance.md explains the scenarios and the figures measured on this machine.
"""
