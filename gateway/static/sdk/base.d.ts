import type { ClientEvents, ConnectionState, Handlers, MessageMeta, Position, RelaycastLike, StateChange, SubscribeOptions, Subscription, TransportKind } from "./types.js";
type AnyHandlers = Handlers<any>;
/** The API of every Relaycast client; the connection is the subclass's. */
export declare abstract class RelaycastBase implements RelaycastLike {
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
    protected readonly _channels: Map<string, Set<AnyHandlers>>;
    private readonly _listeners;
    /** Start connecting. */
    abstract connect(): void;
    /** Close the connection (or leave it) and stop. */
    abstract close(): void;
    /**
     * Follow `channel` on the connection: called by subscribe after the handlers are added,
     * with `fresh` true when the channel had none before.
     */
    protected abstract _follow(channel: string, options: SubscribeOptions, fresh: boolean): void;
    /** Leave `channel` on the connection: its last handlers went. */
    protected abstract _leave(channel: string): void;
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
    /** What a "state" event carries. */
    protected _status(): StateChange;
    protected _emit<K extends keyof ClientEvents>(event: K, value: ClientEvents[K]): void;
    /** A message of a channel: handed to its handlers unless its offset was seen already. */
    protected _message(channel: string, data: unknown, meta: MessageMeta): void;
    protected _dispatch(channel: string, kind: keyof AnyHandlers, ...args: unknown[]): void;
}
export {};
