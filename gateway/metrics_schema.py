"""The OpenAPI description of metrics of one's own, metric history, alerts a service raises,
silences, "evaluate now" and the event log (:mod:`gateway.api_metrics`,
:mod:`gateway.api_alerts`, :mod:`gateway.api_events`), part of the document
:func:`gateway.api_schema.openapi_document` serves.

Request bodies are the Structs those modules decode; the answers they build as dicts are
described by the Structs here, so both come out of msgspec like the rest of the document.
The naming rules of :mod:`shared.state.series` are written in as patterns, so a
schema-driven client (or fuzzer) makes only names the API takes.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.api_alerts import MAX_SILENCE, OwnAlert, OwnResolve, Silence
from gateway.api_events import MAX_LIMIT
from gateway.api_metrics import MetricsBatch
from gateway.api_schema import CHANNEL_RULE, _errors, _json, _path, _ref
from shared.state.alerts import Alert, AlertSilenced
from shared.state.history import MAX_BATCH, MAX_VALUE, History, SourceInfo
from shared.state.metrics import SeriesInfo

__all__ = [
    "ENTITY_RULE",
    "METRICS_KINDS",
    "METRIC_RULE",
    "RULE_RULE",
    "SOURCE_RULE",
    "apply_metrics_rules",
    "metrics_paths",
]


class MetricsAccepted(msgspec.Struct, kw_only=True):
    """A batch stored: the source's series count, and where its snapshot was published."""

    source: str
    series: int
    channel: str
    offset: int
    epoch: str


class SourceList(msgspec.Struct, kw_only=True):
    """Every source with history."""

    sources: list[SourceInfo]


class SeriesList(msgspec.Struct, kw_only=True):
    """A source's series with their newest values."""

    source: str
    series: list[SeriesInfo]


class AlertRaised(msgspec.Struct, kw_only=True):
    """``raised``: whether this call raised it; if not, ``alert`` is the active one (null
    when silenced) and ``why`` says which."""

    raised: bool
    alert: Alert | None
    why: str | None = None


class Listeners(msgspec.Struct, kw_only=True):
    """How many alerts processes heard "evaluate now"."""

    listeners: int


class Event(msgspec.Struct, kw_only=True):
    """One event of a channel's history; ``type`` is its JSON ``type`` (null: none)."""

    offset: int
    time: float
    type: str | None
    data: Any


class EventPage(msgspec.Struct, kw_only=True):
    """A page of events, newest first; ``next_before`` fetches the older page (null: no
    more). ``offset`` and ``epoch`` are the channel's current position."""

    channel: str
    offset: int
    epoch: str
    events: list[Event]
    next_before: int | None


METRICS_KINDS: tuple[type[Any], ...] = (
    MetricsBatch,
    MetricsAccepted,
    SourceList,
    SeriesList,
    History,
    OwnAlert,
    OwnResolve,
    AlertRaised,
    Silence,
    AlertSilenced,
    Listeners,
    EventPage,
)

# shared.state.series' names as JSON Schema (ECMA regexes: "$" is the end).
SOURCE_RULE = {"type": "string", "pattern": "^[A-Za-z0-9_.:@-]{1,100}$", "minLength": 1,
               "maxLength": 100}  # fmt: skip
METRIC_RULE = {"type": "string", "pattern": "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$",
               "minLength": 1, "maxLength": 100}  # fmt: skip
ENTITY_RULE = {"type": "string", "pattern": "^[A-Za-z0-9_.:@-]{1,64}$", "minLength": 1,
               "maxLength": 64}  # fmt: skip
RULE_RULE = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$", "minLength": 1,
             "maxLength": 64}  # fmt: skip
_NO_ENTITY = {"type": "string", "pattern": "^([A-Za-z0-9_.:@-]{1,64})?$", "maxLength": 64,
              "default": "", "description": "An account, a queue...; empty: none"}  # fmt: skip
_DURATION = r"^\s*\d{1,7}(\.\d{1,3})?\s*(ms|s|m|h|d)?\s*$"


def apply_metrics_rules(components: dict[str, Any]) -> None:
    """Write the naming rules and bounds into the bodies of :data:`METRICS_KINDS`."""
    batch = components["MetricsBatch"]["properties"]
    batch["samples"].update(minItems=1, maxItems=MAX_BATCH)
    batch["interval"].update(minimum=0.001, maximum=86400)
    sample = components["Sample"]["properties"]
    sample["metric"] = METRIC_RULE
    sample["value"].update(minimum=-MAX_VALUE, maximum=MAX_VALUE)
    # A counter's increment: never negative, and small enough that its rate (over 1 ms
    # at least) and a batch's sum of it stay within MAX_VALUE.
    components["Sample"]["if"] = {
        "properties": {"kind": {"const": "counter"}},
        "required": ["kind"],
    }
    components["Sample"]["then"] = {"properties": {"value": {"minimum": 0, "maximum": 1e290}}}
    sample["entity"] = _NO_ENTITY
    sample["unit"] = {"type": "string", "pattern": "^[\\x20-\\x7e\\u00b0-\\u00ff]{0,16}$",
                      "maxLength": 16, "default": ""}  # fmt: skip
    for name in ("OwnAlert", "OwnResolve"):
        subject = components[name]["properties"]
        subject.update(rule=RULE_RULE, source=SOURCE_RULE, entity=_NO_ENTITY)
    components["OwnAlert"]["properties"]["message"]["maxLength"] = 1000
    silence = components["Silence"]
    silence["properties"].update(
        rule={**RULE_RULE, "description": "Silence this rule, for every subject"},
        alert={
            "type": "string",
            "pattern": "^[^@]{1,150}@.{1,149}$",
            "minLength": 3,
            "maxLength": 300,
            "description": "Silence one alert: its fingerprint,"
            " <rule>@<source> (like cpu_high@web-1)",
        },
        duration={
            "anyOf": [
                {"type": "string", "pattern": _DURATION, "description": "Like 90, 15m, 2h, 1d"},
                {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_SILENCE},
            ],
            "description": "How long (at most 30 days)",
        },
        by={"type": "string", "pattern": "\\S", "minLength": 1, "maxLength": 100},
    )
    silence["oneOf"] = [{"required": ["rule"]}, {"required": ["alert"]}]


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, "description": description}


