// relaycast-shared.ts: one Relaycast connection shared by every tab of a site.
//
//   import { openRelaycast } from "/static/sdk/relaycast-shared.js";
//   const rc = openRelaycast({ urls: [...] });   // same API as `new Relaycast(...)`
//
// The connection lives in a SharedWorker (relaycast-worker.js); each tab talks to it over
// a MessagePort. Tabs opened with the same gateways and transports share it, and it lasts
// while any of them is open. Where SharedWorker is missing (Chrome on Android, some
// embedded browsers) each tab gets its own `Relaycast`, with the same API.
//
// One difference from a connection of your own: a tab that subscribes to a channel another
// tab already follows is given the channel's position (`subscribed` with `shared: true`)
// and its newest message at once, rather than nothing until the next message.

import { RelaycastBase } from "./base.js";
import { Relaycast } from "./relaycast.js";
import type { ClientOptions, ConnectionState, SubscribeOptions, TokenSource } from "./types.js";

/** A shared connection where the browser has SharedWorker, else a Relaycast of its own. */
export function openRelaycast(options: ClientOptions = {}): SharedRelaycast | Relaycast {
  return typeof SharedWorker === "function" ? new SharedRelaycast(options) : new Relaycast(options);
}

/**
 * The tab's side of a connection run by a SharedWorker; the API of Relaycast. When another
 * tab already follows a channel, its `subscribed` comes at once with `shared: true`,
 * followed by the channel's newest message.
 */
export class SharedRelaycast extends RelaycastBase {
  readonly shared = true as const;
  readonly options: Record<string, unknown>;
  /** Until the worker tells its status: its connection may be up already. */
  override state: ConnectionState = "connecting";
  private readonly port: MessagePort;
  private readonly _token: TokenSource;
  private readonly _ready: Promise<void>;
  private _closed = false;

  constructor(options: ClientOptions = {}) {
    super();
    const origin = globalThis.location.origin;
    const urls = (options.urls && options.urls.length ? options.urls : [origin]).map((u) => new URL(u, origin).origin);
    // The token stays here (a function cannot be posted); the worker asks for it.
    const { token, WebSocket: _socket, ...rest } = options;
    this._token = token || null;
    this.options = { ...rest, urls, connect: true, token: token ? "ask" : null };
    const key = JSON.stringify([urls, options.transports || null, Boolean(token)]);
    // The name depends on the options, so bundlers cannot read it statically: tell Vite.
    const worker = new SharedWorker(new URL("./relaycast-worker.js", import.meta.url), /* @vite-ignore */ {
      type: "module",
      name: `relaycast ${key}`,
    });
    this.port = worker.port;
    this.port.onmessage = ({ data }) => this._receive(data);
    this.port.start();
    const tab = crypto.randomUUID();
    // A lock held until the tab goes away: the worker waits on it to notice a tab that
    // crashed. The tab says hello once it holds it, and everything else after the hello.
    this._ready = new Promise<void>((resolve) => {
      if (!navigator.locks) return resolve();
      void navigator.locks.request(`relaycast-tab-${tab}`, () => {
        resolve();
        return new Promise(() => {});
      });
    });
    this._post({ op: "hello", options: this.options, tab });
    addEventListener("pagehide", () => this.close());
  }

  /** Nothing to do: the worker connects. */
  connect(): void {}

  /** Leave the shared connection; it closes when the last tab leaves. */
  close(): void {
    if (this._closed) return;
    this._closed = true;
    this._post({ op: "bye" });
    this.state = "disconnected";
    this._emit("state", { state: "disconnected", attempt: 0, transport: this.transport, url: this.url });
  }

  /** The worker is told of a channel once, with the options of its first subscribe. */
  protected _follow(channel: string, options: SubscribeOptions, fresh: boolean): void {
    if (!fresh) return;
    this._post({ op: "subscribe", channel, since: options.since || null, maxRate: options.maxRate ?? null });
  }

  protected _leave(channel: string): void {
    this._post({ op: "unsubscribe", channel });
  }

  private _post(message: Record<string, unknown>): void {
    void this._ready.then(() => this.port.postMessage(message));
  }

  private _receive(message: any): void {
    if (this._closed) return;
    if (message.status) Object.assign(this, message.status);
    switch (message.ev) {
      case "status":
        this._emit("state", this._status());
        if (this.gateway) this._emit("gateway", this.gateway);
        return;
      case "state":
        this._emit("state", message.value);
        return;
      case "message":
        this._message(message.channel, message.data, message.meta);
        return;
      case "subscribed":
        this.positions.set(message.channel, { offset: message.info.offset, epoch: message.info.epoch });
        this._dispatch(message.channel, "subscribed", message.info);
        return;
      case "suberror":
        this._dispatch(message.channel, "error", message.frame);
        return;
      case "log":
        console.error(message.value);
        return;
      case "token":
        Promise.resolve(typeof this._token === "function" ? this._token() : this._token)
          .catch(() => null)
          .then((value) => this._post({ op: "token", id: message.id, token: value || null }));
        return;
      default:
        this._emit(message.ev, message.value); // connected, disconnected, gateway, rtt, ...
    }
  }
}
