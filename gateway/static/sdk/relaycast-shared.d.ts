import { RelaycastBase } from "./base.js";
import { Relaycast } from "./relaycast.js";
import type { ClientOptions, ConnectionState, SubscribeOptions } from "./types.js";
/** A shared connection where the browser has SharedWorker, else a Relaycast of its own. */
export declare function openRelaycast(options?: ClientOptions): SharedRelaycast | Relaycast;
/**
 * The tab's side of a connection run by a SharedWorker; the API of Relaycast. When another
 * tab already follows a channel, its `subscribed` comes at once with `shared: true`,
 * followed by the channel's newest message.
 */
export declare class SharedRelaycast extends RelaycastBase {
    readonly shared: true;
    readonly options: Record<string, unknown>;
    /** Until the worker tells its status: its connection may be up already. */
    state: ConnectionState;
    private readonly port;
    private readonly _token;
    private readonly _ready;
    private _closed;
    constructor(options?: ClientOptions);
    /** Nothing to do: the worker connects. */
    connect(): void;
    /** Leave the shared connection; it closes when the last tab leaves. */
    close(): void;
    /** The worker is told of a channel once, with the options of its first subscribe. */
    protected _follow(channel: string, options: SubscribeOptions, fresh: boolean): void;
    protected _leave(channel: string): void;
    private _post;
    private _receive;
}
