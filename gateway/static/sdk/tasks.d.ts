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
export declare function dispatchTaskEvent(event: TaskEvent, handlers: TaskHandlers): void;
/** Follow one task (channel `tasks.<project>.<id>`). */
export declare function followTask(rc: RelaycastLike, project: string, id: string, handlers: TaskHandlers): Subscription;
/** Follow every task of a project (channel `tasks.<project>`). */
export declare function followProject(rc: RelaycastLike, project: string, handlers: TaskHandlers): Subscription;
