// link.ts: what every transport link of the client shares.
//
// A link is one connection over one transport. open() resolves once it works and rejects
// when it cannot be opened (then the client tries the next transport); `ended` resolves
// with {code, reason} when it is over. subscribe/unsubscribe follow the client's channels.
// The link watches the heartbeat and measures the round trip; the client (relaycast.ts)
// owns positions, handlers and the reconnect loop, and hands each frame to `_frame`.
export class Link {
    client;
    url;
    announced = new Set();
    lastFrame = Date.now();
    done = false;
    ended;
    _resolveEnded;
    _timers = [];
    constructor(client, url) {
        this.client = client;
        this.url = url;
        this.ended = new Promise((resolve) => (this._resolveEnded = resolve));
    }
    /** Start the heartbeat watch and the latency probe; called once open. */
    _started() {
        if (this.done)
            return;
        const { heartbeatTimeout, pingInterval, pollWait, openTimeout } = this.client.options;
        // A long-poll is silent while it waits; it aborts itself when the gateway overstays.
        const limit = this.kind === "poll" ? Math.max(heartbeatTimeout, pollWait * 1000 + openTimeout) : heartbeatTimeout;
        this._every(1000, () => {
            if (this.kind !== "websocket" && !this.client.channels.length) {
                this.lastFrame = Date.now(); // an HTTP link with no channels has no stream to watch
            }
            else if (Date.now() - this.lastFrame > limit) {
                this.finish(4000, "no frame within the heartbeat timeout");
            }
        });
        void this._probe();
        if (pingInterval > 0)
            this._every(pingInterval, () => void this._probe());
    }
    /** Measure the round trip (and learn the gateway) by timing GET /gateway. */
    async _probe() {
        const started = performance.now();
        try {
            const response = await fetch(`${this.url}/gateway`, { cache: "no-store" });
            const body = (await response.json());
            if (this.done)
                return;
            this.client._setRtt(performance.now() - started);
            if (this.kind === "websocket")
                this.client._setGateway(body.gateway);
        }
        catch {
            // a failed probe says nothing the heartbeat will not
        }
    }
    _every(ms, fn) {
        this._timers.push(setInterval(fn, ms));
    }
    _frame(frame) {
        this.lastFrame = Date.now();
        if (!this.done)
            this.client._frame(this, frame);
    }
    finish(code, reason = "") {
        if (this.done)
            return;
        this.done = true;
        this._timers.forEach(clearInterval);
        this._stop();
        this._resolveEnded({ code, reason });
    }
    close() {
        this.finish(1000, "closed by the client");
    }
    /** Catch up with the client's channels. */
    sync() { }
    /** The gateway accepted the token until `expires` (Unix seconds). */
    authenticated(_expires) { }
    /** Resolve when `ready` does, reject after the open timeout or when `failed` fires. */
    _opening(start) {
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error("open timed out")), this.client.options.openTimeout);
            start(() => {
                clearTimeout(timer);
                resolve();
            }, (err) => {
                clearTimeout(timer);
                reject(err);
            });
        }).then(() => this._started());
    }
}
/** HTTP transports name their channels in the URL: a change of channels reopens the request. */
export class HttpLink extends Link {
    _reopenQueued = false;
    _serving = [];
    subscribe(_channel) {
        this._reopenSoon();
    }
    unsubscribe(channel) {
        this.announced.delete(channel);
        this._reopenSoon();
    }
    _reopenSoon() {
        if (this._reopenQueued || this.done)
            return;
        this._reopenQueued = true;
        setTimeout(() => {
            this._reopenQueued = false;
            if (!this.done)
                this._reopen();
        }, 0);
    }
    /** The channels the open request serves. */
    get serving() {
        return this._serving;
    }
    /** Reopen when the channels served differ from the client's. */
    sync() {
        if (String(this.serving || []) !== String(this.client.channels))
            this._reopenSoon();
    }
    _query(extra = {}) {
        const params = new URLSearchParams();
        const channels = (this._serving = this.client.channels);
        for (const channel of channels)
            params.append("channel", channel);
        const since = this.client._cursor(channels);
        if (since)
            params.set("since", since);
        for (const [key, value] of Object.entries(extra))
            params.set(key, String(value));
        return params.toString();
    }
}
