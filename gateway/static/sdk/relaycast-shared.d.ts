// Type declarations for relaycast-shared.js: one connection shared by every tab.

import type {
  ClientEvents,
  ClientOptions,
  ConnectionState,
  Handlers,
  MessageMeta,
  Position,
  Relaycast,
  Subscription,
  TransportKind,
} from "./relaycast.js";

/** A shared connection where the browser has SharedWorker, else a Relaycast of its own. */
export function openRelaycast(options?: ClientOptions): SharedRelaycast | Relaycast;

/** The tab's side of a connection run by a SharedWorker; the API of Relaycast. */
export class SharedRelaycast {
  constructor(options?: ClientOptions);
  readonly shared: true;
  readonly state: ConnectionState;
  readonly attempt: number;
  readonly reconnects: number;
  readonly transport: TransportKind | null;
  readonly url: string | null;
  readonly gateway: string | null;
  readonly rtt: number | null;
  readonly positions: Map<string, Position>;
  readonly channels: string[];

  on<K extends keyof ClientEvents>(event: K, fn: (value: ClientEvents[K]) => void): () => void;
  /**
   * As Relaycast.subscribe. When another tab already follows the channel, `subscribed`
   * comes at once with `shared: true`, followed by the channel's newest message.
   */
  subscribe<T = unknown>(
    channel: string,
    handlers: Handlers<T> | ((data: T, meta: MessageMeta) => void),
    options?: { since?: Position },
  ): Subscription;
  unsubscribe(channel: string): void;
  connect(): void;
  /** Leave the shared connection; it closes when the last tab leaves. */
  close(): void;
}
