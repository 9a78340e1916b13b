// sse.ts: the Server-Sent Events link, for where a WebSocket cannot open. An EventSource
// names its channels and cursor in the URL and sends no headers, so a token becomes a
// single-use ticket, and a change of channels opens a new stream that replaces the old one
// once it is up.
import { HttpLink } from "./link.js";
export class SSELink extends HttpLink {
    kind = "sse";
    source = null;
    pending = null;
    open() {
        return this._opening((ready, failed) => {
            if (typeof EventSource !== "function")
                return failed(new Error("no EventSource here"));
            if (!this.client.channels.length) {
                // Nothing to stream yet: check the gateway answers, and stream once there is.
                fetch(`${this.url}/gateway`, { cache: "no-store" }).then((r) => {
                    if (r.ok)
                        ready();
                    else
                        failed(new Error(`gateway answered ${r.status}`));
                }, failed);
                return;
            }
            void this._stream(ready, failed);
        });
    }
    get serving() {
        return this.source?.channels ?? [];
    }
    /** Open an EventSource for the current channels; it replaces the one before once open. */
    async _stream(ready = () => { }, failed = null) {
        let ticket = null;
        try {
            const token = await this.client._token();
            if (token)
                ticket = await this.client._ticket(this.url, token); // EventSource sends no headers
        }
        catch (err) {
            if (failed)
                failed(err);
            else
                this.finish(1006, `no ticket: ${err.message}`);
            return;
        }
        if (this.done)
            return;
        const source = new EventSource(`${this.url}/sse?${this._query(ticket ? { ticket } : {})}`);
        source.channels = this._serving;
        if (this.pending)
            this.pending.close(); // superseded before it opened
        if (this.source)
            this.pending = source;
        let opened = false;
        source.onopen = () => {
            opened = true;
            if (this.pending === source)
                this.pending = null;
            if (this.source && this.source !== source)
                this.source.close();
            this.source = source;
            ready();
        };
        source.onmessage = (event) => {
            if (source !== this.source)
                return;
            let frame;
            try {
                frame = JSON.parse(event.data);
            }
            catch {
                return;
            }
            this._frame(frame);
        };
        source.addEventListener("hello", (event) => {
            this.lastFrame = Date.now();
            this.client._setGateway(JSON.parse(event.data).gateway);
        });
        source.addEventListener("close", (event) => {
            if (source !== this.source)
                return;
            const { code, reason } = JSON.parse(event.data);
            this.finish(code, reason);
        });
        source.onerror = () => {
            source.close(); // the client reconnects by itself, with backoff and fallback
            if (!opened && failed)
                failed(new Error("event stream could not be opened"));
            else if (source === this.source || !opened)
                this.finish(1006, "event stream lost");
        };
        if (!this.source)
            this.source = source;
    }
    _reopen() {
        if (!this.client.channels.length) {
            if (this.source)
                this.source.close();
            this.source = null;
            return;
        }
        void this._stream();
    }
    _stop() {
        if (this.source)
            this.source.close();
        if (this.pending)
            this.pending.close();
    }
}
