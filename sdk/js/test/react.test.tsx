// React renders into a happy-dom document, while the client keeps Node's own fetch and
// WebSocket (a whole happy-dom environment would apply a browser's CORS rules to the tests'
// calls to the gateway's HTTP API).
import { Window } from "happy-dom";
const dom = new Window();
Object.assign(globalThis, { window: dom, document: dom.document, navigator: dom.navigator });

const { act, createElement } = await import("react");
const { createRoot } = await import("react-dom/client");
import { afterEach, describe, expect, it } from "vitest";
import { Relaycast } from "../src/index.js";
import { useChannel, useConnectionState, useTask } from "../src/react.js";
import { URL_, api, fresh, needsGateway, publish } from "./gateway.js";

(globalThis as any).IS_REACT_ACT_ENVIRONMENT = true;

/** Render `hook` in a component; `read()` gives its latest value. */
function renderHook<T>(hook: () => T) {
  let value!: T;
  function Probe() {
    value = hook();
    return null;
  }
  const root = createRoot(document.createElement("div"));
  act(() => root.render(createElement(Probe)));
  return { read: () => value, unmount: () => act(() => root.unmount()) };
}

/** Wait, letting React render, until `check` holds. */
async function until(check: () => boolean, ms = 10000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("timed out");
    await act(() => new Promise((r) => setTimeout(r, 20)));
  }
}

const clients: Relaycast[] = [];
afterEach(() => clients.splice(0).forEach((rc) => rc.close()));

function client() {
  const rc = new Relaycast({ urls: [URL_], transports: ["websocket"] });
  clients.push(rc);
  return rc;
}

describe.skipIf(needsGateway)("React hooks", () => {
  it("useConnectionState follows the connection", async () => {
    const rc = client();
    const hook = renderHook(() => useConnectionState(rc));
    await until(() => hook.read().state === "connected");
    expect(hook.read().transport).toBe("websocket");
    act(() => rc.close());
    expect(hook.read().state).toBe("disconnected");
    hook.unmount();
  });

  it("useChannel shows the newest message, and leaves the channel on unmount", async () => {
    const rc = client();
    const channel = fresh("react.");
    const seen: number[] = [];
    // A new onMessage every render: it must see every message, without resubscribing.
    const hook = renderHook(() => useChannel<{ n: number }>(rc, channel, { onMessage: (d) => seen.push(d.n) }));
    await until(() => hook.read().subscribed !== null);
    await act(async () => void (await publish(channel, { n: 1 })));
    await act(async () => void (await publish(channel, { n: 2 })));
    await until(() => hook.read().data?.n === 2);
    expect(hook.read().meta?.channel).toBe(channel);
    expect(seen).toEqual([1, 2]);
    hook.unmount();
    expect(rc.channels).not.toContain(channel);
  });

  it("useTask follows a task to completion", async () => {
    const rc = client();
    const project = fresh("r");
    const task = await api("/api/tasks", { project, name: "build" });
    const hook = renderHook(() => useTask(rc, project, task.id));
    await until(() => rc.state === "connected");
    await until(() => rc.positions.get(`tasks.${project}.${task.id}`)?.epoch !== undefined);
    await act(async () => void (await api(`/api/tasks/${project}/${task.id}/start`, {})));
    await act(async () => void (await api(`/api/tasks/${project}/${task.id}/progress`, { percent: 50 })));
    await until(() => hook.read().task?.percent === 50);
    await act(async () => void (await api(`/api/tasks/${project}/${task.id}/complete`, {})));
    await until(() => hook.read().task?.status === "completed");
    hook.unmount();
  });
});
