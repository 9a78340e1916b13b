"""Tasks and workflows: their state, their events, the changes a caller may ask for.

The Structs here are the contract: :class:`TaskState` is what ``tasks.<p>.<id>@state``
carries and the API returns, :class:`TaskEvent` what ``tasks.<p>`` and ``tasks.<p>.<id>``
carry, and the change Structs (:class:`Start`, :class:`Progress`, ...) are the request
bodies of the HTTP task API. :mod:`shared.state.task_lifecycle` says which change fits
which state; :mod:`shared.state.task_store` keeps the state in Redis.

A workflow is a task with named phases (``kind="workflow"``). Each phase lives like a
task while its workflow runs, and the workflow's percent is the weighted mean of its
phases' (cancelled phases do not count).

Errors::

    TaskError (ValueError)
    ├── InvalidTask        a malformed field: percent outside 0-100, bad id, ...
    ├── UnknownTask        no such task (never created, or expired)
    ├── TaskExists         create with an id that is taken
    └── InvalidTransition  the change does not fit the task's status
"""

from __future__ import annotations

import enum
import re
from typing import Any, Literal

import msgspec

__all__ = [
    "FINAL",
    "LOG_LEVELS",
    "LOG_LINE_LIMIT",
    "Cancel",
    "Change",
    "Complete",
    "Create",
    "Fail",
    "GroupState",
    "InvalidTask",
    "InvalidTransition",
    "Log",
    "LogLine",
    "Pause",
    "PhaseSpec",
    "PhaseState",
    "Progress",
    "Resume",
    "Start",
    "TaskError",
    "TaskEvent",
    "TaskExists",
    "TaskState",
    "TaskStatus",
    "UnknownTask",
    "check_id",
]

PROJECT_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
TASK_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
TAG = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_LINE_LIMIT = 4000
"""Characters of one log line, and bytes of its fields as JSON; longer lines are refused."""


class TaskError(ValueError):
    """A task change that cannot be made; nothing was written or published."""

    code = "invalid_task"


class InvalidTask(TaskError):
    """A field is malformed or out of range."""


class UnknownTask(TaskError, LookupError):
    """No task with this id in this project (never created, or its state expired)."""

    code = "unknown_task"


class TaskExists(TaskError):
    """A task with this id already exists in this project."""

    code = "task_exists"


class InvalidTransition(TaskError):
    """The change does not fit the task's status (progress after completion, ...)."""

    code = "invalid_transition"


class TaskStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})


# --- state ---------------------------------------------------------------------------------


class PhaseState(msgspec.Struct, kw_only=True):
    """One phase of a workflow."""

    name: str
    weight: float = 1.0
    status: TaskStatus = TaskStatus.QUEUED
    percent: float = 0.0
    step: int | None = None
    total_steps: int | None = None
    step_name: str | None = None
    message: str | None = None
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None


class TaskState(msgspec.Struct, kw_only=True):
    """Where a task (or workflow) stands. Times are seconds since the epoch."""

    id: str
    project: str
    kind: Literal["task", "workflow"] = "task"
    type: str = "task"
    name: str
    status: TaskStatus = TaskStatus.QUEUED
    percent: float = 0.0
    step: int | None = None
    total_steps: int | None = None
    step_name: str | None = None
    message: str | None = None
    metadata: dict[str, Any] = {}
    owner: str | None = None
    """Who the task belongs to (a user id): notified when it ends, by default; a filter of
    queries and statistics."""
    tags: list[str] = []
    """Free-form labels; a query's ``tag`` filter matches any of them."""
    group: str | None = None
    """The group (batch, session) the task belongs to; see :class:`GroupState`."""
    result: Any = None
    error: str | None = None
    created_at: float
    updated_at: float
    started_at: float | None = None
    finished_at: float | None = None
    paused_at: float | None = None
    paused_seconds: float = 0.0
    """Time spent paused; not counted in the rate behind ``eta_seconds``."""
    eta_seconds: float | None = None
    """Estimated seconds left, from the rate observed since the start."""
    phases: list[PhaseState] = []
    phase: str | None = None
    """The phase started last (workflows)."""
    version: int = 1
    """Grows by one with every change."""


