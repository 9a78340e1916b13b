import type { ServerFrame } from "./frames.js";
import type { Relaycast } from "./relaycast.js";
import type { CloseInfo, TransportKind } from "./types.js";
export declare abstract class Link {
    readonly client: Relaycast;
    readonly url: string;
    abstract readonly kind: TransportKind;
    readonly announced: Set<string>;
    lastFrame: number;
    done: boolean;
    readonly ended: Promise<CloseInfo>;
    private _resolveEnded;
    private _timers;
    constructor(client: Relaycast, url: string);
    abstract open(): Promise<void>;
    abstract subscribe(channel: string): void;
    abstract unsubscribe(channel: string): void;
    protected abstract _stop(): void;
    /** Start the heartbeat watch and the latency probe; called once open. */
    protected _started(): void;
    /** Measure the round trip (and learn the gateway) by timing GET /gateway. */
    protected _probe(): Promise<void>;
    private _every;
    protected _frame(frame: ServerFrame): void;
    finish(code: number, reason?: string): void;
    close(): void;
    /** Catch up with the client's channels. */
    sync(): void;
    /** The gateway accepted the token until `expires` (Unix seconds). */
    authenticated(_expires: number | null): void;
    /** Resolve when `ready` does, reject after the open timeout or when `failed` fires. */
    protected _opening(start: (ready: () => void, failed: (err: Error) => void) => void): Promise<void>;
}
/** HTTP transports name their channels in the URL: a change of channels reopens the request. */
export declare abstract class HttpLink extends Link {
    private _reopenQueued;
    protected _serving: string[];
    protected abstract _reopen(): void;
    subscribe(_channel?: string): void;
    unsubscribe(channel: string): void;
    private _reopenSoon;
    /** The channels the open request serves. */
    protected get serving(): string[];
    /** Reopen when the channels served differ from the client's. */
    sync(): void;
    protected _query(extra?: Record<string, string | number>): string;
}
