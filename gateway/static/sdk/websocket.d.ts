import { Link } from "./link.js";
export declare class WebSocketLink extends Link {
    readonly kind: "websocket";
    private ws;
    private sent;
    private _pingId;
    private _pingAt;
    private _refresh;
    open(): Promise<void>;
    private _message;
    /** Over a WebSocket the round trip is a protocol ping; the gateway id still comes by HTTP. */
    protected _probe(): Promise<void>;
    private _send;
    subscribe(channel: string): void;
    unsubscribe(channel: string): void;
    /** Send a fresh token (`refresh`) a little before the current one expires. */
    authenticated(expires: number | null): void;
    sync(): void;
    protected _stop(): void;
}
