import { describe, expect, it } from "vitest";
import { Relaycast, followProject, followTask } from "../src/index.js";
import type { TaskState } from "../src/index.js";
import { URL_, api, fresh, needsGateway, waitFor } from "./gateway.js";

describe.skipIf(needsGateway)("task helpers", () => {
  it("follow one task: progress, then complete", async () => {
    const rc = new Relaycast({ urls: [URL_] });
    const project = fresh("p");
    const task = await api("/api/tasks", { project, name: "import" });
    const seen: number[] = [];
    let live!: () => void;
    const subscribed = new Promise<void>((resolve) => (live = resolve));
    const completed = waitFor<TaskState>((done) =>
      followTask(rc, project, task.id, {
        onSubscribed: () => live(),
        onProgress: (t) => seen.push(t.percent),
        onComplete: done,
      }),
    );
    await subscribed;
    await api(`/api/tasks/${project}/${task.id}/start`, {});
    await api(`/api/tasks/${project}/${task.id}/progress`, { percent: 40 });
    await api(`/api/tasks/${project}/${task.id}/complete`, { result: { rows: 3 } });
    const done = await completed;
    expect(done.status).toBe("completed");
    expect(done.result).toEqual({ rows: 3 });
    expect(seen).toContain(40);
    rc.close();
  });

  it("follow a project: a failed task reaches onFailed", async () => {
    const rc = new Relaycast({ urls: [URL_] });
    const project = fresh("p");
    let live!: () => void;
    const subscribed = new Promise<void>((resolve) => (live = resolve));
    const failed = waitFor<TaskState>((done) =>
      followProject(rc, project, { onSubscribed: () => live(), onFailed: done }),
    );
    await subscribed;
    const task = await api("/api/tasks", { project, name: "export" });
    await api(`/api/tasks/${project}/${task.id}/start`, {});
    await api(`/api/tasks/${project}/${task.id}/fail`, { error: "disk full" });
    const state = await failed;
    expect(state.id).toBe(task.id);
    expect(state.error).toBe("disk full");
    rc.close();
  });
});
