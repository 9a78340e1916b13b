// tasks.ts: follow a task, or every task of a project, with callbacks for what apps do
// with task events: show progress, then react to the end (completed, failed, cancelled).
/** Hand one task event to the callback it concerns. */
export function dispatchTaskEvent(event, handlers) {
    handlers.onEvent?.(event);
    const task = event.task;
    if (!task) {
        if (event.type.endsWith(".log"))
            handlers.onLog?.(event);
        return;
    }
    if (task.status === "completed")
        handlers.onComplete?.(task, event);
    else if (task.status === "failed" || task.status === "cancelled")
        handlers.onFailed?.(task, event);
    else
        handlers.onProgress?.(task, event);
}
function follow(rc, channel, handlers) {
    return rc.subscribe(channel, {
        message: (event) => dispatchTaskEvent(event, handlers),
        subscribed: (info) => {
            handlers.onSubscribed?.(info);
            if (info.recovered === false)
                handlers.onLost?.(info);
        },
    });
}
/** Follow one task (channel `tasks.<project>.<id>`). */
export function followTask(rc, project, id, handlers) {
    return follow(rc, `tasks.${project}.${id}`, handlers);
}
/** Follow every task of a project (channel `tasks.<project>`). */
export function followProject(rc, project, handlers) {
    return follow(rc, `tasks.${project}`, handlers);
}
