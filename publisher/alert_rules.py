"""Alert rules: the TOML file, and judging each host's samples against them (no I/O).

A rules file is a list of ``[[rules]]`` tables::

    [[rules]]
    name = "cpu_high"            # 1-64 of A-Z a-z 0-9 _ -; names the alert
    metric = "cpu.percent"       # dotted path into a host snapshot (list items by index)
    op = ">"                     # > >= < <=
    threshold = 90
    for = "60s"                  # the condition must hold this long: "90s", "5m", "1h" or seconds
    clear = 80                   # resolves once the value is back past this (default: threshold)
    clear_for = "30s"            # ... for this long (default: at once)
    severity = "warning"         # info | warning | critical
    message = "CPU {value:.0f}% on {host}"   # optional; fields below
    hosts = ["web-*"]            # optional shell patterns of host names (default: all)
    per = "messages"             # optional: judge metric / per (a ratio, e.g. errors/messages)
    rate = "5m"                  # optional: judge the change per second over this window

A service's own metrics are judged like a host's: the source is the "host", and each
entity of it is one more, named ``<source>[<entity>]`` (one alert per entity that
crosses the line); its series are the snapshot's dotted paths.

Message fields: ``{rule} {host} {metric} {op} {value} {threshold} {clear} {for}
{severity}``. Durations count sample times (a snapshot's ``time``), so every alerts
process judges the same samples the same way.
"""

from __future__ import annotations

import contextlib
import fnmatch
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import msgspec

from shared.state.series import parse_seconds

__all__ = [
    "Evaluator",
    "Raise",
    "Resolve",
    "Rule",
    "RulesError",
    "Unsilence",
    "default_rules",
    "load_rules",
    "lookup",
    "parse_duration",
    "parse_rules",
]

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class RulesError(ValueError):
    """The rules file cannot be used; the message names the rule and the field."""


