import { HttpLink } from "./link.js";
export declare class SSELink extends HttpLink {
    readonly kind: "sse";
    private source;
    private pending;
    open(): Promise<void>;
    protected get serving(): string[];
    /** Open an EventSource for the current channels; it replaces the one before once open. */
    private _stream;
    protected _reopen(): void;
    protected _stop(): void;
}
