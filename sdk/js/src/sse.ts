// sse.ts: the Server-Sent Events link, for where a WebSocket cannot open. An EventSource
// names its channels and cursor in the URL and sends no headers, so a token becomes a
// single-use ticket, and a change of channels opens a new stream that replaces the old one
// once it is up.

import type { ServerFrame } from "./frames.js";
import { HttpLink } from "./link.js";

type Stream = EventSource & { channels?: string[] };

export class SSELink extends HttpLink {
  readonly kind = "sse" as const;
  private source: Stream | null = null;
  private pending: Stream | null = null;

  open(): Promise<void> {
    return this._opening((ready, failed) => {
      if (typeof EventSource !== "function") return failed(new Error("no EventSource here"));
      if (!this.client.channels.length) {
        // Nothing to stream yet: check the gateway answers, and stream once there is.
        fetch(`${this.url}/gateway`, { cache: "no-store" }).then((r) => {
          if (r.ok) ready();
          else failed(new Error(`gateway answered ${r.status}`));
        }, failed);
        return;
      }
      void this._stream(ready, failed);
    });
  }

  protected override get serving(): string[] {
    return this.source?.channels ?? [];
  }

  /** Open an EventSource for the current channels; it replaces the one before once open. */
  private async _stream(ready: () => void = () => {}, failed: ((err: Error) => void) | null = null): Promise<void> {
    let ticket: string | null = null;
    try {
      const token = await this.client._token();
      if (token) ticket = await this.client._ticket(this.url, token); // EventSource sends no headers
    } catch (err) {
      if (failed) failed(err as Error);
      else this.finish(1006, `no ticket: ${(err as Error).message}`);
      return;
    }
    if (this.done) return;
    const source: Stream = new EventSource(`${this.url}/sse?${this._query(ticket ? { ticket } : {})}`);
    source.channels = this._serving;
    if (this.pending) this.pending.close(); // superseded before it opened
    if (this.source) this.pending = source;
    let opened = false;
    source.onopen = () => {
      opened = true;
      if (this.pending === source) this.pending = null;
      if (this.source && this.source !== source) this.source.close();
      this.source = source;
      ready();
    };
    source.onmessage = (event) => {
      if (source !== this.source) return;
      let frame: ServerFrame;
      try {
        frame = JSON.parse(event.data as string) as ServerFrame;
      } catch {
        return;
      }
      this._frame(frame);
    };
    source.addEventListener("hello", (event) => {
      this.lastFrame = Date.now();
      this.client._setGateway((JSON.parse((event as MessageEvent).data as string) as { gateway: string }).gateway);
    });
    source.addEventListener("close", (event) => {
      if (source !== this.source) return;
      const { code, reason } = JSON.parse((event as MessageEvent).data as string) as { code: number; reason: string };
      this.finish(code, reason);
    });
    source.onerror = () => {
      source.close(); // the client reconnects by itself, with backoff and fallback
      if (!opened && failed) failed(new Error("event stream could not be opened"));
      else if (source === this.source || !opened) this.finish(1006, "event stream lost");
    };
    if (!this.source) this.source = source;
  }

  protected _reopen(): void {
    if (!this.client.channels.length) {
      if (this.source) this.source.close();
      this.source = null;
      return;
    }
    void this._stream();
  }

  protected _stop(): void {
    if (this.source) this.source.close();
    if (this.pending) this.pending.close();
  }
}
