"""The TypeScript types of frames and channel payloads match the msgspec Structs.

sdk/js/src/frames.ts is generated from the Python definitions; a Struct changed without
regenerating it would hand JavaScript users types that lie. Regenerate with
``.venv/bin/python sdk/js/scripts/gen_types.py > sdk/js/src/frames.ts`` (then ``make sdk``).
"""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT

FRAMES = ROOT / "sdk" / "js" / "src" / "frames.ts"
GENERATOR = ROOT / "sdk" / "js" / "scripts" / "gen_types.py"


def test_frames_ts_is_what_the_structs_generate() -> None:
    generated = subprocess.run(
        [sys.executable, str(GENERATOR)], check=True, capture_output=True, text=True
    ).stdout
    assert FRAMES.read_text() == generated, (
        "sdk/js/src/frames.ts differs from the msgspec Structs: run "
        "`.venv/bin/python sdk/js/scripts/gen_types.py > sdk/js/src/frames.ts` and `make sdk`"
    )


def test_served_types_are_built_from_the_same_source() -> None:
    served = ROOT / "gateway" / "static" / "sdk" / "frames.d.ts"
    assert served.exists(), "gateway/static/sdk is built by `make sdk`"
    names = ("ServerFrame", "TaskEvent", "AlertEvent", "HostSnapshot", "FleetSnapshot")
    for name in (*names, "SourceSnapshot", "NotificationCreated", "NotificationEventPayload"):
        assert f"export type {name} " in served.read_text() or (
            f"export interface {name} " in served.read_text()
        ), name
