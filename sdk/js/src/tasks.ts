// tasks.ts: follow a task, or every task of a project, with callbacks for what apps do
// with task events: show progress, then react to the end (completed, failed, cancelled).

import type { TaskEvent, TaskState } from "./frames.js";
import type { RelaycastLike, SubscribedInfo, Subscription } from "./types.js";

export interface TaskHandlers {
  /** Any change that leaves the task queued, running or paused (created, started, progress...). */
  onProgress?(task: TaskState, event: TaskEvent): void;
  /** The task (or workflow) completed; `task.result` holds its result. */
  onComplete?(task: TaskState, event: TaskEvent): void;
  /** The task failed (`task.error` says why), or was cancelled (`task.status` says which). */
  onFailed?(task: TaskState, event: TaskEvent): void;
  /** A log line of the task (`*.log` events carry no state). */
  onLog?(event: TaskEvent): void;
  /** Every event, before the callbacks above. */
  onEvent?(event: TaskEvent): void;
  /** The subscription is live: every event from here on arrives. */
  onSubscribed?(info: SubscribedInfo): void;
  /** History no longer reached back (`recovered: false`): reload from GET /api/tasks/<project>. */
  onLost?(info: SubscribedInfo): void;
}

/** Hand one task event to the callback it concerns. */
export function dispatchTaskEvent(event: TaskEvent, handlers: TaskHandlers): void {
  handlers.onEvent?.(event);
  const task = event.task;
  if (!task) {
    if (event.type.endsWith(".log")) handlers.onLog?.(event);
    return;
  }
  if (task.status === "completed") handlers.onComplete?.(task, event);
  else if (task.status === "failed" || task.status === "cancelled") handlers.onFailed?.(task, event);
  else handlers.onProgress?.(task, event);
}

function follow(rc: RelaycastLike, channel: string, handlers: TaskHandlers): Subscription {
  return rc.subscribe<TaskEvent>(channel, {
    message: (event) => dispatchTaskEvent(event, handlers),
    subscribed: (info) => {
      handlers.onSubscribed?.(info);
      if (info.recovered === false) handlers.onLost?.(info);
    },
  });
}

/** Follow one task (channel `tasks.<project>.<id>`). */
export function followTask(rc: RelaycastLike, project: string, id: string, handlers: TaskHandlers): Subscription {
  return follow(rc, `tasks.${project}.${id}`, handlers);
}

/** Follow every task of a project (channel `tasks.<project>`). */
export function followProject(rc: RelaycastLike, project: string, handlers: TaskHandlers): Subscription {
  return follow(rc, `tasks.${project}`, handlers);
}
