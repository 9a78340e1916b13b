"""``relaycast bench``: the capacity tool that measures gateways as users run them.

- :mod:`shared.bench.cli` is the ``bench`` subcommand.
- :mod:`shared.bench.scenarios` (with :mod:`shared.bench.flow`, their shared steps),
  :mod:`shared.bench.ceiling` and :mod:`shared.bench.hotpath` are the runs.
- :mod:`shared.bench.rig` starts and pins Redis, gateways (:mod:`shared.bench.gatewayproc`),
  load and publisher processes, and stops them.
- :mod:`shared.bench.wsload` is a load process: many raw WebSocket clients on one epoll
  loop (:mod:`shared.bench.loadspec` its contract, :mod:`shared.bench.wire` its bytes).
- :mod:`shared.bench.pubload` publishes numbered, timestamped messages at a paced rate.
- :mod:`shared.bench.report` turns figures into a table, JSON, and the results record.

docs/performance.md explains the scenarios and the figures measured on this machine.
"""
