"""Fixtures for the deployment tests: the real load balancer, and the tools that render.

A missing haproxy or kubectl skips the tests that need it, with the reason, on a
developer's machine; under CI (``CI=true``, where ``.ci/run`` installs them) it fails.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.deploy.loadbalancer import LoadBalancer, find_haproxy

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(tool: str | None, message: str) -> str:
    """``tool`` when found; else skip (fail under CI) with ``message``."""
    if tool is None:
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return tool


@pytest.fixture
def load_balancer() -> Iterator[LoadBalancer]:
    """haproxy with deploy/haproxy.cfg on 127.0.0.1; its gateway slots start empty."""
    binary = require(
        find_haproxy(), "haproxy is not installed (apt-get install haproxy; .ci/run does)"
    )
    lb = LoadBalancer(binary).start()
    try:
        yield lb
    finally:
        lb.stop()


@pytest.fixture(scope="session")
def kubectl() -> str:
    """The kubectl binary, which renders the kustomize overlays."""
    return require(shutil.which("kubectl"), "kubectl is not on PATH: cannot render k8s/")
