import { HttpLink } from "./link.js";
export declare class PollLink extends HttpLink {
    readonly kind: "poll";
    private controller;
    private _reopened;
    private _resume;
    open(): Promise<void>;
    /** One request; its frames are handled before it resolves. Rejects on HTTP failure. */
    private _poll;
    private _loop;
    /** With no channels, wait for one (or for the next heartbeat check to pass). */
    private _idle;
    protected _reopen(): void;
    protected _stop(): void;
}
