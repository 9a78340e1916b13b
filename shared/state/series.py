"""Metric series: their names, the samples a service sends, and the history tiers.

A *series* is one metric of one source, optionally of one entity (an account, a queue):
``(source, metric, entity)``. Host snapshots become series too (``cpu.percent`` of host
``web-1``), so history, charts and alerts treat a host's figures and a service's alike.

Names are checked here, once, for the library and the HTTP API: a name that does not fit
is refused with :class:`InvalidSample` rather than stored, since every series costs Redis
memory for up to the longest tier's retention.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import msgspec

__all__ = [
    "InvalidSample",
    "Sample",
    "Tier",
    "check_entity",
    "check_metric",
    "check_source",
    "flatten",
    "parse_seconds",
    "parse_tiers",
    "series_id",
    "unit_of",
]

_SOURCE = re.compile(r"[A-Za-z0-9_.:@-]{1,100}")
_METRIC = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
_ENTITY = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")
_UNIT = re.compile(r"[\x20-\x7e\u00b0-\u00ff]{0,16}")
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


class InvalidSample(ValueError):
    """A name, value or batch that cannot be stored; the message says which and why."""


def check_source(source: str) -> str:
    if not isinstance(source, str) or not _SOURCE.fullmatch(source):
        raise InvalidSample(f"source {source!r}: 1-100 of A-Z a-z 0-9 _ . : @ -")
    return source


def check_metric(metric: str) -> str:
    if not isinstance(metric, str) or not _METRIC.fullmatch(metric):
        raise InvalidSample(
            f"metric {metric!r}: 1-100 of A-Z a-z 0-9 _ . - (not starting with . or -)"
        )
    return metric


def check_entity(entity: str) -> str:
    if not isinstance(entity, str) or not _ENTITY.fullmatch(entity):
        raise InvalidSample(f"entity {entity!r}: 1-64 of A-Z a-z 0-9 _ . : @ -")
    return entity


def series_id(metric: str, entity: str = "") -> str:
    """The series' field in its source's hash: ``metric`` or ``metric|entity``."""
    return f"{metric}|{entity}" if entity else metric


class Sample(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One figure a service sends: a gauge (a level) or a counter (an increment since the
    previous batch, published as a rate per second over the batch's ``interval``)."""

    metric: str
    value: float
    kind: Literal["gauge", "counter"] = "gauge"
    entity: str = ""
    unit: str = ""

    def check(self) -> Sample:
        """This sample if it can be stored.

        Raises:
            InvalidSample: a bad name or unit, or a value that is not a finite number.
        """
        check_metric(self.metric)
        if self.entity:
            check_entity(self.entity)
        if not _UNIT.fullmatch(self.unit):
            raise InvalidSample(f"unit {self.unit!r}: at most 16 printable characters")
        if isinstance(self.value, bool) or not isinstance(self.value, int | float):
            raise InvalidSample(f"{self.metric}: value {self.value!r} is not a number")
        if not math.isfinite(self.value):
            raise InvalidSample(f"{self.metric}: value {self.value!r} is not finite")
        if self.kind == "counter" and self.value < 0:
            raise InvalidSample(f"{self.metric}: a counter only goes up; got {self.value!r}")
        return self


class Tier(msgspec.Struct, frozen=True):
    """One level of history: a point every ``step`` seconds (0: every sample as sent),
    each kept ``keep`` seconds."""

    step: float
    keep: float

    @property
    def name(self) -> str:
        return "raw" if self.step == 0 else f"{self.step:g}s"


def parse_seconds(text: str, what: str) -> float:
    match = _DURATION.fullmatch(text)
    if not match:
        raise ValueError(f"{what}: {text!r} is not a duration (like 0, 60, '1m', '1h', '30d')")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_tiers(text: str) -> tuple[Tier, ...]:
    """Tiers from ``"0:1h,1m:1d,15m:30d"``: finest first, each coarser and kept longer.

    Raises:
        ValueError: the text does not describe such tiers.
    """
    tiers: list[Tier] = []
    for part in text.split(","):
        step_text, sep, keep_text = part.partition(":")
        if not sep:
            raise ValueError(f"history tier {part.strip()!r}: write step:kept, like 1m:1d")
        tier = Tier(parse_seconds(step_text, "tier step"), parse_seconds(keep_text, "tier kept"))
        if tier.keep <= 0 or (tier.step and tier.step < 1):
            raise ValueError(f"history tier {part.strip()!r}: steps of 1 s or more, kept > 0")
        if tiers and (tier.step <= tiers[-1].step or tier.keep < tiers[-1].keep):
            raise ValueError("history tiers go from fine to coarse, each kept at least as long")
        tiers.append(tier)
    return tuple(tiers)


def flatten(snapshot: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, float]]:
    """Every finite number in a (host) snapshot by dotted path; lists and the snapshot's
    own ``time`` and ``interval`` are left out (per-core and per-mount lists would make a
    series each, for figures the snapshot already sums up)."""
    for key, value in snapshot.items():
        if not prefix and key in ("time", "interval", "host"):
            continue
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from flatten(value, path + ".")
        elif (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and _METRIC.fullmatch(path)
        ):
            yield path, float(value)


def unit_of(path: str) -> str:
    """The unit of a host snapshot's field, from its name."""
    if path.endswith("percent"):
        return "%"
    if path.endswith("bytes_per_s"):
        return "B/s"
    if path.endswith("_per_s"):
        return "/s"
    if path.split(".")[0] in ("memory", "swap") and not path.endswith("percent"):
        return "B"
    if path == "uptime":
        return "s"
    return ""