class Rule(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One rule; see the module docstring for the fields."""

    name: str
    metric: str
    threshold: float
    op: Literal[">", ">=", "<", "<="] = ">"
    for_seconds: float = msgspec.field(default=0.0, name="for")
    clear: float | None = None
    clear_for: float = 0.0
    severity: Literal["info", "warning", "critical"] = "warning"
    message: str = ""
    hosts: list[str] = msgspec.field(default_factory=lambda: ["*"])
    per: str = ""
    """Judge ``metric / per`` (skipped while ``per`` is 0)."""
    rate: float = 0.0
    """Judge the change per second of the value over this many seconds (0: the value)."""

    @property
    def clear_at(self) -> float:
        return self.threshold if self.clear is None else self.clear

    def breached(self, value: float) -> bool:
        """The condition holds for ``value``."""
        return _compare(value, self.op, self.threshold)

    def cleared(self, value: float) -> bool:
        """``value`` is back past the clear threshold."""
        return not _compare(value, self.op, self.clear_at)

    def applies_to(self, host: str) -> bool:
        return any(fnmatch.fnmatchcase(host, pattern) for pattern in self.hosts)

    def describe(self, host: str, value: float) -> str:
        """The alert message for ``host`` at ``value``."""
        fields = {
            "rule": self.name,
            "host": host,
            "metric": self.metric,
            "op": self.op,
            "value": value,
            "threshold": self.threshold,
            "clear": self.clear_at,
            "for": _human(self.for_seconds),
            "severity": self.severity,
        }
        if self.message:
            return self.message.format_map(fields)
        held = f" for {fields['for']}" if self.for_seconds else ""
        return f"{self.metric} {self.op} {self.threshold:g}{held} on {host} (now {value:g})"


def _compare(value: float, op: str, limit: float) -> bool:
    if op == ">":
        return value > limit
    if op == ">=":
        return value >= limit
    if op == "<":
        return value < limit
    return value <= limit


def _human(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def parse_duration(value: object, what: str = "duration") -> float:
    """Seconds from ``90``, ``"90s"``, ``"5m"``, ``"1h"``, ``"250ms"``.

    Raises:
        RulesError: not a duration.
    """
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            seconds = parse_seconds(value, what)
    if seconds is None:
        raise RulesError(f"{what}: {value!r} is not a duration (like 30, '90s', '5m', '1h')")
    if not math.isfinite(seconds) or seconds < 0:
        raise RulesError(f"{what}: a duration must be >= 0, got {value!r}")
    return seconds


def parse_rules(document: Mapping[str, Any], source: str = "rules") -> list[Rule]:
    """Rules from a parsed TOML document.

    Raises:
        RulesError: a rule is malformed, or two share a name.
    """
    unknown = set(document) - {"rules"}
    if unknown:
        raise RulesError(f"{source}: unknown top-level keys {sorted(unknown)}; use [[rules]]")
    tables = document.get("rules", [])
    if not isinstance(tables, list):
        raise RulesError(f"{source}: 'rules' must be an array of tables ([[rules]])")
    rules: list[Rule] = []
    for number, table in enumerate(tables, 1):
        label = f"{source}: rule {table.get('name', number)!r}"
        raw = dict(table)
        for key in ("for", "clear_for", "rate"):
            if key in raw:
                raw[key] = parse_duration(raw[key], f"{label}: {key}")
        try:
            rule = msgspec.convert(raw, Rule)
        except msgspec.ValidationError as exc:
            raise RulesError(f"{label}: {exc}") from exc
        _check(rule, label)
        if any(r.name == rule.name for r in rules):
            raise RulesError(f"{label}: the name is used twice")
        rules.append(rule)
    return rules


def _check(rule: Rule, label: str) -> None:
    if not _NAME.fullmatch(rule.name):
        raise RulesError(f"{label}: name must be 1-64 of A-Z a-z 0-9 _ -")
    if not rule.metric or any(not part for part in rule.metric.split(".")):
        raise RulesError(f"{label}: metric must be a dotted path like 'cpu.percent'")
    if not math.isfinite(rule.threshold) or not math.isfinite(rule.clear_at):
        raise RulesError(f"{label}: threshold and clear must be finite numbers")
    if rule.op in (">", ">=") and rule.clear_at > rule.threshold:
        raise RulesError(f"{label}: with op {rule.op!r}, clear must be <= threshold")
    if rule.op in ("<", "<=") and rule.clear_at < rule.threshold:
        raise RulesError(f"{label}: with op {rule.op!r}, clear must be >= threshold")
    if rule.per and any(not part for part in rule.per.split(".")):
        raise RulesError(f"{label}: per must be a dotted path like 'messages'")
    if not rule.hosts:
        raise RulesError(f"{label}: hosts must list at least one pattern")
    try:
        rule.describe("host", 1.0)
    except (KeyError, ValueError, IndexError) as exc:
        raise RulesError(f"{label}: message template: {exc!r}") from exc


def load_rules(path: str | Path) -> list[Rule]:
    """Rules from a TOML file.

    Raises:
        RulesError: unreadable, not TOML, or a malformed rule.
    """
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise RulesError(f"cannot read rules file {path}: {exc}") from exc
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{path}: not valid TOML: {exc}") from exc
    return parse_rules(document, str(path))


def default_rules() -> list[Rule]:
    """The rules shipped in ``publisher/default_alerts.toml``."""
    text = resources.files("publisher").joinpath("default_alerts.toml").read_text()
    return parse_rules(tomllib.loads(text), "default_alerts.toml")


def lookup(snapshot: Any, path: str) -> float | None:
    """The number at dotted ``path`` in a snapshot (list items by index), or None."""
    value = snapshot
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, Sequence) and not isinstance(value, str) and part.isdigit():
            index = int(part)
            value = value[index] if index < len(value) else None
        else:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


# --- judging -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Raise:
    """The rule's condition held for its duration on ``host``."""

    rule: Rule
    host: str
    value: float
    time: float


@dataclass(frozen=True, slots=True)
class Resolve:
    """The active alert ``fingerprint`` cleared (past its clear threshold, long enough)."""

    fingerprint: str
    value: float
    time: float


@dataclass(frozen=True, slots=True)
class Unsilence:
    """The condition of ``fingerprint`` is clear: an alert resolved by hand may come back."""

    fingerprint: str


Action = Raise | Resolve | Unsilence


@dataclass(slots=True)
class _Tracker:
    last: float | None = None
    breached_since: float | None = None
    cleared_since: float | None = None
    maybe_silenced: bool = True
    seen: list[tuple[float, float]] = field(default_factory=list)
    """(sample time, value) over the rule's rate window."""


def _value(rule: Rule, snapshot: Any) -> float | None:
    """What the rule judges in ``snapshot``: the metric, or its ratio to ``per``."""
    value = lookup(snapshot, rule.metric)
    if value is None or not rule.per:
        return value
    base = lookup(snapshot, rule.per)
    return None if not base else value / base


def _rate(rule: Rule, tracker: _Tracker, value: float, sampled: float) -> float | None:
    """The change per second over the rule's window; None until the window is covered."""
    tracker.seen.append((sampled, value))
    while len(tracker.seen) > 1 and tracker.seen[1][0] <= sampled - rule.rate:
        tracker.seen.pop(0)
    then, old = tracker.seen[0]
    if sampled - then < rule.rate * 0.9 or sampled == then:
        return None
    return (value - old) / (sampled - then)


@dataclass
class Evaluator:
    """Judges host snapshots against rules, remembering how long each condition held."""

    rules: list[Rule]
    stale_factor: float = 3.0
    _trackers: dict[str, _Tracker] = field(default_factory=dict)

    def judge(self, snapshots: Mapping[str, Any], active: set[str], now: float) -> list[Action]:
        """What to do after the newest ``snapshots`` (host -> decoded snapshot), given the
        fingerprints of the ``active`` alerts. A stale snapshot (older than three of its
        ``interval``) is not judged: no data is neither a breach nor a clear."""
        actions: list[Action] = []
        for host, snapshot in snapshots.items():
            sampled = lookup(snapshot, "time")
            if sampled is None:
                continue
            interval = lookup(snapshot, "interval") or 60.0
            stale = now - sampled > self.stale_factor * interval
            for rule in self.rules:
                if not rule.applies_to(host):
                    continue
                fingerprint = f"{rule.name}@{host}"
                value = _value(rule, snapshot)
                if stale or value is None:
                    self._trackers.pop(fingerprint, None)
                    continue
                tracker = self._trackers.setdefault(fingerprint, _Tracker())
                if tracker.last == sampled:
                    continue  # judged this sample already
                tracker.last = sampled
                if rule.rate:
                    value = _rate(rule, tracker, value, sampled)
                    if value is None:
                        continue
                action = self._step(rule, host, fingerprint, tracker, value, sampled, active)
                if action is not None:
                    actions.append(action)
        return actions

    def _step(
        self,
        rule: Rule,
        host: str,
        fingerprint: str,
        tracker: _Tracker,
        value: float,
        sampled: float,
        active: set[str],
    ) -> Action | None:
        if fingerprint in active:
            tracker.breached_since = None
            if not rule.cleared(value):
                tracker.cleared_since = None
                return None
            if tracker.cleared_since is None:
                tracker.cleared_since = sampled
            if sampled - tracker.cleared_since >= rule.clear_for:
                tracker.cleared_since = None
                return Resolve(fingerprint, value, sampled)
            return None
        tracker.cleared_since = None
        if not rule.breached(value):
            tracker.breached_since = None
            if tracker.maybe_silenced and rule.cleared(value):
                tracker.maybe_silenced = False
                return Unsilence(fingerprint)
            return None
        tracker.maybe_silenced = True
        if tracker.breached_since is None:
            tracker.breached_since = sampled
        if sampled - tracker.breached_since >= rule.for_seconds:
            return Raise(rule, host, value, sampled)
        return None