def metrics_paths() -> dict[str, Any]:
    """The paths, each operation under its own path (``/api/metrics/{host}`` and
    ``/api/alerts`` also have a GET in :mod:`gateway.api_schema`: merge, do not replace)."""
    source = _path("source", "Source: 1-100 of A-Z a-z 0-9 _ . : @ -", SOURCE_RULE)
    seconds = {"type": "number", "minimum": 0, "maximum": 1e11}
    whole = {"type": "integer", "minimum": 1, "maximum": 2**62}
    return {
        "/api/metrics/{host}": {
            "post": {
                "summary": "A batch of a service's gauges and counters (counters become rates"
                " per second over interval); published on metrics.source.<source> and kept in"
                " history",
                "parameters": [
                    _path("host", "The source: 1-100 of A-Z a-z 0-9 _ . : @ -", SOURCE_RULE)
                ],
                "requestBody": {**_json(_ref(MetricsBatch), "The samples"), "required": True},
                "responses": {
                    "200": _json(_ref(MetricsAccepted), "Stored and published"),
                    **_errors(400, 413, 422, 503),
                },
            }
        },
        "/api/history": {
            "get": {
                "summary": "Every source with history (hosts and services)",
                "responses": {"200": _json(_ref(SourceList), "Sources"), **_errors(503)},
            }
        },
        "/api/history/{source}": {
            "get": {
                "summary": "A source's series with their newest values",
                "parameters": [source],
                "responses": {
                    "200": _json(_ref(SeriesList), "Series"),
                    **_errors(404, 422, 503),
                },
            }
        },
        "/api/history/{source}/{metric}": {
            "get": {
                "summary": "Points of one series over a time range; the tier is the finest"
                " with at most max_points points",
                "parameters": [
                    source,
                    _path(
                        "metric",
                        "Metric: 1-100 of A-Z a-z 0-9 _ . - (not starting with . or -)",
                        METRIC_RULE,
                    ),
                    _query("entity", "The series of this entity", ENTITY_RULE),
                    _query("start", "From (Unix seconds; default: an hour before end)", seconds),
                    _query("end", "Until (Unix seconds; default now)", seconds),
                    _query(
                        "range",
                        "The span before end, instead of start",
                        {"type": "string", "enum": ["1h", "6h", "1d", "7d", "30d"]},
                    ),
                    _query(
                        "max_points",
                        "At most this many points (default and limit:"
                        " RELAYCAST_HISTORY_MAX_POINTS)",
                        {"type": "integer", "minimum": 1, "maximum": 5000},
                    ),
                    _query(
                        "step",
                        "At least this many seconds per point",
                        {"type": "number", "minimum": 0, "maximum": 1e7},
                    ),
                ],
                "responses": {
                    "200": _json(_ref(History), "Points [time, avg, min, max]"),
                    **_errors(404, 422, 503),
                },
            }
        },
        "/api/alerts": {
            "post": {
                "summary": "Raise a service's own alert, <rule>@<source>[<entity>]; published"
                " on alerts",
                "requestBody": {**_json(_ref(OwnAlert), "The alert"), "required": True},
                "responses": {
                    "200": _json(_ref(AlertRaised), "Raised, or why not"),
                    **_errors(400, 413, 422, 503),
                },
            }
        },
        "/api/alerts/resolve": {
            "post": {
                "summary": "Resolve a service's own alert",
                "requestBody": {**_json(_ref(OwnResolve), "Which alert"), "required": True},
                "responses": {
                    "200": _json(_ref(Alert), "The resolved alert"),
                    **_errors(400, 404, 413, 422, 503),
                },
            }
        },
        "/api/alerts/silence": {
            "post": {
                "summary": "Raise no alert of a rule, or of one fingerprint, for a while;"
                " logged on alerts",
                "requestBody": {
                    **_json(_ref(Silence), "What, how long, by whom"),
                    "required": True,
                },
                "responses": {
                    "200": _json(_ref(AlertSilenced), "Silenced until"),
                    **_errors(400, 413, 422, 503),
                },
            }
        },
        "/api/alerts/evaluate": {
            "post": {
                "summary": "Every alerts process evaluates its rules now",
                "responses": {"200": _json(_ref(Listeners), "How many heard it"), **_errors(503)},
            }
        },
        "/api/events/{channel}": {
            "get": {
                "summary": "The recent events of a channel that keeps history (alerts: raised,"
                " resolved, silenced), newest first, paged",
                "parameters": [
                    _path("channel", "Channel: 1-128 of A-Z a-z 0-9 _ . : @ -", CHANNEL_RULE),
                    _query(
                        "limit",
                        "Offsets read per page (default 50)",
                        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                    ),
                    _query("before", "The next_before of the page before", whole),
                    _query(
                        "type",
                        "Only events of this JSON type (like alert.raised)",
                        {"type": "string", "maxLength": 100},
                    ),
                    _query("since", "Published at or after (Unix seconds)", seconds),
                    _query("until", "Published at or before (Unix seconds)", seconds),
                ],
                "responses": {
                    "200": _json(_ref(EventPage), "Events"),
                    **_errors(422, 503),
                },
            }
        },
    }
