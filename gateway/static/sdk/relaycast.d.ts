import type { ClientEvents, ClientOptions, ConnectionState, Handlers, MessageMeta, Position, SubscribeOptions, Subscription, TokenSource, TransportKind } from "./types.js";
export type * from "./types.js";
export interface ResolvedOptions {
    urls: string[] | null;
    transports: TransportKind[];
    backoffBase: number;
    backoffCap: number;
    heartbeatTimeout: number;
    openTimeout: number;
    pingInterval: number;
    pollWait: number;
    connect: boolean;
    reconnect: boolean;
    maxReconnectAttempts: number;
    token: TokenSource;
    WebSocket: typeof WebSocket | null;
}
/** Full-jitter exponential backoff, in milliseconds. */
export declare function backoffDelay(attempt: number, base: number, cap: number): number;
/** A resilient subscriber. States: connecting, connected, reconnecting, disconnected. */
export declare class Relaycast {
    readonly options: ResolvedOptions;
    readonly urls: string[];
    state: ConnectionState;
    /** The reconnect attempt under way (0 while connected). */
    attempt: number;
    /** Times the connection was lost, for the life of the client. */
    reconnects: number;
    transport: TransportKind | null;
    url: string | null;
    /** The id of the gateway serving this client, once known. */
    gateway: string | null;
    /** Last measured round trip, ms. */
    rtt: number | null;
    /** The last position seen in each subscribed channel. */
    readonly positions: Map<string, Position>;
    private readonly kinds;
    private readonly _channels;
    private readonly _listeners;
    private _link;
    private _opening;
    private _preferred;
    private _connects;
    private _closed;
    private _running;
    private _wake;
    constructor(options?: ClientOptions);
    /**
     * Listen to "state", "connected", "disconnected", "reconnecting", "gateway", "rtt",
     * "error", "close" or "authenticated"; returns a function that stops.
     */
    on<K extends keyof ClientEvents>(event: K, fn: (value: ClientEvents[K]) => void): () => void;
    /**
     * Receive a channel now and after every reconnect. `handlers` is a function (called
     * with each message's data) or an object with `message`, `subscribed` and `error`.
     * `options.since` ({offset, epoch}) resumes from a position the app kept; `maxRate`
     * caps the updates per second of a latest-value channel.
     */
    subscribe<T = unknown>(channel: string, handlers: Handlers<T> | ((data: T, meta: MessageMeta) => void), options?: SubscribeOptions): Subscription;
    /** Stop receiving a channel (every handler of it) and forget its position. */
    unsubscribe(channel: string): void;
    /** The channels subscribed, in the order they were first subscribed. */
    get channels(): string[];
    /** Start connecting (done by the constructor unless `connect: false`). */
    connect(): void;
    /** Close the connection and stop reconnecting. */
    close(): void;
    private _run;
    private _sleep;
    private _setState;
    private _emit;
    private _dispatch;
}
