"""The ``relaycast`` command: its help, where it finds each subcommand, one-line mistakes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from shared.cli import COMMANDS
from tests.helpers import ROOT, free_port


def run(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", *args],
        cwd=kwargs.pop("cwd", ROOT),
        capture_output=True,
        text=True,
        timeout=60,
        **kwargs,
    )


def flags(help_text: str) -> set[str]:
    return set(re.findall(r"^\s+(--[a-z-]+)", help_text, re.M)) - {"--help"}


def test_the_top_level_help_lists_every_subcommand():
    result = run("--help")
    assert result.returncode == 0
    listed = re.findall(r"^    (\w+) ", result.stdout, re.M)
    assert listed == list(COMMANDS)
    assert "demo" in listed and "bench" in listed


@pytest.mark.parametrize(
    ("command", "has", "lacks"),
    [
        ("publish", {"--redis-url", "--key-prefix"}, {"--drain-seconds", "--port", "--api-key"}),
        ("tail", {"--count", "--token-file"}, {"--redis-url", "--drain-seconds"}),
        ("drain", {"--pid", "--drain-seconds"}, {"--redis-url", "--port"}),
        ("up", {"--port", "--redis-port", "--host"}, {"--redis-url", "--drain-seconds"}),
        ("metrics", {"--metrics-interval"}, {"--drain-seconds", "--alerts-rules"}),
        ("alerts", {"--alerts-rules"}, {"--drain-seconds", "--metrics-interval"}),
        ("demo", {"--interval"}, {"--drain-seconds", "--port"}),
        ("gateway", {"--drain-seconds", "--port", "--redis-url"}, {"--metrics-interval"}),
    ],
)
def test_each_subcommand_shows_its_own_flags_with_a_help_line_and_default(command, has, lacks):
    result = run(command, "--help")
    assert result.returncode == 0, result.stderr
    shown = flags(result.stdout)
    assert has <= shown and not (lacks & shown), shown
    for flag in shown:  # every flag has words after it and says its default
        entry = re.split(rf"\n  {flag}\b", result.stdout, maxsplit=1)[1].split("\n  -", 1)[0]
        assert re.search(r"[a-z]{3}", entry) and "default" in entry, (flag, entry)


def test_relaycast_gateway_imports_neither_publishers_nor_the_bench():
    code = (
        "import sys; from shared.cli import build_parser; "
        "build_parser('gateway').parse_args(['gateway']); "
        "print(sorted({m.split('.')[0] + '.' + (m.split('.') + [''])[1] for m in sys.modules "
        "if m.startswith(('publisher', 'tests'))}))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_python_m_gateway_does_not_go_through_the_relaycast_command():
    code = "import sys, gateway.__main__; print('shared.cli' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_bench_outside_a_source_checkout_says_so_in_one_line(tmp_path):
    site = tmp_path / "site"
    shutil.copytree(ROOT / "shared", site / "shared", ignore=shutil.ignore_patterns("bench"))
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run(
        [sys.executable, "-P", "-m", "shared.cli", "bench", "fanout"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "relaycast bench runs from a source checkout (clone the repository, then make bench)"
    )


def test_bench_from_the_checkout_shows_its_flags():
    result = run("bench", "--help")
    assert result.returncode == 0 and "fanout" in result.stdout


def test_publish_to_an_unreachable_redis_is_one_line_and_exit_1():
    url = f"redis://127.0.0.1:{free_port()}/0"
    result = run("publish", "demo.hello", '{"hi": 1}', "--redis-url", url)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and url in result.stderr, result.stderr


def test_publish_to_an_invalid_channel_is_one_line_and_exit_2(redis_server):
    result = run("publish", "not valid!", "{}", "--redis-url", redis_server.url)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "invalid channel" in result.stderr


def test_publish_with_invalid_json_is_one_line_and_exit_2(redis_server):
    result = run("publish", "demo.hello", "{hi", "--redis-url", redis_server.url)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "not valid JSON" in result.stderr


def test_a_bad_setting_is_one_line_and_exit_2():
    result = run("publish", "demo.hello", "{}", "--max-payload-bytes", "lots")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "bad setting" in result.stderr


def test_shared_imports_neither_side():
    """``shared`` is the contract: the command finds the gateway and the publishers by
    name at run time, never by an import that points up (the load tooling aside, which
    is leaving ``shared``)."""
    import ast

    upward = []
    for path in sorted((ROOT / "shared").rglob("*.py")):
        if "bench" in path.relative_to(ROOT / "shared").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            upward += [
                f"{path.relative_to(ROOT)}: {name}"
                for name in names
                if name.split(".")[0] in ("gateway", "publisher", "tests")
            ]
    assert not upward, upward
