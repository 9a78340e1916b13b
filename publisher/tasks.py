"""Report long work from any asyncio service: tasks, workflows and their progress.

    from publisher.tasks import Tasks

    async with Tasks("redis://127.0.0.1:6379/0") as tasks:
        async with tasks.run("billing", "Export invoices", total_steps=12) as task:
            for month in range(1, 13):
                await export(month)
                await task.progress(step=month, step_name=f"month {month}")
        # completed when the block ends; failed if an exception escapes it

    async with tasks.run_workflow("web", "Deploy v2", phases=["build", "test", "rollout"]) as wf:
        async with wf.phase("build") as build:
            await build.progress(50, message="compiling")
        ...

Every change is checked first (:class:`~shared.state.tasks.TaskError` when refused; then
nothing is published), and then written and published in one step: the event goes to
``tasks.<project>.<id>`` and ``tasks.<project>``, the new state to
``tasks.<project>.<id>@state``. docs/publishers.md lists the events.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, Self

from publisher.publish import PublisherApi
from shared.broker import BrokerUnavailable
from shared.state.task_log import LogPage
from shared.state.task_query import TaskPage, TaskQuery, TaskStats, window_bounds
from shared.state.task_store import TaskStore
from shared.state.tasks import (
    FINAL,
    Cancel,
    Change,
    Complete,
    Create,
    Fail,
    Log,
    Pause,
    PhaseSpec,
    PhaseState,
    Progress,
    Resume,
    Start,
    TaskState,
    TaskStatus,
)

__all__ = ["Phase", "Task", "Tasks", "Workflow"]

log = logging.getLogger("relaycast.tasks")


class Tasks(PublisherApi[TaskStore]):
    """Creates and finds tasks. Holds one Redis connection pool; close it when done."""

    store_type = TaskStore

    async def create(
        self,
        project: str,
        name: str = "",
        *,
        id: str = "",
        type: str = "task",
        total_steps: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        owner: str | None = None,
        tags: Iterable[str] = (),
        group: str | None = None,
    ) -> Task:
        """Create a queued task; an empty ``id`` gets a random one. ``owner`` (a user id)
        is notified when it ends, unless a notification rule says otherwise; ``owner`` and
        ``tags`` are query filters; tasks sharing a ``group`` get aggregate progress.

        Raises:
            InvalidTask: a malformed argument. TaskExists: the id is taken.
            BrokerUnavailable: Redis cannot be reached.
        """
        request = _create(project, name, id, type, metadata, owner, tags, group)
        request.total_steps = total_steps
        return Task(self.store, await self.store.create(request))

    async def create_workflow(
        self,
        project: str,
        name: str = "",
        *,
        phases: Iterable[str | tuple[str, float]],
        id: str = "",
        type: str = "workflow",
        metadata: Mapping[str, Any] | None = None,
        owner: str | None = None,
        tags: Iterable[str] = (),
        group: str | None = None,
    ) -> Workflow:
        """Create a queued workflow with named phases (``name`` or ``(name, weight)``; a
        phase's weight is its share of the overall percent, 1 by default)."""
        specs = [PhaseSpec(p) if isinstance(p, str) else PhaseSpec(p[0], p[1]) for p in phases]
        request = _create(project, name, id, type, metadata, owner, tags, group)
        request.phases = specs
        return Workflow(self.store, await self.store.create(request))

    async def get(self, project: str, task_id: str) -> Task:
        """A handle on an existing task or workflow (raises UnknownTask)."""
        state = await self.store.get(project, task_id)
        return Workflow(self.store, state) if state.kind == "workflow" else Task(self.store, state)

    async def query(self, **filters: Any) -> TaskPage:
        """A page of tasks, newest first: ``project`` (None: all), ``status``, ``type``,
        ``owner``, ``tag``, ``since``/``until``, ``sort`` (``created`` or ``updated``),
        ``limit`` and the ``cursor`` of the page before (see :class:`TaskQuery`)."""
        return await self.store.query(TaskQuery(**filters))

    async def stats(
        self,
        project: str | None = None,
        *,
        window: str | None = "day",
        since: float | None = None,
        until: float | None = None,
    ) -> TaskStats:
        """Statistics over the last ``hour``, ``day`` or ``week``, or ``since``..``until``
        (Unix seconds; either given overrides ``window``)."""
        since, until = window_bounds(window, since, until)
        return await self.store.stats(project, since, until)

    async def delete(self, project: str, task_id: str) -> TaskState:
        """Delete a task, its log and index entries; ``task.deleted`` is published."""
        return await self.store.delete(project, task_id)

    async def read_log(
        self,
        project: str,
        task_id: str,
        *,
        level: str | None = None,
        search: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> LogPage:
        """A task's log, newest first: lines at ``level`` or above that contain ``search``;
        ``cursor`` (from the page before) goes further back."""
        return await self.store.log(
            project, task_id, level=level, search=search, limit=limit, cursor=cursor
        )

    @contextlib.asynccontextmanager
    async def run(self, project: str, name: str = "", **kwargs: Any) -> AsyncIterator[Task]:
        """Create and start a task; complete it when the block ends, fail it when an
        exception escapes, cancel it when the block is cancelled."""
        task = await self.create(project, name, **kwargs)
        async with task:
            yield task

    @contextlib.asynccontextmanager
    async def run_workflow(
        self, project: str, name: str = "", **kwargs: Any
    ) -> AsyncIterator[Workflow]:
        """:meth:`run` for a workflow (see :meth:`create_workflow` for the arguments)."""
        workflow = await self.create_workflow(project, name, **kwargs)
        async with workflow:
            yield workflow


def _create(
    project: str,
    name: str,
    id: str,
    type: str,
    metadata: Mapping[str, Any] | None,
    owner: str | None,
    tags: Iterable[str],
    group: str | None,
) -> Create:
    """The request for a task or a workflow: what both take (the caller adds its steps or
    its phases)."""
    return Create(
        project=project,
        id=id,
        name=name,
        type=type,
        metadata=dict(metadata or {}),
        owner=owner,
        tags=list(tags),
        group=group,
    )


class _Unit(abc.ABC):
    """A unit of work for an ``async with`` block: started on entry (when still queued),
    then completed, failed or cancelled by how the block ends."""

    @property
    @abc.abstractmethod
    def _status(self) -> TaskStatus | None:
        """The current status (None: not known yet)."""

    _phase: str | None = None
    """The phase every change names (None: the task itself)."""

    @abc.abstractmethod
    async def _change(self, change: Change) -> None:
        """Record ``change`` and publish its event."""

    async def start(self, message: str | None = None) -> None:
        await self._change(Start(phase=self._phase, message=message))

    async def progress(
        self,
        percent: float | None = None,
        *,
        step: int | None = None,
        total_steps: int | None = None,
        step_name: str | None = None,
        message: str | None = None,
    ) -> None:
        """Report progress as ``percent`` (0-100) and/or ``step`` of ``total_steps``."""
        await self._change(
            Progress(
                phase=self._phase,
                percent=percent,
                step=step,
                total_steps=total_steps,
                step_name=step_name,
                message=message,
            )
        )

    async def log(self, message: str, level: str = "info", **fields: Any) -> None:
        """A log line: ``debug``, ``info``, ``warning``, ``error`` or ``critical``; keyword
        arguments are its structured fields (JSON values)."""
        await self._change(
            Log(phase=self._phase, message=message, level=level, fields=fields or None)
        )

    async def complete(self, result: Any = None, message: str | None = None) -> None:
        """Finish; ``result`` (a task's, not a phase's) is any JSON value."""
        await self._change(Complete(phase=self._phase, result=result, message=message))

    async def fail(self, error: str) -> None:
        await self._change(Fail(phase=self._phase, error=error))

    async def cancel(self, reason: str | None = None) -> None:
        await self._change(Cancel(phase=self._phase, reason=reason))

    async def __aenter__(self) -> Self:
        if self._status in (None, TaskStatus.QUEUED):
            await self.start()
        return self

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if self._status in FINAL:
            return  # finished inside the block
        if exc is None:
            await self.complete()
            return
        try:
            if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
                await self.cancel("cancelled")
            else:
                await self.fail(f"{type(exc).__name__}: {exc}")
        except BrokerUnavailable as error:
            # Never hide the block's own exception behind this one.
            log.warning("could not record the end of %s: %s", self, error)


class Task(_Unit):
    """One task. Each method records one change and publishes its event.

    Raises (every method):
        InvalidTask: a malformed argument (percent outside 0-100, ...).
        InvalidTransition: the change does not fit (progress after completion, ...).
        UnknownTask: the task expired. BrokerUnavailable: Redis cannot be reached.
    """

    def __init__(self, store: TaskStore, state: TaskState) -> None:
        self._store = store
        self.state = state
        """The state after this handle's last change."""

    @property
    def id(self) -> str:
        return self.state.id

    @property
    def project(self) -> str:
        return self.state.project

    @property
    def _status(self) -> TaskStatus | None:
        return self.state.status

    async def _change(self, change: Change) -> None:
        self.state = await self._store.change(self.project, self.id, change, known=self.state)

    async def pause(self, message: str | None = None) -> None:
        await self._change(Pause(message=message))

    async def resume(self, message: str | None = None) -> None:
        await self._change(Resume(message=message))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.project}/{self.id} {self.state.status}>"


class Workflow(Task):
    """A task made of named phases; its percent is the weighted mean of theirs.

    Progress is reported on phases; :meth:`log` and the rest work as on a task.
    """

    def phase(self, name: str) -> Phase:
        """The phase called ``name`` (raises InvalidTask on a change if there is none)."""
        return Phase(self, name)

    async def progress(self, *args: Any, **kwargs: Any) -> None:
        """Not for workflows: their progress comes from their phases."""
        raise TypeError("a workflow's progress comes from its phases: use workflow.phase(name)")


class Phase(_Unit):
    """One phase of a workflow, used like a task: ``async with workflow.phase("build")``
    starts it, and completes (or fails, or cancels) it when the block ends."""

    def __init__(self, workflow: Workflow, name: str) -> None:
        self.workflow = workflow
        self.name = name
        self._phase = name

    @property
    def state(self) -> PhaseState | None:
        return next((p for p in self.workflow.state.phases if p.name == self.name), None)

    @property
    def _status(self) -> TaskStatus | None:
        state = self.state
        return None if state is None else state.status

    async def _change(self, change: Change) -> None:
        await self.workflow._change(change)

    def __repr__(self) -> str:
        return f"<Phase {self.name!r} of {self.workflow!r}>"
