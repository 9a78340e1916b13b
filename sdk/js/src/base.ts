// base.ts: what Relaycast (relaycast.ts, a connection of its own) and SharedRelaycast
// (relaycast-shared.ts, the connection of a SharedWorker) share: the status fields, the
// event listeners, the channels with their handlers and the last position seen in each.
// A subclass says how a channel is followed and left, and how to connect and close.

import type {
  ClientEvents,
  ConnectionState,
  Handlers,
  MessageMeta,
  Position,
  RelaycastLike,
  StateChange,
  SubscribeOptions,
  Subscription,
  TransportKind,
} from "./types.js";

type AnyHandlers = Handlers<any>;
type Listener = (value: any) => void;

/** The API of every Relaycast client; the connection is the subclass's. */
export abstract class RelaycastBase implements RelaycastLike {
  state: ConnectionState = "disconnected";
  /** The reconnect attempt under way (0 while connected). */
  attempt = 0;
  /** Times the connection was lost, for the life of the client. */
  reconnects = 0;
  transport: TransportKind | null = null;
  url: string | null = null;
  /** The id of the gateway serving this client, once known. */
  gateway: string | null = null;
  /** Last measured round trip, ms. */
  rtt: number | null = null;
  /** The last position seen in each subscribed channel. */
  readonly positions = new Map<string, Position>();
  protected readonly _channels = new Map<string, Set<AnyHandlers>>();
  private readonly _listeners = new Map<string, Set<Listener>>();

  /** Start connecting. */
  abstract connect(): void;
  /** Close the connection (or leave it) and stop. */
  abstract close(): void;
  /**
   * Follow `channel` on the connection: called by subscribe after the handlers are added,
   * with `fresh` true when the channel had none before.
   */
  protected abstract _follow(channel: string, options: SubscribeOptions, fresh: boolean): void;
  /** Leave `channel` on the connection: its last handlers went. */
  protected abstract _leave(channel: string): void;

  /**
   * Listen to "state", "connected", "disconnected", "reconnecting", "gateway", "rtt",
   * "error", "close" or "authenticated"; returns a function that stops.
   */
  on<K extends keyof ClientEvents>(event: K, fn: (value: ClientEvents[K]) => void): () => void {
    let set = this._listeners.get(event);
    if (!set) this._listeners.set(event, (set = new Set()));
    set.add(fn as Listener);
    return () => void set.delete(fn as Listener);
  }

  /**
   * Receive a channel now and after every reconnect. `handlers` is a function (called
   * with each message's data) or an object with `message`, `subscribed` and `error`.
   * `options.since` ({offset, epoch}) resumes from a position the app kept; `maxRate`
   * caps the updates per second of a latest-value channel.
   */
  subscribe<T = unknown>(
    channel: string,
    handlers: Handlers<T> | ((data: T, meta: MessageMeta) => void),
    options: SubscribeOptions = {},
  ): Subscription {
    const h: AnyHandlers = typeof handlers === "function" ? { message: handlers } : { ...handlers };
    let set = this._channels.get(channel);
    const fresh = !set;
    if (!set) this._channels.set(channel, (set = new Set()));
    set.add(h);
    this._follow(channel, options, fresh);
    return {
      channel,
      unsubscribe: () => {
        const current = this._channels.get(channel);
        if (current && current.delete(h) && current.size === 0) this.unsubscribe(channel);
      },
    };
  }

  /** Stop receiving a channel (every handler of it) and forget its position. */
  unsubscribe(channel: string): void {
    if (!this._channels.delete(channel)) return;
    this.positions.delete(channel);
    this._leave(channel);
  }

  /** The channels subscribed, in the order they were first subscribed. */
  get channels(): string[] {
    return [...this._channels.keys()];
  }

  /** What a "state" event carries. */
  protected _status(): StateChange {
    return { state: this.state, attempt: this.attempt, transport: this.transport, url: this.url };
  }

  protected _emit<K extends keyof ClientEvents>(event: K, value: ClientEvents[K]): void {
    for (const fn of this._listeners.get(event) || []) {
      try {
        fn(value);
      } catch (err) {
        console.error("relaycast: a listener threw", err);
      }
    }
  }

  /** A message of a channel: handed to its handlers unless its offset was seen already. */
  protected _message(channel: string, data: unknown, meta: MessageMeta): void {
    const known = this.positions.get(channel);
    if (known && meta.offset <= known.offset) return; // a duplicate across a reconnect
    this.positions.set(channel, { offset: meta.offset, epoch: known ? known.epoch : "" });
    this._dispatch(channel, "message", data, meta);
  }

  protected _dispatch(channel: string, kind: keyof AnyHandlers, ...args: unknown[]): void {
    for (const h of this._channels.get(channel) || []) {
      const fn = h[kind] as ((...a: unknown[]) => void) | undefined;
      if (typeof fn !== "function") continue;
      try {
        fn.apply(h, args);
      } catch (err) {
        console.error(`relaycast: a ${kind} handler of ${channel} threw`, err);
      }
    }
  }
}
