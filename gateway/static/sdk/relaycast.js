// relaycast.ts: the client for Relaycast gateways, in browsers and in Node. An ES module
// with no dependencies.
//
//   import { Relaycast } from "/static/sdk/relaycast.js";
//   const rc = new Relaycast();                  // the gateway that served the page
//   rc.on("state", ({ state, attempt }) => render(state, attempt));
//   rc.subscribe("tasks.web", {
//     message(data, { channel, offset }) { ... },
//     subscribed({ recovered }) { if (recovered === false) reload(); },
//   });
//
// The same protocol as the Python SDK (gateway/client.py): one connection, any number of
// channels; reconnect with exponential backoff and full jitter; a server silent past
// `heartbeatTimeout` counts as gone; every channel resumes from the last offset seen, on
// whichever gateway answers, and `recovered: false` tells the app that history no longer
// reached back. When a WebSocket cannot be opened it falls back to Server-Sent Events,
// and then to long-polling, with the same API and the same resume rules. With `token`, a
// connection presents a JWT (an `auth` frame, or a single-use ticket for SSE and polling)
// and refreshes it before it expires.
//
// This module is the client core: options, the reconnect loop, frames to positions and
// handlers; the listeners, channels and positions it shares with SharedRelaycast are in
// base.ts. Each transport is a link in a module of its own (websocket, sse, poll, on link).
// docs/browser.md and docs/sdk-js.md describe it. Built from sdk/js/src (TypeScript).
import { RelaycastBase } from "./base.js";
import { PollLink } from "./poll.js";
import { SSELink } from "./sse.js";
import { WebSocketLink } from "./websocket.js";
/** Close codes at or above this (and below 5000) are final: the client stops. */
const TERMINAL = 4500;
const KINDS = ["websocket", "sse", "poll"];
const DEFAULTS = {
    urls: null, // gateway base URLs (http or https); default: the page's origin
    transports: KINDS,
    backoffBase: 250, // ms; retry n waits uniform(0, min(cap, base * 2^n))
    backoffCap: 10000,
    heartbeatTimeout: 45000, // ms without any frame before the connection counts as dead
    openTimeout: 8000, // ms a transport may take to open before the next one is tried
    pingInterval: 5000, // ms between latency probes; 0 turns them off
    pollWait: 25, // seconds a long-poll may wait on the gateway
    connect: true,
    reconnect: true,
    maxReconnectAttempts: Infinity,
    token: null, // a JWT, or a function returning one (or a promise of one) for each connection
    WebSocket: null,
};
/** Full-jitter exponential backoff, in milliseconds. */
export function backoffDelay(attempt, base, cap) {
    return Math.random() * Math.min(cap, base * 2 ** Math.min(attempt, 30));
}
/** A resilient subscriber. States: connecting, connected, reconnecting, disconnected. */
export class Relaycast extends RelaycastBase {
    options;
    urls;
    kinds;
    /** @internal subscribe options per channel (maxRate). */
    _subscribeOptions = new Map();
    _link = null;
    _opening = null;
    _preferred = 0; // index in kinds of the transport that last opened
    _connects = 0;
    _closed = false;
    _running = null;
    _wake = null;
    constructor(options = {}) {
        super();
        const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
        this.options = { ...DEFAULTS, ...given };
        const origin = globalThis.location ? globalThis.location.origin : "";
        const urls = this.options.urls && this.options.urls.length ? this.options.urls : [origin];
        this.urls = urls.map((u) => String(u).replace(/\/+$/, ""));
        if (!this.urls[0])
            throw new Error("relaycast: no gateway URL (give `urls` outside a browser)");
        this.kinds = this.options.transports.filter((k) => KINDS.includes(k));
        if (!this.kinds.length)
            throw new Error("relaycast: no transport enabled");
        // Connect once the caller has had a chance to add listeners and subscriptions.
        if (options.connect !== false)
            queueMicrotask(() => this.connect());
    }
    // --- public API (on, subscribe, unsubscribe and channels come from RelaycastBase) -------
    /** Start connecting (done by the constructor unless `connect: false`). */
    connect() {
        if (this._running)
            return;
        this._closed = false;
        this._running = this._run().finally(() => (this._running = null));
    }
    /** Close the connection and stop reconnecting. */
    close() {
        const wasUp = this._link !== null || this.state === "reconnecting";
        this._closed = true;
        if (this._link)
            this._link.close();
        if (this._opening)
            this._opening.close();
        if (this._wake)
            this._wake();
        if (wasUp)
            this._emit("disconnected", { code: 1000, reason: "closed by the client", willReconnect: false });
        this._setState("disconnected");
    }
    // --- the connection's side of subscribe and unsubscribe ----------------------------------
    _follow(channel, options, fresh) {
        if (options.since)
            this.positions.set(channel, { ...options.since });
        if (options.maxRate !== undefined)
            this._subscribeOptions.set(channel, { maxRate: options.maxRate });
        if (fresh && this._link)
            this._link.subscribe(channel);
    }
    _leave(channel) {
        this._subscribeOptions.delete(channel);
        if (this._link)
            this._link.unsubscribe(channel);
    }
    // --- the connection loop ----------------------------------------------------------------
    async _run() {
        this._setState("connecting");
        while (!this._closed) {
            const url = this.urls[this._connects++ % this.urls.length];
            let end = null;
            for (let i = this._preferred; i < this.kinds.length && !this._closed; i++) {
                const link = (this._opening = new LINKS[this.kinds[i]](this, url));
                try {
                    await link.open();
                }
                catch {
                    link.close();
                    continue; // could not open: try the next transport
                }
                finally {
                    this._opening = null;
                }
                if (this._closed) {
                    link.close();
                    break;
                }
                this._preferred = i;
                this._link = link;
                link.sync(); // channels (un)subscribed while it was opening
                this.transport = link.kind;
                this.url = url;
                this.attempt = 0;
                this._setState("connected");
                this._emit("connected", { transport: link.kind, url });
                end = await link.ended;
                this._link = null;
                if (this._closed)
                    break;
                this.reconnects++;
                this._emit("close", end);
                break;
            }
            if (this._closed)
                break;
            const terminal = end !== null && end.code >= TERMINAL && end.code < 5000;
            // attempt is 0 after a connection, so the limit counts attempts since the last one.
            const exhausted = !this.options.reconnect || this.attempt >= this.options.maxReconnectAttempts;
            if (terminal || exhausted) {
                const info = end ?? { code: 1006, reason: "could not connect" };
                this._emit("disconnected", { ...info, willReconnect: false });
                this._closed = true;
                this._setState("disconnected");
                return;
            }
            if (end)
                this._emit("disconnected", { ...end, willReconnect: true });
            this.attempt++;
            const delay = backoffDelay(this.attempt, this.options.backoffBase, this.options.backoffCap);
            this._setState("reconnecting");
            this._emit("reconnecting", { attempt: this.attempt, delay });
            await this._sleep(delay);
        }
        this._setState("disconnected");
    }
    _sleep(ms) {
        return new Promise((resolve) => {
            const timer = setTimeout(resolve, ms);
            this._wake = () => {
                clearTimeout(timer);
                resolve();
            };
        });
    }
    _setState(state) {
        if (state === this.state && state !== "reconnecting")
            return;
        this.state = state;
        this._emit("state", this._status());
    }
    /** @internal */
    _setGateway(id) {
        if (id && id !== this.gateway) {
            this.gateway = id;
            this._emit("gateway", id);
        }
    }
    /** @internal */
    _setRtt(ms) {
        this.rtt = Math.round(ms * 10) / 10;
        this._emit("rtt", this.rtt);
    }
    /** @internal The token for a connection, or null: `options.token`, called when it is a function. */
    async _token() {
        const source = this.options.token;
        return (typeof source === "function" ? await source() : source) || null;
    }
    /** @internal A single-use ticket for an HTTP request, bought with the token (POST /auth/ticket). */
    async _ticket(url, token) {
        const response = await fetch(`${url}/auth/ticket`, {
            method: "POST",
            headers: { authorization: `Bearer ${token}` },
            cache: "no-store",
        });
        if (!response.ok)
            throw new Error(`ticket refused (${response.status})`);
        return (await response.json()).ticket;
    }
    /** @internal The cursor of `channels` (see gateway/transports/cursor.py): "epoch:offset,...". */
    _cursor(channels) {
        const entries = channels.map((c) => {
            const p = this.positions.get(c);
            return p && p.epoch ? `${p.epoch}:${p.offset}` : "";
        });
        return entries.some(Boolean) ? entries.join(",") : "";
    }
    /** @internal One server frame from any transport. `link.announced` holds channels told "subscribed". */
    _frame(link, frame) {
        switch (frame.type) {
            case "message":
                this._message(frame.channel, frame.data, { channel: frame.channel, offset: frame.offset });
                return;
            case "subscribed": {
                this.positions.set(frame.channel, { offset: frame.offset, epoch: frame.epoch });
                // A poll re-subscribes every time; only news reaches the app.
                if (link.announced.has(frame.channel) && frame.recovered !== false)
                    return;
                link.announced.add(frame.channel);
                this._dispatch(frame.channel, "subscribed", {
                    channel: frame.channel,
                    offset: frame.offset,
                    epoch: frame.epoch,
                    recovered: frame.recovered ?? null,
                    replayed: frame.replayed ?? null,
                    transport: link.kind,
                });
                return;
            }
            case "authenticated":
                link.authenticated(frame.expires ?? null);
                this._emit("authenticated", { user: frame.user, expires: frame.expires ?? null });
                return;
            case "error":
                if (frame.channel && this._channels.has(frame.channel)) {
                    this._dispatch(frame.channel, "error", frame);
                }
                this._emit("error", frame);
                return;
            default:
                return; // ping and pong are the link's business; unsubscribed needs nothing
        }
    }
}
const LINKS = {
    websocket: WebSocketLink,
    sse: SSELink,
    poll: PollLink,
};