class TaskEvent(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One change, as published on ``tasks.<project>`` and ``tasks.<project>.<id>``.

    ``type`` is ``task.<what>`` or ``workflow.<what>``; ``task`` is the state after the
    change (absent on ``*.log`` events, which change nothing).
    """

    type: str
    time: float
    project: str
    id: str
    task: TaskState | None = None
    phase: str | None = None
    level: str | None = None
    message: str | None = None
    fields: dict[str, Any] | None = None


class GroupState(msgspec.Struct, kw_only=True):
    """Aggregate progress of a group of tasks, on ``tasks.<project>.group.<group>``.

    Every task created with the same ``group`` counts; ``current`` is the task started last
    (None once it ends). One ``group.changed`` event per change of these numbers.
    """

    project: str
    group: str
    total: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    running: int = 0
    current: str | None = None
    updated_at: float = 0.0


class LogLine(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One stored line of a task's log. ``id`` orders lines and is a paging cursor."""

    id: str
    time: float
    level: str
    message: str
    phase: str | None = None
    fields: dict[str, Any] | None = None


# --- changes ---------------------------------------------------------------------------------


class _Change(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class PhaseSpec(msgspec.Struct, forbid_unknown_fields=True):
    """A workflow phase to create: its name and its share of the overall progress."""

    name: str
    weight: float = 1.0


class Create(_Change):
    """Create a task (queued). With ``phases`` it is a workflow. An empty ``id`` gets a
    random one; an empty ``name`` is the id."""

    project: str
    id: str = ""
    name: str = ""
    type: str = "task"
    total_steps: int | None = None
    metadata: dict[str, Any] = {}
    owner: str | None = None
    tags: list[str] = []
    group: str | None = None
    phases: list[PhaseSpec] | None = None


class Start(_Change):
    """Start the task, or one phase of a running workflow."""

    phase: str | None = None
    message: str | None = None


class Progress(_Change):
    """Report progress: ``percent`` (0-100) and/or ``step`` (0..``total_steps``; gives
    the percent when ``percent`` is absent), a step name and a message."""

    percent: float | None = None
    step: int | None = None
    total_steps: int | None = None
    step_name: str | None = None
    message: str | None = None
    phase: str | None = None


class Log(_Change):
    """A log line (``debug``, ``info``, ``warning``, ``error`` or ``critical``) with
    optional structured ``fields``; changes no state, and is kept in the task's log."""

    message: str
    level: str = "info"
    phase: str | None = None
    fields: dict[str, Any] | None = None


class Pause(_Change):
    message: str | None = None


class Resume(_Change):
    message: str | None = None


class Complete(_Change):
    """Finish successfully with an optional JSON ``result``; percent becomes 100."""

    result: Any = None
    message: str | None = None
    phase: str | None = None


class Fail(_Change):
    """Finish with an error."""

    error: str
    phase: str | None = None


class Cancel(_Change):
    """Stop for good without an error."""

    reason: str | None = None
    phase: str | None = None


Change = Start | Progress | Log | Pause | Resume | Complete | Fail | Cancel


# --- validation ------------------------------------------------------------------------------


def check_id(value: object, what: str = "task id") -> str:
    """``value`` when it is a valid project (``what="project"``) or task id.

    Raises:
        InvalidTask: it is not; the message gives the rule.
    """
    pattern, limit = (PROJECT_ID, 32) if what == "project" else (TASK_ID, 64)
    if what == "tag":
        pattern, limit = TAG, 64
    if not isinstance(value, str) or not pattern.fullmatch(value):
        extra = " . :" if what == "tag" else ""
        raise InvalidTask(f"invalid {what} {value!r}: use 1-{limit} of A-Z a-z 0-9 _ -{extra}")
    return value
