// react.ts: React bindings (`import { useChannel } from "relaycast/react"`). Each hook
// takes the client (a Relaycast or a shared one) so that an app decides how many
// connections it opens; a hook subscribes while its component is mounted.

import { useEffect, useRef, useState, useSyncExternalStore } from "react";
import type { ErrorFrame, TaskEvent, TaskState } from "./frames.js";
import { dispatchTaskEvent } from "./tasks.js";
import type { MessageMeta, RelaycastLike, StateChange, SubscribedInfo, SubscribeOptions } from "./types.js";

export interface ChannelState<T> {
  /** The newest message's data; undefined until one arrives. */
  data: T | undefined;
  /** Its channel and offset. */
  meta: MessageMeta | null;
  /** Set once the subscription is live. */
  subscribed: SubscribedInfo | null;
  /** The last error frame for this channel (invalid name, not allowed...). */
  error: ErrorFrame | null;
}

/**
 * The newest message of `channel` (null: none), re-rendering on each. `onMessage`, when
 * given, sees every message, not only the newest one a render shows.
 */
export function useChannel<T = unknown>(
  rc: RelaycastLike,
  channel: string | null,
  options: SubscribeOptions & { onMessage?: (data: T, meta: MessageMeta) => void } = {},
): ChannelState<T> {
  const [state, setState] = useState<ChannelState<T>>({ data: undefined, meta: null, subscribed: null, error: null });
  const { maxRate } = options;
  // The newest onMessage, read when a message comes: a new function each render must not
  // resubscribe (and lose the channel's position).
  const onMessage = useRef(options.onMessage);
  onMessage.current = options.onMessage;
  useEffect(() => {
    setState({ data: undefined, meta: null, subscribed: null, error: null });
    if (!channel) return;
    const sub = rc.subscribe<T>(
      channel,
      {
        message: (data, meta) => {
          onMessage.current?.(data, meta);
          setState((s) => ({ ...s, data, meta }));
        },
        subscribed: (info) => setState((s) => ({ ...s, subscribed: info })),
        error: (frame) => setState((s) => ({ ...s, error: frame })),
      },
      maxRate !== undefined ? { maxRate } : {},
    );
    return () => sub.unsubscribe();
  }, [rc, channel, maxRate]);
  return state;
}

export interface TaskView {
  /** The task's state after its newest event; null until one arrives. */
  task: TaskState | null;
  /** The newest event, log lines included. */
  event: TaskEvent | null;
}

/** Follow one task (`tasks.<project>.<id>`): its state after each event. */
export function useTask(rc: RelaycastLike, project: string | null, id: string | null): TaskView {
  const [view, setView] = useState<TaskView>({ task: null, event: null });
  useEffect(() => {
    setView({ task: null, event: null });
    if (!project || !id) return;
    const sub = rc.subscribe<TaskEvent>(`tasks.${project}.${id}`, (event) =>
      dispatchTaskEvent(event, {
        onEvent: (e) => setView((v) => ({ task: e.task ?? v.task, event: e })),
      }),
    );
    return () => sub.unsubscribe();
  }, [rc, project, id]);
  return view;
}

/** The connection's state (connecting, connected, reconnecting with its attempt, disconnected). */
export function useConnectionState(rc: RelaycastLike & { transport?: StateChange["transport"]; url?: string | null }): StateChange {
  const snapshot = () => `${rc.state}|${rc.attempt}|${rc.transport ?? ""}|${rc.url ?? ""}`;
  const key = useSyncExternalStore((notify) => rc.on("state", notify), snapshot, snapshot);
  const [state, attempt, transport, url] = key.split("|");
  return {
    state: state as StateChange["state"],
    attempt: Number(attempt),
    transport: (transport || null) as StateChange["transport"],
    url: url || null,
  };
}
