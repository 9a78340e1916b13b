"""Which change fits which task: the rules of a task's life, with no I/O.

:func:`create` builds a new task's state; :func:`apply` takes a task's current state and
one change and returns the new state and the event announcing it, or raises a
:class:`~shared.state.tasks.TaskError` saying what is wrong. Nothing is modified in place.

Life of a task::

    queued --start--> running <--pause / resume--> paused
    queued, running or paused --complete--> completed
                              --fail------> failed
                              --cancel----> cancelled      (final: no more changes)

A phase of a workflow starts, progresses and ends (complete, fail, cancel) only while its
workflow runs; failing or cancelling the workflow ends its unfinished phases with it, and
a workflow completes only once every phase has ended.
"""

from __future__ import annotations

import math
import re
import secrets

import msgspec

from shared.state.tasks import (
    FINAL,
    LOG_LEVELS,
    LOG_LINE_LIMIT,
    Cancel,
    Change,
    Complete,
    Create,
    Fail,
    InvalidTask,
    InvalidTransition,
    Log,
    Pause,
    PhaseState,
    Progress,
    Resume,
    Start,
    TaskEvent,
    TaskState,
    TaskStatus,
    check_id,
)

__all__ = ["apply", "create"]

_SHORT = 200  # names, types, step names
_LONG = 4000  # messages, errors
_OWNER = re.compile(r"[A-Za-z0-9_.@-]{1,64}")  # a user id, as in shared.state.notifications
_TAGS = 16  # tags per task
_encode = msgspec.json.Encoder().encode


def _text(value: str | None, what: str, limit: int) -> str | None:
    if value is not None and len(value) > limit:
        raise InvalidTask(f"{what} is {len(value)} characters; the limit is {limit}")
    return value


def _number(value: float, what: str, low: float, high: float = math.inf) -> float:
    if isinstance(value, bool) or not math.isfinite(value) or not low <= value <= high:
        bounds = f"{low:g}-{high:g}" if math.isfinite(high) else f">= {low:g}"
        raise InvalidTask(f"{what} must be a number in {bounds}, got {value!r}")
    return float(value)


def _steps(value: int | None) -> int | None:
    if value is not None and (isinstance(value, bool) or value < 1):
        raise InvalidTask(f"total_steps must be a whole number >= 1, got {value!r}")
    return value


def create(change: Create, now: float) -> tuple[TaskState, TaskEvent]:
    """The state of a new task and its ``queued`` event.

    Raises:
        InvalidTask: a field is malformed.
    """
    project = check_id(change.project, "project")
    task_id = check_id(change.id or secrets.token_hex(6), "task id")
    phases: list[PhaseState] = []
    for spec in change.phases or ():
        if not spec.name or len(spec.name) > 64:
            raise InvalidTask(f"phase names are 1-64 characters, got {spec.name!r}")
        if any(p.name == spec.name for p in phases):
            raise InvalidTask(f"phase {spec.name!r} is listed twice")
        weight = _number(spec.weight, f"weight of phase {spec.name!r}", 0.0)
        phases.append(PhaseState(name=spec.name, weight=weight))
    if change.phases is not None and not phases:
        raise InvalidTask("a workflow needs at least one phase")
    state = TaskState(
        id=task_id,
        project=project,
        kind="workflow" if phases else "task",
        type=_text(change.type, "type", _SHORT) or "task",
        name=_text(change.name, "name", _SHORT) or task_id,
        total_steps=_steps(change.total_steps),
        metadata=change.metadata,
        tags=_tags(change.tags),
        group=None if change.group is None else check_id(change.group, "group id"),
        phases=phases,
        owner=_owner(change.owner),
        created_at=now,
        updated_at=now,
    )
    return state, _event(state, "queued", now)


def _owner(owner: str | None) -> str | None:
    if owner is not None and not _OWNER.fullmatch(owner):
        raise InvalidTask(f"invalid owner {owner!r}: use 1-64 of A-Z a-z 0-9 _ - . @")
    return owner


def _tags(tags: list[str]) -> list[str]:
    if len(tags) > _TAGS:
        raise InvalidTask(f"a task has at most {_TAGS} tags, got {len(tags)}")
    return sorted({check_id(tag, "tag") for tag in tags})


