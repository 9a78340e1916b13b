"""Documentation tests: the code blocks of README.md and docs/ run as a user pastes them.

Every fenced ``sh`` and ``python`` block runs against one real ``relaycast up`` started
on free ports: ``127.0.0.1:8000`` (or ``localhost:8000``) in a block becomes its gateway,
``127.0.0.1:6380`` its Redis, and ``.venv/bin/`` the directory of this Python. A shell
block runs under ``set -euo pipefail`` and must exit 0; a Python block runs as a script
and must exit 0. Blocks that follow channels until stopped (a ``relaycast tail`` line,
a Python block with ``async for``) start first, before the other blocks of their
document, and must print what those blocks publish.

``js`` blocks are browser code. Any block that cannot run here (Docker, Kubernetes,
minutes of load, browser code) is marked in the Markdown, on the line before it, with

    *Not run by the documentation tests: <why>.*

and shows as skipped, with that reason, in the run's summary. Blocks of other languages
(``json``, ``toml``, ``yaml``, and unlabelled ones: trees, URLs, frames) are data and
pictures, not commands, and are not run.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.upprocess import UpProcess

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN = {"sh", "python"}
MUST_RUN_OR_SAY = RUN | {"js", "javascript", "bash", "console", "shell"}
NOT_RUN = re.compile(r"^\*Not run by the documentation tests: (?P<why>.+?)\.?\*$")


@dataclass
class Block:
    path: Path
    line: int
    lang: str
    text: str
    not_run: str | None = None

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    lines = path.read_text().splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        if lines[i].startswith("```"):
            lang = lines[i][3:].strip()
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            before = [line for line in lines[max(0, i - 2) : i] if line.strip()]
            mark = NOT_RUN.match(before[-1]) if before else None
            text = "\n".join(lines[i + 1 : end]) + "\n"
            found.append(Block(path, i + 1, lang, text, mark["why"] if mark else None))
            i = end
        i += 1
    return found


ALL = [block for path in DOCUMENTS for block in blocks(path)]
PASTED = [block for block in ALL if block.lang in MUST_RUN_OR_SAY]


@pytest.mark.parametrize("block", PASTED, ids=[block.name for block in PASTED])
def test_every_block_a_user_pastes_runs_or_says_why_not(block: Block) -> None:
    if block.not_run is not None:
        pytest.skip(f"{block.name} ({block.lang}): {block.not_run}")
    assert block.lang in RUN, (
        f"{block.name}: a {block.lang} block is neither run nor marked "
        "'*Not run by the documentation tests: why.*' on the line before it"
    )


def test_every_marker_stands_before_a_block() -> None:
    marked = {(block.path, block.line) for block in ALL if block.not_run is not None}
    for path in DOCUMENTS:
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines, 1):
            if NOT_RUN.match(line):
                fence = number + 2 if number + 1 < len(lines) and not lines[number] else number + 1
                assert (path, fence) in marked, f"{path.name}:{number}: marks no block"


# --- running the blocks -------------------------------------------------------------------


@dataclass
class Follower:
    """A command that prints channels' messages until stopped."""

    block: Block
    command: list[str]
    channels: list[str] = field(default_factory=list)
    out: Path | None = None
    proc: subprocess.Popen[bytes] | None = None


def _localise(text: str, up: UpProcess) -> str:
    bin_dir = str(Path(sys.executable).parent)
    for here in ("127.0.0.1:8000", "localhost:8000"):
        text = text.replace(here, f"127.0.0.1:{up.port}")
    text = text.replace("127.0.0.1:6380", f"127.0.0.1:{up.redis_port}")
    return text.replace(".venv/bin/", bin_dir + "/")


def _shell_commands(text: str) -> list[str]:
    """The block's commands, continuation lines joined, comments and blanks left out."""
    joined = re.sub(r"\\\n\s*", "", text)
    return [line for line in joined.splitlines() if line.strip() and not line.startswith("#")]


def _env() -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"], "KEY": ""}


