// poll.ts: the long-polling link, the last resort. Each request is a whole session on the
// gateway (docs/browser.md): it names the channels and the cursor, and the response
// carries the frames and the cursor for the next request.
import { HttpLink } from "./link.js";
export class PollLink extends HttpLink {
    kind = "poll";
    controller = null;
    _reopened = false;
    _resume = null;
    open() {
        return this._opening((ready, failed) => {
            this._poll(0).then(() => {
                ready();
                void this._loop();
            }, failed);
        });
    }
    /** One request; its frames are handled before it resolves. Rejects on HTTP failure. */
    async _poll(wait) {
        if (!this.client.channels.length) {
            const response = await fetch(`${this.url}/gateway`, { cache: "no-store" });
            if (!response.ok)
                throw new Error(`gateway answered ${response.status}`);
            this.lastFrame = Date.now();
            return;
        }
        const headers = {};
        const extra = { wait };
        const token = await this.client._token();
        const here = globalThis.location ? globalThis.location.origin : null;
        if (token && new URL(this.url).origin === here) {
            headers.authorization = `Bearer ${token}`;
        }
        else if (token) {
            extra.ticket = await this.client._ticket(this.url, token); // no CORS preflight needed
        }
        const controller = (this.controller = new AbortController());
        const limit = setTimeout(() => controller.abort(), wait * 1000 + this.client.options.openTimeout);
        try {
            const response = await fetch(`${this.url}/poll?${this._query(extra)}`, {
                cache: "no-store",
                headers,
                signal: controller.signal,
            });
            if (!response.ok)
                throw new Error(`poll answered ${response.status}`);
            const body = (await response.json());
            this.lastFrame = Date.now();
            this.client._setGateway(body.gateway);
            for (const frame of body.frames)
                this._frame(frame);
            if (body.close)
                this.finish(body.close.code, body.close.reason);
        }
        finally {
            clearTimeout(limit);
        }
    }
    async _loop() {
        while (!this.done) {
            this._reopened = false;
            try {
                await this._poll(this.client.channels.length ? this.client.options.pollWait : 0);
                if (!this.client.channels.length && !this.done)
                    await this._idle();
            }
            catch (err) {
                if (this._reopened || this.done)
                    continue; // aborted on purpose
                this.finish(1006, `poll failed: ${err.message}`);
            }
        }
    }
    /** With no channels, wait for one (or for the next heartbeat check to pass). */
    _idle() {
        return new Promise((resolve) => {
            this._resume = resolve;
            setTimeout(resolve, Math.min(10000, this.client.options.heartbeatTimeout / 2));
        });
    }
    _reopen() {
        this._reopened = true;
        if (this.controller)
            this.controller.abort();
        if (this._resume)
            this._resume();
    }
    _stop() {
        if (this.controller)
            this.controller.abort();
        if (this._resume)
            this._resume();
    }
}
