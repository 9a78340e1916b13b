// Type declarations for relaycast.js, the browser client of Relaycast gateways.

/** Where a client stands in a channel: the last offset it has, in the stream `epoch`. */
export interface Position {
  offset: number;
  epoch: string;
}

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
  /**
   * A connection token (JWT) for gateways in production mode, or a function returning one
   * (or a promise of one); called for every connection and before the token expires.
   * Sent as an `auth` frame over a WebSocket, and as a single-use ticket (or an
   * Authorization header, same origin) over SSE and polling. Default: none.
   */
  token?: string | null | (() => string | null | Promise<string | null>);
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

/** A gateway error frame (docs/protocol.md); the connection stays open. */
export interface ErrorFrame {
  type: "error";
  code: string;
  message: string;
  channel?: string;
}

export interface CloseInfo {
  code: number;
  reason: string;
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

/** Full-jitter exponential backoff, in milliseconds. */
export function backoffDelay(attempt: number, base: number, cap: number): number;

export class Relaycast {
  constructor(options?: ClientOptions);
  readonly options: Required<Omit<ClientOptions, "urls" | "token">> & {
    urls: string[] | null;
    token: ClientOptions["token"];
  };
  readonly urls: string[];
  readonly state: ConnectionState;
  readonly attempt: number;
  /** Connections lost so far. */
  readonly reconnects: number;
  readonly transport: TransportKind | null;
  readonly url: string | null;
  readonly gateway: string | null;
  readonly rtt: number | null;
  /** The last position seen in each subscribed channel. */
  readonly positions: Map<string, Position>;
  readonly channels: string[];

  on<K extends keyof ClientEvents>(event: K, fn: (value: ClientEvents[K]) => void): () => void;
  subscribe<T = unknown>(
    channel: string,
    handlers: Handlers<T> | ((data: T, meta: MessageMeta) => void),
    options?: { since?: Position },
  ): Subscription;
  unsubscribe(channel: string): void;
  connect(): void;
  close(): void;
}
