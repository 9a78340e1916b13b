"""``relaycast bench``: the capacity tool that measures gateways as users run them.

- :mod:`tests.bench.cli` is the ``bench`` subcommand.
- :mod:`tests.bench.scenarios` (with :mod:`tests.bench.flow`, their shared steps),
  :mod:`tests.bench.ceiling` and :mod:`tests.bench.hotpath` are the runs.
- :mod:`tests.bench.rig` starts and pins Redis, gateways (:mod:`tests.gatewayproc`, the
  class the tests start theirs with), load and publisher processes, and stops them.
- :mod:`tests.bench.wsload` is a load process: many raw WebSocket clients on one epoll
  loop (:mod:`tests.bench.loadspec` its contract, :mod:`tests.rawws` its bytes).
- :mod:`tests.numbered` publishes numbered, timestamped messages at a paced rate (the
  tests publish with it too).
- :mod:`tests.bench.report` turns figures into a table, JSON, and the results record.

docs/performance.md explains the scenarios and the figures measured on this machine.
"""