def _subscriptions(up: UpProcess) -> float:
    with urllib.request.urlopen(up.base + "/metrics", timeout=5) as reply:
        text = reply.read().decode()
    found = re.search(r"^relaycast_subscriptions (\S+)$", text, re.M)
    return float(found[1]) if found else 0.0


def _run_document(path: Path, up: UpProcess, tmp: Path) -> Iterator[str]:
    """Run the document's blocks; yields a line of what ran, for the failure message."""
    runnable = [block for block in blocks(path) if block.lang in RUN and block.not_run is None]
    followers: list[Follower] = []
    steps: list[tuple[Block, list[str]]] = []
    published: list[tuple[str, str]] = []
    for block in runnable:
        text = _localise(block.text, up)
        if block.lang == "python":
            command = [sys.executable, "-c", text]
            if "async for" in text:
                followers.append(Follower(block, command))
            else:
                steps.append((block, command))
            continue
        rest: list[str] = []
        for line in _shell_commands(text):
            words = shlex.split(line, comments=True)
            if "tail" in words and any(w.endswith("relaycast") for w in words):
                channels = [w for w in words[words.index("tail") + 2 :] if not w.startswith("-")]
                followers.append(Follower(block, ["bash", "-c", line], channels))
            else:
                if "publish" in words:
                    published.append((words[words.index("publish") + 1], line))
                rest.append(line)
        if rest:
            script = "set -euo pipefail\n" + "\n".join(rest)
            steps.append((block, ["bash", "-c", script]))
    try:
        before = _subscriptions(up)
        for n, follower in enumerate(followers):
            follower.out = tmp / f"follower-{n}.out"
            with open(follower.out, "wb") as out:
                follower.proc = subprocess.Popen(
                    follower.command, cwd=ROOT, env=_env(), stdout=out, stderr=subprocess.DEVNULL
                )
            yield f"started {follower.block.name}: {follower.command[-1].strip()[:80]}"
        deadline = time.monotonic() + 30
        while _subscriptions(up) < before + len(followers):
            assert time.monotonic() < deadline, "the followers did not subscribe in 30 s"
            time.sleep(0.1)
        for block, command in steps:
            result = subprocess.run(
                command, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=60
            )
            assert result.returncode == 0, (
                f"{block.name} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
            yield f"ran {block.name}"
        for follower in followers:
            assert follower.out is not None and follower.proc is not None
            wanted = [f'"channel": "{ch}"' for ch, _ in published if ch in follower.channels]
            deadline = time.monotonic() + 30
            while True:
                printed = follower.out.read_text()
                if printed.strip() and all(w in printed for w in wanted):
                    break
                assert follower.proc.poll() is None, f"{follower.block.name} exited:\n{printed}"
                assert time.monotonic() < deadline, (
                    f"{follower.block.name} printed {printed!r}, not {wanted or 'a message'}"
                )
                time.sleep(0.1)
            yield f"{follower.block.name} printed {printed.splitlines()[0][:80]}"
    finally:
        for follower in followers:
            if follower.proc is not None:
                follower.proc.kill()
                follower.proc.wait(10)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpProcess]:
    from tests.conftest import _require_redis

    _require_redis()
    process = UpProcess(tmp_path_factory.mktemp("up") / "up.log")
    try:
        yield process.start()
    finally:
        process.interrupt()
        process.kill()


WITH_RUNNABLE = [
    path
    for path in DOCUMENTS
    if any(block.lang in RUN and block.not_run is None for block in blocks(path))
]


@pytest.mark.parametrize("path", WITH_RUNNABLE, ids=[p.name for p in WITH_RUNNABLE])
def test_the_blocks_of_a_document_run_against_relaycast_up(
    path: Path, up: UpProcess, tmp_path: Path
) -> None:
    done: list[str] = []
    try:
        for step in _run_document(path, up, tmp_path):
            done.append(step)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nafter: {done}\nrelaycast up:\n{up.text()[-3000:]}") from None
