"""The end of a test run says which parts were skipped, why, and what installs the missing."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT


def test_the_run_ends_with_the_skipped_parts_and_the_command_that_installs_them(tmp_path):
    (tmp_path / "test_needs_a_browser.py").write_text(
        "import pytest\n\n"
        "def test_one():\n    pytest.skip('no /usr/bin/chromium: browser tests need Chromium')\n\n"
        "def test_two():\n    pytest.skip('no /usr/bin/chromium: browser tests need Chromium')\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-q", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    summary = result.stdout.split("skipped, and why", 1)[1]
    assert "2 skipped: no /usr/bin/chromium: browser tests need Chromium" in summary
    assert "apt-get install -y chromium haproxy" in summary
