// types.ts: the client's options, events and handler shapes (frames and channel payloads
// are in frames.ts, generated from the Python definitions).

import type { ErrorFrame, Position } from "./frames.js";

export type { ErrorFrame, Position };

export type TransportKind = "websocket" | "sse" | "poll";

export type ConnectionState = "connecting" | "connected" | "reconnecting" | "disconnected";

export interface StateChange {
  state: ConnectionState;
  /** The reconnect attempt under way (1, 2, ...); 0 while connected. */
  attempt: number;
  /** The transport of the current (or last) connection. */
  transport: TransportKind | null;
  /** The gateway base URL of the current (or last) connection. */
  url: string | null;
}

/** A token, or a function returning one (or a promise of one). */
export type TokenSource = string | null | (() => string | null | Promise<string | null>);

export interface ClientOptions {
  /** Gateway base URLs (http or https), tried in turn. Default: the page's origin. */
  urls?: string[];
  /** Transports to use, in order of preference. Default: all three. */
  transports?: TransportKind[];
  /** Milliseconds; retry n waits uniform(0, min(backoffCap, backoffBase * 2^n)). Default 250. */
  backoffBase?: number;
  /** Milliseconds. Default 10000. */
  backoffCap?: number;
  /** Milliseconds without any frame after which the connection counts as dead. Default 45000. */
  heartbeatTimeout?: number;
  /** Milliseconds a transport may take to open before the next is tried. Default 8000. */
  openTimeout?: number;
  /** Milliseconds between round-trip probes; 0 turns them off. Default 5000. */
  pingInterval?: number;
  /** Seconds a long-poll may wait on the gateway. Default 25. */
  pollWait?: number;
  /** Connect in the constructor. Default true. */
  connect?: boolean;
  /** Reconnect after a lost connection. Default true; false: stop at the first loss. */
  reconnect?: boolean;
  /**
   * Give up after this many reconnect attempts in a row that fail to connect (the state
   * becomes `disconnected`, `disconnected` fires with `willReconnect: false`).
   * Default: no limit.
   */
  maxReconnectAttempts?: number;
  /**
   * A connection token (JWT) for gateways in production mode, or a function returning one
   * (or a promise of one); called for every connection and before the token expires.
   * Sent as an `auth` frame over a WebSocket, and as a single-use ticket (or an
   * Authorization header, same origin) over SSE and polling. Default: none.
   */
  token?: TokenSource;
  /**
   * The WebSocket class to use where there is no global one (Node before 22 without
   * `--experimental-websocket`): for example the `ws` package's. Default: the global.
   */
  WebSocket?: typeof WebSocket;
}

export interface SubscribeOptions {
  /** Resume from a position the app kept. */
  since?: Position;
  /**
   * At most this many updates per second on a latest-value channel (the subscribe frame's
   * `max_rate`); the gateway sends the newest value at that pace. Sent over a WebSocket.
   */
  maxRate?: number;
}

export interface MessageMeta {
  channel: string;
  offset: number;
}

export interface SubscribedInfo {
  channel: string;
  /** Every message that follows has a higher offset. */
  offset: number;
  epoch: string;
  /**
   * null on a fresh subscribe. On a resume: true when every missed message follows,
   * false when history no longer reached back (or the stream restarted): reload state.
   */
  recovered: boolean | null;
  /** On a resume, how many missed messages follow. */
  replayed: number | null;
  transport: TransportKind;
  /** Set when a tab joined a channel another tab of a shared connection already follows. */
  shared?: boolean;
}

export interface CloseInfo {
  code: number;
  reason: string;
}

export interface ConnectedInfo {
  transport: TransportKind;
  url: string;
}

export interface DisconnectedInfo extends CloseInfo {
  /** False after close(), a terminal close code, with reconnecting off, or attempts used up. */
  willReconnect: boolean;
}

export interface ReconnectingInfo {
  /** 1 for the first attempt after a loss. */
  attempt: number;
  /** Milliseconds until the attempt starts. */
  delay: number;
}

export interface Handlers<T = unknown> {
  message?(data: T, meta: MessageMeta): void;
  subscribed?(info: SubscribedInfo): void;
  error?(frame: ErrorFrame): void;
}

export interface Subscription {
  readonly channel: string;
  /** Remove these handlers; the channel is left when its last handlers go. */
  unsubscribe(): void;
}

export interface ClientEvents {
  state: StateChange;
  /** A connection opened. */
  connected: ConnectedInfo;
  /** A connection ended, or the client stopped trying. */
  disconnected: DisconnectedInfo;
  /** A reconnect attempt is scheduled. */
  reconnecting: ReconnectingInfo;
  /** The id of the gateway serving the connection. */
  gateway: string;
  /** Measured round trip, in milliseconds. */
  rtt: number;
  error: ErrorFrame;
  /** A connection ended (the client reconnects unless the code is 4500-4999). */
  close: CloseInfo;
  /** The gateway accepted the token, until `expires` (Unix seconds). WebSocket only. */
  authenticated: { user: string; expires: number | null };
}

/** What Relaycast and SharedRelaycast have in common: what helpers and hooks use. */
export interface RelaycastLike {
  readonly state: ConnectionState;
  readonly attempt: number;
  on<K extends keyof ClientEvents>(event: K, fn: (value: ClientEvents[K]) => void): () => void;
  subscribe<T = unknown>(
    channel: string,
    handlers: Handlers<T> | ((data: T, meta: MessageMeta) => void),
    options?: SubscribeOptions,
  ): Subscription;
  unsubscribe(channel: string): void;
}
