import { RelaycastBase } from "./base.js";
import type { ClientOptions, SubscribeOptions, TokenSource, TransportKind } from "./types.js";
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
export declare class Relaycast extends RelaycastBase {
    readonly options: ResolvedOptions;
    readonly urls: string[];
    private readonly kinds;
    private _link;
    private _opening;
    private _preferred;
    private _connects;
    private _closed;
    private _running;
    private _wake;
    constructor(options?: ClientOptions);
    /** Start connecting (done by the constructor unless `connect: false`). */
    connect(): void;
    /** Close the connection and stop reconnecting. */
    close(): void;
    protected _follow(channel: string, options: SubscribeOptions, fresh: boolean): void;
    protected _leave(channel: string): void;
    private _run;
    private _sleep;
    private _setState;
}
