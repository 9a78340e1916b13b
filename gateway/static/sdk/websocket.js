// websocket.ts: the WebSocket link, the first choice. Subscribes go as frames on the open
// socket, the round trip is a protocol ping, and a token goes in an `auth` frame ahead of
// the subscribes (a `refresh` frame before it expires).
import { Link } from "./link.js";
export class WebSocketLink extends Link {
    kind = "websocket";
    ws = null;
    sent = new Set();
    _pingId;
    _pingAt = null;
    _refresh;
    async open() {
        const url = `${this.url.replace(/^http/, "ws")}/ws`;
        const Socket = this.client.options.WebSocket ?? globalThis.WebSocket;
        if (!Socket)
            throw new Error("no WebSocket here: pass the `WebSocket` option");
        const token = await this.client._token();
        return this._opening((ready, failed) => {
            const ws = (this.ws = new Socket(url));
            let opened = false;
            ws.onopen = () => {
                opened = true;
                if (token)
                    this._send({ type: "auth", token }); // before any subscribe
                for (const channel of this.client.channels)
                    this.subscribe(channel);
                ready();
            };
            ws.onmessage = (event) => this._message(String(event.data));
            // Node's WebSocket reports a refused connection with an error and no close event.
            ws.onerror = () => {
                if (!opened)
                    failed(new Error("websocket could not be opened"));
            };
            ws.onclose = (event) => {
                if (!opened)
                    failed(new Error(`websocket closed before opening (${event.code})`));
                this.finish(event.code, event.reason);
            };
        });
    }
    _message(text) {
        let frame;
        try {
            frame = JSON.parse(text);
        }
        catch {
            return;
        }
        if (frame.type === "ping") {
            this._send({ type: "pong", id: frame.id ?? null });
        }
        else if (frame.type === "pong" && frame.id === this._pingId && this._pingAt) {
            this.client._setRtt(performance.now() - this._pingAt);
            this._pingAt = null;
        }
        this._frame(frame);
    }
    /** Over a WebSocket the round trip is a protocol ping; the gateway id still comes by HTTP. */
    async _probe() {
        if (!this.client.gateway || this._pingId === undefined)
            await super._probe();
        this._pingId = (this._pingId || 0) + 1;
        this._pingAt = performance.now();
        this._send({ type: "ping", id: this._pingId });
    }
    _send(frame) {
        if (this.ws && this.ws.readyState === 1)
            this.ws.send(JSON.stringify(frame));
    }
    subscribe(channel) {
        if (!this.ws || this.ws.readyState !== 1 || this.sent.has(channel))
            return;
        this.sent.add(channel);
        const since = this.client.positions.get(channel);
        const maxRate = this.client._subscribeOptions.get(channel)?.maxRate;
        this._send({
            type: "subscribe",
            channel,
            ...(since && since.epoch ? { since } : {}),
            ...(maxRate !== undefined ? { max_rate: maxRate } : {}),
        });
    }
    unsubscribe(channel) {
        this.announced.delete(channel);
        if (this.sent.delete(channel))
            this._send({ type: "unsubscribe", channel });
    }
    /** Send a fresh token (`refresh`) a little before the current one expires. */
    authenticated(expires) {
        clearTimeout(this._refresh);
        if (!expires)
            return;
        const left = expires - Date.now() / 1000;
        const early = Math.min(60, Math.max(1, left / 5));
        this._refresh = setTimeout(async () => {
            const token = await this.client._token().catch(() => null);
            if (token && !this.done)
                this._send({ type: "refresh", token });
        }, Math.max(1, left - early) * 1000);
    }
    sync() {
        const wanted = new Set(this.client.channels);
        for (const channel of [...this.sent])
            if (!wanted.has(channel))
                this.unsubscribe(channel);
        for (const channel of wanted)
            this.subscribe(channel);
    }
    _stop() {
        clearTimeout(this._refresh);
        if (this.ws) {
            this.ws.onclose = this.ws.onmessage = this.ws.onopen = this.ws.onerror = null;
            if (this.ws.readyState <= 1)
                this.ws.close(1000);
        }
    }
}
