"""Alerts a service raises and resolves itself, silences, and "evaluate now" (under ``/api``).

- ``POST /api/alerts``: raise ``{"rule", "source", "entity"?, "severity"?, "message", "value"?}``;
  the alert is ``<rule>@<source>`` (or ``<rule>@<source>[<entity>]``), like a rule's;
- ``POST /api/alerts/resolve``: resolve it (``{"rule", "source", "entity"?, "note"?}``);
- ``POST /api/alerts/silence``: ``{"rule"? | "alert"?, "duration", "by"}``: no raise of
  that rule (any subject) or that alert fingerprint for the duration; logged on ``alerts``;
- ``POST /api/alerts/evaluate``: every alerts process evaluates its rules now; the answer
  says how many heard it.
"""

from __future__ import annotations

import re
import time
from typing import Any, Literal

import msgspec
from starlette.requests import Request
from starlette.routing import Route

from gateway.api import Api, _body, _endpoint, _Fail, _limit
from shared.state.alerts import Alert, evaluate_channel
from shared.state.series import InvalidSample, check_entity, check_source, parse_seconds

__all__ = ["routes"]

_RULE = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_SILENCE = 30 * 86400.0


class OwnAlert(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    rule: str
    source: str
    entity: str = ""
    severity: Literal["info", "warning", "critical"] = "warning"
    message: str = ""
    value: float = 0.0


class OwnResolve(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    rule: str
    source: str
    entity: str = ""
    note: str | None = None


class Silence(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    duration: str | float
    by: str
    rule: str = ""
    alert: str = ""
    """An alert's fingerprint, ``<rule>@<source>``."""


def _subject(rule: str, source: str, entity: str) -> str:
    """The alert's "host": the source, or ``source[entity]``; checked."""
    try:
        check_source(source)
        if entity:
            check_entity(entity)
    except InvalidSample as exc:
        raise _Fail(422, "invalid_body", str(exc)) from exc
    if not _RULE.fullmatch(rule):
        raise _Fail(422, "invalid_body", "rule must be 1-64 of A-Z a-z 0-9 _ -")
    return f"{source}[{entity}]" if entity else source


async def _raise(request: Request, api: Api) -> Any:
    body = await _body(request, OwnAlert, _limit(api))
    subject = _subject(body.rule, body.source, body.entity)
    now = time.time()
    alert = Alert(
        id=f"{body.rule}@{subject}:{int(now * 1000)}",
        rule=body.rule,
        host=subject,
        severity=body.severity,
        message=body.message[:1000] or f"{body.rule} on {subject}",
        metric="",
        op="",
        threshold=0.0,
        clear=0.0,
        value=body.value if body.value == body.value else 0.0,
        raised_at=now,
    )
    raised, current = await api.alerts.raise_alert(alert)
    if raised:
        return {"raised": True, "alert": alert}
    return {"raised": False, "alert": current, "why": "active already" if current else "silenced"}


async def _resolve(request: Request, api: Api) -> Any:
    body = await _body(request, OwnResolve, _limit(api))
    subject = _subject(body.rule, body.source, body.entity)
    return await api.alerts.resolve_fingerprint(f"{body.rule}@{subject}", body.note)


async def _silence(request: Request, api: Api) -> Any:
    body = await _body(request, Silence, _limit(api))
    if bool(body.rule) == bool(body.alert):
        raise _Fail(422, "invalid_body", "name a rule or an alert (its fingerprint), not both")
    if body.rule and not _RULE.fullmatch(body.rule):
        raise _Fail(422, "invalid_body", "rule must be 1-64 of A-Z a-z 0-9 _ -")
    if body.alert and (len(body.alert) > 300 or "@" not in body.alert):
        raise _Fail(422, "invalid_body", "alert must be a fingerprint like cpu_high@web-1")
    if not body.by.strip() or len(body.by) > 100:
        raise _Fail(422, "invalid_body", "by must say who silences (1-100 characters)")
    try:
        if isinstance(body.duration, str):
            seconds = parse_seconds(body.duration, "duration")
        else:
            seconds = float(body.duration)
    except ValueError as exc:
        raise _Fail(422, "invalid_body", str(exc)) from exc
    if not 0 < seconds <= MAX_SILENCE:
        raise _Fail(422, "invalid_body", "duration must be more than 0 and at most 30 days")
    return await api.alerts.silence(
        rule=body.rule, fingerprint=body.alert, seconds=seconds, by=body.by.strip()
    )


async def _evaluate(request: Request, api: Api) -> Any:
    redis = api.need_redis()
    _ = api.alerts  # one server or Sentinel, as alerts need
    heard = await redis.publish(evaluate_channel(api.settings.key_prefix), b"now")
    return {"listeners": int(heard)}


routes = [
    Route("/api/alerts", _endpoint(_raise), methods=["POST"]),
    Route("/api/alerts/resolve", _endpoint(_resolve), methods=["POST"]),
    Route("/api/alerts/silence", _endpoint(_silence), methods=["POST"]),
    Route("/api/alerts/evaluate", _endpoint(_evaluate), methods=["POST"]),
]
"""Mounted by :func:`gateway.app.create_app` beside :data:`gateway.api.routes`."""
