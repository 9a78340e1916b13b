// base.ts: what Relaycast (relaycast.ts, a connection of its own) and SharedRelaycast
// (relaycast-shared.ts, the connection of a SharedWorker) share: the status fields, the
// event listeners, the channels with their handlers and the last position seen in each.
// A subclass says how a channel is followed and left, and how to connect and close.
/** The API of every Relaycast client; the connection is the subclass's. */
export class RelaycastBase {
    state = "disconnected";
    /** The reconnect attempt under way (0 while connected). */
    attempt = 0;
    /** Times the connection was lost, for the life of the client. */
    reconnects = 0;
    transport = null;
    url = null;
    /** The id of the gateway serving this client, once known. */
    gateway = null;
    /** Last measured round trip, ms. */
    rtt = null;
    /** The last position seen in each subscribed channel. */
    positions = new Map();
    _channels = new Map();
    _listeners = new Map();
    /**
     * Listen to "state", "connected", "disconnected", "reconnecting", "gateway", "rtt",
     * "error", "close" or "authenticated"; returns a function that stops.
     */
    on(event, fn) {
        let set = this._listeners.get(event);
        if (!set)
            this._listeners.set(event, (set = new Set()));
        set.add(fn);
        return () => void set.delete(fn);
    }
    /**
     * Receive a channel now and after every reconnect. `handlers` is a function (called
     * with each message's data) or an object with `message`, `subscribed` and `error`.
     * `options.since` ({offset, epoch}) resumes from a position the app kept; `maxRate`
     * caps the updates per second of a latest-value channel.
     */
    subscribe(channel, handlers, options = {}) {
        const h = typeof handlers === "function" ? { message: handlers } : { ...handlers };
        let set = this._channels.get(channel);
        const fresh = !set;
        if (!set)
            this._channels.set(channel, (set = new Set()));
        set.add(h);
        this._follow(channel, options, fresh);
        return {
            channel,
            unsubscribe: () => {
                const current = this._channels.get(channel);
                if (current && current.delete(h) && current.size === 0)
                    this.unsubscribe(channel);
            },
        };
    }
    /** Stop receiving a channel (every handler of it) and forget its position. */
    unsubscribe(channel) {
        if (!this._channels.delete(channel))
            return;
        this.positions.delete(channel);
        this._leave(channel);
    }
    /** The channels subscribed, in the order they were first subscribed. */
    get channels() {
        return [...this._channels.keys()];
    }
    /** What a "state" event carries. */
    _status() {
        return { state: this.state, attempt: this.attempt, transport: this.transport, url: this.url };
    }
    _emit(event, value) {
        for (const fn of this._listeners.get(event) || []) {
            try {
                fn(value);
            }
            catch (err) {
                console.error("relaycast: a listener threw", err);
            }
        }
    }
    /** A message of a channel: handed to its handlers unless its offset was seen already. */
    _message(channel, data, meta) {
        const known = this.positions.get(channel);
        if (known && meta.offset <= known.offset)
            return; // a duplicate across a reconnect
        this.positions.set(channel, { offset: meta.offset, epoch: known ? known.epoch : "" });
        this._dispatch(channel, "message", data, meta);
    }
    _dispatch(channel, kind, ...args) {
        for (const h of this._channels.get(channel) || []) {
            const fn = h[kind];
            if (typeof fn !== "function")
                continue;
            try {
                fn.apply(h, args);
            }
            catch (err) {
                console.error(`relaycast: a ${kind} handler of ${channel} threw`, err);
            }
        }
    }
}
