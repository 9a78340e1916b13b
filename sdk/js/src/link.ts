// link.ts: what every transport link of the client shares.
//
// A link is one connection over one transport. open() resolves once it works and rejects
// when it cannot be opened (then the client tries the next transport); `ended` resolves
// with {code, reason} when it is over. subscribe/unsubscribe follow the client's channels.
// The link watches the heartbeat and measures the round trip; the client (relaycast.ts)
// owns positions, handlers and the reconnect loop, and hands each frame to `_frame`.

import type { ServerFrame } from "./frames.js";
import type { Relaycast } from "./relaycast.js";
import type { CloseInfo, TransportKind } from "./types.js";

export abstract class Link {
  abstract readonly kind: TransportKind;
  readonly announced = new Set<string>();
  lastFrame = Date.now();
  done = false;
  readonly ended: Promise<CloseInfo>;
  private _resolveEnded!: (info: CloseInfo) => void;
  private _timers: ReturnType<typeof setInterval>[] = [];

  constructor(
    readonly client: Relaycast,
    readonly url: string,
  ) {
    this.ended = new Promise((resolve) => (this._resolveEnded = resolve));
  }

  abstract open(): Promise<void>;
  abstract subscribe(channel: string): void;
  abstract unsubscribe(channel: string): void;
  protected abstract _stop(): void;

  /** Start the heartbeat watch and the latency probe; called once open. */
  protected _started(): void {
    if (this.done) return;
    const { heartbeatTimeout, pingInterval, pollWait, openTimeout } = this.client.options;
    // A long-poll is silent while it waits; it aborts itself when the gateway overstays.
    const limit = this.kind === "poll" ? Math.max(heartbeatTimeout, pollWait * 1000 + openTimeout) : heartbeatTimeout;
    this._every(1000, () => {
      if (this.kind !== "websocket" && !this.client.channels.length) {
        this.lastFrame = Date.now(); // an HTTP link with no channels has no stream to watch
      } else if (Date.now() - this.lastFrame > limit) {
        this.finish(4000, "no frame within the heartbeat timeout");
      }
    });
    void this._probe();
    if (pingInterval > 0) this._every(pingInterval, () => void this._probe());
  }

  /** Measure the round trip (and learn the gateway) by timing GET /gateway. */
  protected async _probe(): Promise<void> {
    const started = performance.now();
    try {
      const response = await fetch(`${this.url}/gateway`, { cache: "no-store" });
      const body = (await response.json()) as { gateway?: string };
      if (this.done) return;
      this.client._setRtt(performance.now() - started);
      if (this.kind === "websocket") this.client._setGateway(body.gateway);
    } catch {
      // a failed probe says nothing the heartbeat will not
    }
  }

  private _every(ms: number, fn: () => void): void {
    this._timers.push(setInterval(fn, ms));
  }

  protected _frame(frame: ServerFrame): void {
    this.lastFrame = Date.now();
    if (!this.done) this.client._frame(this, frame);
  }

  finish(code: number, reason = ""): void {
    if (this.done) return;
    this.done = true;
    this._timers.forEach(clearInterval);
    this._stop();
    this._resolveEnded({ code, reason });
  }

  close(): void {
    this.finish(1000, "closed by the client");
  }

  /** Catch up with the client's channels. */
  sync(): void {}

  /** The gateway accepted the token until `expires` (Unix seconds). */
  authenticated(_expires: number | null): void {}

  /** Resolve when `ready` does, reject after the open timeout or when `failed` fires. */
  protected _opening(start: (ready: () => void, failed: (err: Error) => void) => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("open timed out")), this.client.options.openTimeout);
      start(
        () => {
          clearTimeout(timer);
          resolve();
        },
        (err) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    }).then(() => this._started());
  }
}

/** HTTP transports name their channels in the URL: a change of channels reopens the request. */
export abstract class HttpLink extends Link {
  private _reopenQueued = false;
  protected _serving: string[] = [];

  protected abstract _reopen(): void;

  subscribe(_channel?: string): void {
    this._reopenSoon();
  }

  unsubscribe(channel: string): void {
    this.announced.delete(channel);
    this._reopenSoon();
  }

  private _reopenSoon(): void {
    if (this._reopenQueued || this.done) return;
    this._reopenQueued = true;
    setTimeout(() => {
      this._reopenQueued = false;
      if (!this.done) this._reopen();
    }, 0);
  }

  /** The channels the open request serves. */
  protected get serving(): string[] {
    return this._serving;
  }

  /** Reopen when the channels served differ from the client's. */
  override sync(): void {
    if (String(this.serving || []) !== String(this.client.channels)) this._reopenSoon();
  }

  protected _query(extra: Record<string, string | number> = {}): string {
    const params = new URLSearchParams();
    const channels = (this._serving = this.client.channels);
    for (const channel of channels) params.append("channel", channel);
    const since = this.client._cursor(channels);
    if (since) params.set("since", since);
    for (const [key, value] of Object.entries(extra)) params.set(key, String(value));
    return params.toString();
  }
}