def apply(state: TaskState, change: Change, now: float) -> tuple[TaskState | None, TaskEvent]:
    """The state after ``change`` (None when it changes nothing) and its event.

    ``state`` is not modified.

    Raises:
        InvalidTask: a field is malformed.
        InvalidTransition: the change does not fit the task's status.
    """
    if state.status in FINAL:
        what = type(change).__name__.lower()
        raise InvalidTransition(
            f"{state.kind} {state.id!r} has finished ({state.status}); "
            f"it takes no more changes ({what} refused)"
        )
    if isinstance(change, Log):
        return None, _log(state, change, now)
    new = msgspec.structs.replace(
        state,
        phases=[msgspec.structs.replace(p) for p in state.phases],
        updated_at=now,
        version=state.version + 1,
    )
    phase_name = getattr(change, "phase", None)
    if phase_name is not None:
        kind = _change_phase(new, _phase(new, phase_name), change, now)
        new.percent = _overall(new.phases)
        new.eta_seconds = _eta(new, now)
        return new, _event(new, kind, now, phase=phase_name)
    kind = _change_task(new, change, now)
    new.eta_seconds = _eta(new, now)
    return new, _event(new, kind, now)


def _start(unit: TaskState | PhaseState, name: str, change: Start, now: float, what: str) -> None:
    if unit.status is not TaskStatus.QUEUED:
        raise InvalidTransition(f"{name} is {unit.status}; only a queued {what} starts")
    unit.status, unit.started_at = TaskStatus.RUNNING, now
    unit.message = _text(change.message, "message", _LONG)


def _change_task(new: TaskState, change: Change, now: float) -> str:
    status = new.status
    name = f"{new.kind} {new.id!r}"
    match change:
        case Start():
            _start(new, name, change, now, "task")
            return "started"
        case Progress():
            if new.kind == "workflow":
                raise InvalidTransition(
                    f"{name} is a workflow: report progress of one of its phases "
                    f"({', '.join(p.name for p in new.phases)})"
                )
            _require_running(name, status, "report progress")
            _progress(new, change)
            return "progress"
        case Pause():
            _require_running(name, status, "pause")
            new.status, new.paused_at = TaskStatus.PAUSED, now
            new.message = _text(change.message, "message", _LONG)
            return "paused"
        case Resume():
            if status is not TaskStatus.PAUSED:
                raise InvalidTransition(f"{name} is {status}; only a paused task resumes")
            new.paused_seconds += now - (new.paused_at or now)
            new.status, new.paused_at = TaskStatus.RUNNING, None
            new.message = _text(change.message, "message", _LONG)
            return "resumed"
        case Complete():
            for phase in new.phases:
                if phase.status not in FINAL:
                    raise InvalidTransition(
                        f"{name}: phase {phase.name!r} is {phase.status}; "
                        "complete or cancel it first"
                    )
            _finish(new, TaskStatus.COMPLETED, now)
            new.percent = 100.0
            if new.total_steps is not None:
                new.step = new.total_steps
            new.result = change.result
            new.message = _text(change.message, "message", _LONG)
            return "completed"
        case Fail():
            new.error = _text(change.error, "error", _LONG) or "failed"
            _finish(new, TaskStatus.FAILED, now)
            return "failed"
        case Cancel():
            new.message = _text(change.reason, "reason", _LONG)
            _finish(new, TaskStatus.CANCELLED, now)
            return "cancelled"
    raise InvalidTask(f"unknown change {change!r}")  # pragma: no cover - exhaustive


def _change_phase(new: TaskState, phase: PhaseState, change: Change, now: float) -> str:
    status = phase.status
    name = f"phase {phase.name!r} of workflow {new.id!r}"
    if status in FINAL:
        raise InvalidTransition(f"{name} is {status}; it takes no more changes")
    if new.status is not TaskStatus.RUNNING:
        raise InvalidTransition(
            f"workflow {new.id!r} is {new.status}; its phases change only while it runs"
        )
    match change:
        case Start():
            _start(phase, name, change, now, "phase")
            new.phase = phase.name
            return "phase_started"
        case Progress():
            _require_running(name, status, "report progress")
            _progress(phase, change)
            return "progress"
        case Complete():
            _require_running(name, status, "complete")
            phase.status, phase.finished_at, phase.percent = TaskStatus.COMPLETED, now, 100.0
            phase.message = _text(change.message, "message", _LONG)
            return "phase_completed"
        case Fail():
            phase.status, phase.finished_at = TaskStatus.FAILED, now
            phase.error = _text(change.error, "error", _LONG) or "failed"
            return "phase_failed"
        case Cancel():
            phase.status, phase.finished_at = TaskStatus.CANCELLED, now
            phase.message = _text(change.reason, "reason", _LONG)
            return "phase_cancelled"
    raise InvalidTask(f"{type(change).__name__.lower()} applies to the whole workflow, not a phase")


