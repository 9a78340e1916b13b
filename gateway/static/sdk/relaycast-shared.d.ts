import { Relaycast } from "./relaycast.js";
import type { ClientEvents, ClientOptions, ConnectionState, Handlers, MessageMeta, Position, SubscribeOptions, Subscription, TransportKind } from "./types.js";
/** A shared connection where the browser has SharedWorker, else a Relaycast of its own. */
export declare function openRelaycast(options?: ClientOptions): SharedRelaycast | Relaycast;
/** The tab's side of a connection run by a SharedWorker; the API of Relaycast. */
export declare class SharedRelaycast {
    readonly shared: true;
    readonly options: Record<string, unknown>;
    state: ConnectionState;
    attempt: number;
    reconnects: number;
    transport: TransportKind | null;
    url: string | null;
    gateway: string | null;
    rtt: number | null;
    readonly positions: Map<string, Position>;
    private readonly port;
    private readonly _token;
    private readonly _channels;
    private readonly _listeners;
    private readonly _ready;
    private _closed;
    constructor(options?: ClientOptions);
    on<K extends keyof ClientEvents>(event: K, fn: (value: ClientEvents[K]) => void): () => void;
    /**
     * As Relaycast.subscribe. When another tab already follows the channel, `subscribed`
     * comes at once with `shared: true`, followed by the channel's newest message.
     */
    subscribe<T = unknown>(channel: string, handlers: Handlers<T> | ((data: T, meta: MessageMeta) => void), options?: SubscribeOptions): Subscription;
    unsubscribe(channel: string): void;
    get channels(): string[];
    connect(): void;
    /** Leave the shared connection; it closes when the last tab leaves. */
    close(): void;
    private _post;
    private _receive;
    private _stateChange;
    private _emit;
    private _dispatch;
}
