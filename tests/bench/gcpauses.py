"""Reading the pauses that :mod:`tests.bench.gcprobe` logs for each gateway."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["GcLog", "merge"]


class GcLog:
    """The collections one gateway logs from now on."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.mark = path.stat().st_size if path.exists() else 0
        """Summaries count only collections logged after the log was opened here."""

    def summary(self) -> dict[str, Any]:
        """Collections since the mark: how many, the longest and the total pause (ms of
        wall clock; ``cpu`` ones of the gateway's CPU time, which waiting for a CPU on a
        busy machine does not inflate), and the same for full (generation 2) ones."""
        if not self.path.exists():
            return {}
        with open(self.path, "rb") as f:
            f.seek(self.mark)
            lines = f.read().decode().splitlines()
        pauses = [(int(g), float(w), float(c)) for g, w, c, _ in map(str.split, lines)]
        full = [(w, c) for g, w, c in pauses if g == 2]
        return {
            "gc_collections": len(pauses),
            "gc_max_ms": round(1000 * max((w for _, w, _ in pauses), default=0.0), 2),
            "gc_total_ms": round(1000 * sum(w for _, w, _ in pauses), 1),
            "gc_cpu_max_ms": round(1000 * max((c for _, _, c in pauses), default=0.0), 2),
            "gc_cpu_total_ms": round(1000 * sum(c for _, _, c in pauses), 1),
            "gc_full_collections": len(full),
            "gc_full_max_ms": round(1000 * max((w for w, _ in full), default=0.0), 2),
            **{
                f"gc_gen{n}_cpu_max_ms": round(
                    1000 * max((c for g, _, c in pauses if g == n), default=0.0), 2
                )
                for n in (0, 1, 2)
            },
        }


def merge(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Several gateways' summaries as one: counts and totals add, maxima are the largest."""
    merged: dict[str, Any] = {}
    for summary in summaries:
        for key, value in summary.items():
            if key.endswith("max_ms"):
                merged[key] = max(merged.get(key, 0.0), value)
            else:
                merged[key] = round(merged.get(key, 0) + value, 1)
    return merged
