/** One alert occurrence. Times are seconds since the epoch. */
export interface Alert {
    id: string;
    rule: string;
    host: string;
    severity: string;
    status: "active" | "resolved";
    message: string;
    metric: string;
    op: string;
    threshold: number;
    clear: number;
    value: number;
    raised_at: number;
    resolved_at: number | null;
    resolved_by: "auto" | "manual" | "service" | null;
    resolved_value: number | null;
    note: string | null;
}
/** Published on `alerts`: `type` is `alert.raised` or `alert.resolved`. */
export interface AlertEvent {
    type: string;
    time: number;
    alert: Alert;
}
/** Published on `alerts@state`: active alerts (oldest first), recent resolved ones (newest first). */
export interface AlertsState {
    active: Alert[];
    recent: Alert[];
    time: number;
}
/** Present a connection token (a JWT): channels that need one become readable. */
export interface AuthFrame {
    type: "auth";
    token: string;
}
/** A token was accepted: the connection acts for `user` until `expires` (Unix seconds), unless a `Refresh` comes first. */
export interface AuthenticatedFrame {
    type: "authenticated";
    user: string;
    expires?: number | null;
}
export interface Cpu {
    percent: number;
    per_core: number[];
    count: number;
}
export interface Disk {
    percent: number;
    max_percent: number;
    mounts: Mount[];
    read_bytes_per_s: number;
    write_bytes_per_s: number;
    read_ops_per_s: number;
    write_ops_per_s: number;
}
/** Something the client sent could not be served; `channel` names the one concerned. */
export interface ErrorFrame {
    type: "error";
    code: string;
    message: string;
    channel?: string | null;
}
/** Published on `metrics.fleet`: every host that reported in the last day. */
export interface FleetSnapshot {
    time: number;
    hosts: HostSummary[];
}
/** One sample of a host, as published on `metrics.host.<host>`. Rates are per second over the time since the previous sample; sizes are bytes; percents are 0-100. */
export interface HostSnapshot {
    host: string;
    time: number;
    interval: number;
    cpu: Cpu;
    memory: Memory;
    swap: Swap;
    disk: Disk;
    net: Net;
    load: Load;
    processes: number;
    uptime: number;
}
/** One host in `metrics.fleet`; a field is null when the host does not report it. */
export interface HostSummary {
    host: string;
    time: number;
    stale: boolean;
    cpu: number | null;
    memory: number | null;
    swap: number | null;
    disk: number | null;
    load_1m: number | null;
    net_recv_bytes_per_s: number | null;
    net_sent_bytes_per_s: number | null;
    processes: number | null;
    uptime: number | null;
}
export interface Load {
    "1m": number;
    "5m": number;
    "15m": number;
    per_core_1m: number;
}
export interface Memory {
    total: number;
    available: number;
    used: number;
    percent: number;
}
/** One published message. `data` is the published JSON value, untouched. */
export interface MessageFrame {
    type: "message";
    channel: string;
    offset: number;
    data: unknown;
}
export interface Mount {
    mount: string;
    total: number;
    used: number;
    free: number;
    percent: number;
}
export interface Net {
    recv_bytes_per_s: number;
    sent_bytes_per_s: number;
    recv_packets_per_s: number;
    sent_packets_per_s: number;
    errors_per_s: number;
    drops_per_s: number;
}
/** One notification of one user. `created_at` is in seconds since the epoch. */
export interface Notification {
    id: string;
    user: string;
    title: string;
    body: string;
    type: "error" | "info" | "progress" | "success" | "warning";
    priority: "high" | "low" | "normal" | "urgent";
    project: string | null;
    task_id: string | null;
    link: string | null;
    read: boolean;
    created_at: number;
}
/** On `notifications.<user>`: a new notification, and the user's unread count with it. */
export interface NotificationCreated {
    type: "notification.created";
    unread: number;
    notification: Notification;
}
/** On `notifications.<user>`: a notification was deleted; `unread` is the count after. */
export interface NotificationDeleted {
    type: "notification.deleted";
    id: string;
    unread: number;
}
/** On `notifications.<user>`: one notification (`id`) or, without an `id`, every one was marked read; `unread` is the count after. */
export interface NotificationRead {
    type: "notification.read";
    unread: number;
    id?: string;
}
/** One phase of a workflow. */
export interface PhaseState {
    name: string;
    weight: number;
    status: TaskStatus;
    percent: number;
    step: number | null;
    total_steps: number | null;
    step_name: string | null;
    message: string | null;
    error: string | null;
    started_at: number | null;
    finished_at: number | null;
}
/** Heartbeat. Either side may send it; the other answers with `Pong`. */
export interface PingFrame {
    type: "ping";
    id?: number | null;
}
/** Answer to `Ping`, echoing its `id`. Also counts as activity. */
export interface PongFrame {
    type: "pong";
    id?: number | null;
}
/** A place in a channel's stream: the offset of a message and the stream's epoch. */
export interface Position {
    offset: number;
    epoch: string;
}
/** Replace the connection's token with a fresh one of the same user before it expires. */
export interface RefreshFrame {
    type: "refresh";
    token: string;
}
/** A series' newest value, as kept in its source's hash and published. */
export interface SeriesInfo {
    metric: string;
    entity: string;
    kind: string;
    unit: string;
    value: number;
    time: number;
}
/** Published on `metrics.source.<source>` after each batch: every series of the source, each with its newest value (`time` and `interval` are the batch's; a counter's value is its rate per second over `interval`). */
export interface SourceSnapshot {
    source: string;
    time: number;
    interval: number;
    series: SeriesInfo[];
}
/** Start receiving a channel. With `since`, first replay what came after it. */
export interface SubscribeFrame {
    type: "subscribe";
    channel: string;
    since?: Position | null;
    max_rate?: number | null;
}
/** A subscription is live. */
export interface SubscribedFrame {
    type: "subscribed";
    channel: string;
    offset: number;
    epoch: string;
    recovered?: boolean | null;
    replayed?: number | null;
}
export interface Swap {
    total: number;
    used: number;
    percent: number;
}
/** One change, as published on `tasks.<project>` and `tasks.<project>.<id>`. */
export interface TaskEvent {
    type: string;
    time: number;
    project: string;
    id: string;
    task?: TaskState | null;
    phase?: string | null;
    level?: string | null;
    message?: string | null;
    fields?: Record<string, unknown> | null;
}
/** Where a task (or workflow) stands. Times are seconds since the epoch. */
export interface TaskState {
    id: string;
    project: string;
    kind: "task" | "workflow";
    type: string;
    name: string;
    status: TaskStatus;
    percent: number;
    step: number | null;
    total_steps: number | null;
    step_name: string | null;
    message: string | null;
    metadata: Record<string, unknown>;
    owner: string | null;
    tags: string[];
    group: string | null;
    result: unknown;
    error: string | null;
    created_at: number;
    updated_at: number;
    started_at: number | null;
    finished_at: number | null;
    paused_at: number | null;
    paused_seconds: number;
    eta_seconds: number | null;
    phases: PhaseState[];
    phase: string | null;
    version: number;
}
export type TaskStatus = "cancelled" | "completed" | "failed" | "paused" | "queued" | "running";
/** Stop receiving a channel. */
export interface UnsubscribeFrame {
    type: "unsubscribe";
    channel: string;
}
/** A subscription ended, at the client's request or the server's (see `reason`). */
export interface UnsubscribedFrame {
    type: "unsubscribed";
    channel: string;
    reason?: string | null;
}
/** Every frame a client sends. */
export type ClientFrame = SubscribeFrame | UnsubscribeFrame | PingFrame | PongFrame | AuthFrame | RefreshFrame;
/** Every frame a gateway sends. */
export type ServerFrame = SubscribedFrame | UnsubscribedFrame | MessageFrame | PingFrame | PongFrame | AuthenticatedFrame | ErrorFrame;
/** On `tasks.<project>` and `tasks.<project>.<id>`. */
export type TaskEventPayload = TaskEvent;
/** A task or workflow, as `GET /api/tasks/<project>` lists it. */
export type TaskStatePayload = TaskState;
/** On `alerts`: `alert.raised` or `alert.resolved`. */
export type AlertEventPayload = AlertEvent;
/** On `alerts@state`: the active and recent alerts. */
export type AlertsStatePayload = AlertsState;
/** On `metrics.host.<host>`: a host's newest sample. */
export type HostSnapshotPayload = HostSnapshot;
/** On `metrics.fleet`: every host's summary. */
export type FleetSnapshotPayload = FleetSnapshot;
/** On `metrics.source.<source>`: every series of a service's own metrics. */
export type SourceSnapshotPayload = SourceSnapshot;
/** On `notifications.<user>`: a notification created, read or deleted. */
export type NotificationEventPayload = NotificationCreated | NotificationRead | NotificationDeleted;