def _require_running(name: str, status: TaskStatus, what: str) -> None:
    if status is not TaskStatus.RUNNING:
        hint = "; start it first" if status is TaskStatus.QUEUED else ""
        raise InvalidTransition(f"{name} is {status}; cannot {what}{hint}")


def _progress(target: TaskState | PhaseState, change: Progress) -> None:
    if change.percent is None and change.step is None:
        raise InvalidTask("progress needs percent and/or step")
    total = _steps(change.total_steps) or target.total_steps
    if change.step is not None:
        if isinstance(change.step, bool) or change.step < 0:
            raise InvalidTask(f"step must be a whole number >= 0, got {change.step!r}")
        if total is not None and change.step > total:
            raise InvalidTask(f"step {change.step} is past total_steps {total}")
    if change.percent is not None:
        percent = _number(change.percent, "percent", 0.0, 100.0)
    elif total:
        percent = 100.0 * (change.step or 0) / total
    else:
        raise InvalidTask("progress with a step but no percent needs total_steps")
    target.percent = round(percent, 3)
    target.total_steps = total
    if change.step is not None:
        target.step = change.step
    if change.step_name is not None:
        target.step_name = _text(change.step_name, "step_name", _SHORT)
    if change.message is not None:
        target.message = _text(change.message, "message", _LONG)


def _finish(new: TaskState, status: TaskStatus, now: float) -> None:
    if new.paused_at is not None:
        new.paused_seconds += now - new.paused_at
        new.paused_at = None
    new.status, new.finished_at = status, now
    if new.started_at is None:
        new.started_at = now
    for phase in new.phases:
        if phase.status not in FINAL:  # a failed or cancelled workflow ends its phases
            phase.status = status
            phase.finished_at = now


def _phase(state: TaskState, name: str) -> PhaseState:
    if state.kind != "workflow":
        raise InvalidTask(f"task {state.id!r} has no phases (it is not a workflow)")
    for phase in state.phases:
        if phase.name == name:
            return phase
    names = ", ".join(repr(p.name) for p in state.phases)
    raise InvalidTask(f"workflow {state.id!r} has no phase {name!r} (phases: {names})")


def _overall(phases: list[PhaseState]) -> float:
    counted = [p for p in phases if p.status is not TaskStatus.CANCELLED]
    total = sum(p.weight for p in counted)
    if not total:
        return 100.0 if phases else 0.0
    done = sum(
        p.weight * (100.0 if p.status is TaskStatus.COMPLETED else p.percent) for p in counted
    )
    return round(done / total, 3)


def _eta(state: TaskState, now: float) -> float | None:
    if state.status in FINAL:
        return 0.0 if state.status is TaskStatus.COMPLETED else None
    if state.status is not TaskStatus.RUNNING or state.started_at is None:
        return None
    elapsed = now - state.started_at - state.paused_seconds
    if state.percent <= 0 or elapsed <= 0:
        return None
    return round(elapsed * (100.0 - state.percent) / state.percent, 1)


def _event(state: TaskState, what: str, now: float, phase: str | None = None) -> TaskEvent:
    return TaskEvent(
        type=f"{state.kind}.{what}",
        time=now,
        project=state.project,
        id=state.id,
        task=state,
        phase=phase,
    )


def _log(state: TaskState, change: Log, now: float) -> TaskEvent:
    if change.level not in LOG_LEVELS:
        raise InvalidTask(f"log level must be one of {', '.join(LOG_LEVELS)}, got {change.level!r}")
    if change.phase is not None:
        _phase(state, change.phase)
    return TaskEvent(
        type=f"{state.kind}.log",
        time=now,
        project=state.project,
        id=state.id,
        phase=change.phase,
        level=change.level,
        message=_text(change.message, "log line", LOG_LINE_LIMIT),
        fields=_fields(change.fields),
    )


def _fields(fields: dict[str, object] | None) -> dict[str, object] | None:
    if not fields:
        return None
    try:
        size = len(_encode(fields))
    except (TypeError, msgspec.EncodeError) as exc:
        raise InvalidTask(f"log fields are not JSON-encodable: {exc}") from exc
    if size > LOG_LINE_LIMIT:
        raise InvalidTask(f"log fields are {size} bytes as JSON; the limit is {LOG_LINE_LIMIT}")
    return fields
