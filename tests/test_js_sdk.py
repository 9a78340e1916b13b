"""The JavaScript SDK's own tests (sdk/js/test, vitest) against a real gateway and Redis.

This starts Redis and a gateway on free ports and runs ``npx vitest run`` in sdk/js with
the gateway's URL in ``RELAYCAST_TEST_URL``; vitest's output is shown when it fails. It
needs Node 20+ and ``npm ci`` in sdk/js (``make test`` runs it when ``node`` is on PATH);
without them it skips, except under CI, where it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from shared.localredis import LocalRedis
from tests.conftest import IN_CI
from tests.helpers import ROOT, GatewayProcess

SDK = ROOT / "sdk" / "js"


def _require_node() -> None:
    missing = None
    if shutil.which("node") is None or shutil.which("npx") is None:
        missing = "no node/npx on PATH: the JavaScript SDK's tests need Node 20+"
    elif not (SDK / "node_modules" / ".bin" / "vitest").exists():
        missing = "sdk/js has no node_modules: run `make test` (it runs `npm ci`) or `npm ci` there"
    if missing:
        if IN_CI:
            pytest.fail(missing)
        pytest.skip(missing)


def test_vitest_suite_passes_against_a_real_gateway(
    redis_server: LocalRedis, gateways: list[GatewayProcess]
) -> None:
    _require_node()
    gateway = GatewayProcess.start(gateways, redis_server.url)
    env = {**os.environ, "RELAYCAST_TEST_URL": gateway.url, "CI": "true", "NO_COLOR": "1"}
    run = subprocess.run(
        ["npx", "--no-install", "vitest", "run"],
        cwd=SDK,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    print(run.stdout[-6000:], run.stderr[-3000:])
    assert run.returncode == 0, f"vitest failed:\n{run.stdout[-6000:]}\n{run.stderr[-3000:]}"
    assert " skipped" not in run.stdout.split("Tests", 1)[-1].splitlines()[0], run.stdout


def test_served_client_is_the_build_of_the_source(tmp_path: Path) -> None:
    """gateway/static/sdk is checked in; it must be what sdk/js/src builds to (`make sdk`)."""
    _require_node()
    subprocess.run(
        ["npx", "--no-install", "tsc", "-p", "tsconfig.json", "--outDir", str(tmp_path)],
        cwd=SDK,
        check=True,
        timeout=120,
    )
    served = ROOT / "gateway" / "static" / "sdk"
    built = sorted(
        p.name
        for p in tmp_path.iterdir()
        if not p.name.startswith(("react.", "index.")) and p.name.endswith((".js", ".d.ts"))
    )
    assert built, "tsc built nothing"
    stale = [name for name in built if (served / name).read_text() != (tmp_path / name).read_text()]
    assert not stale, f"gateway/static/sdk is not the build of sdk/js/src: run `make sdk` ({stale})"


def test_sources_and_tests_type_check() -> None:
    """The package's types hold for its own tests, which use them as an app would."""
    _require_node()
    run = subprocess.run(
        ["npx", "--no-install", "tsc", "-p", "tsconfig.test.json"],
        cwd=SDK,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-4000:]
