// relaycast.js: the browser client for Relaycast gateways. An ES module; no build step.
//
//   import { Relaycast } from "/static/relaycast.js";
//   const rc = new Relaycast();                  // the gateway that served the page
//   rc.on("state", ({ state, attempt }) => render(state, attempt));
//   rc.subscribe("tasks.web", {
//     message(data, { channel, offset }) { ... },
//     subscribed({ recovered }) { if (recovered === false) reload(); },
//   });
//
// The same protocol as the Python SDK (gateway/client.py): one connection, any number of
// channels; reconnect with exponential backoff and full jitter; a server silent past
// `heartbeatTimeout` counts as gone; every channel resumes from the last offset seen, on
// whichever gateway answers, and `recovered: false` tells the app that history no longer
// reached back. When a WebSocket cannot be opened it falls back to Server-Sent Events,
// and then to long-polling, with the same API and the same resume rules. With `token`, a
// connection presents a JWT (an `auth` frame, or a single-use ticket for SSE and polling)
// and refreshes it before it expires.
// docs/browser.md describes it; relaycast.d.ts types it.

/** Close codes at or above this (and below 5000) are final: the client stops. */
const TERMINAL = 4500;
const KINDS = ["websocket", "sse", "poll"];

const DEFAULTS = {
  urls: null, // gateway base URLs (http or https); default: the page's origin
  transports: KINDS,
  backoffBase: 250, // ms; retry n waits uniform(0, min(cap, base * 2^n))
  backoffCap: 10000,
  heartbeatTimeout: 45000, // ms without any frame before the connection counts as dead
  openTimeout: 8000, // ms a transport may take to open before the next one is tried
  pingInterval: 5000, // ms between latency probes; 0 turns them off
  pollWait: 25, // seconds a long-poll may wait on the gateway
  token: null, // a JWT, or a function returning one (or a promise of one) for each connection
};

/** Full-jitter exponential backoff, in milliseconds. */
export function backoffDelay(attempt, base, cap) {
  return Math.random() * Math.min(cap, base * 2 ** Math.min(attempt, 30));
}

/** A resilient subscriber. States: connecting, connected, reconnecting, disconnected. */
export class Relaycast {
  constructor(options = {}) {
    this.options = { ...DEFAULTS, ...options };
    const origin = globalThis.location ? globalThis.location.origin : "";
    this.urls = (this.options.urls && this.options.urls.length ? this.options.urls : [origin])
      .map((u) => String(u).replace(/\/+$/, ""));
    this.kinds = this.options.transports.filter((k) => KINDS.includes(k));
    if (!this.kinds.length) throw new Error("relaycast: no transport enabled");
    this.state = "disconnected";
    this.attempt = 0; // reconnect attempt (0 while connected)
    this.reconnects = 0; // times the connection was lost, for the life of the client
    this.transport = null; // the transport in use: websocket, sse or poll
    this.url = null; // the base URL connected to
    this.gateway = null; // the id of the gateway serving this client, once known
    this.rtt = null; // last measured round trip, ms
    /** @type {Map<string, {offset: number, epoch: string}>} last position per channel */
    this.positions = new Map();
    this._channels = new Map(); // channel -> Set of handler objects
    this._listeners = new Map(); // event name -> Set of functions
    this._link = null;
    this._preferred = 0; // index in kinds of the transport that last opened
    this._connects = 0;
    this._closed = false;
    this._wake = null;
    // Connect once the caller has had a chance to add listeners and subscriptions.
    if (options.connect !== false) queueMicrotask(() => this.connect());
  }

  // --- public API ------------------------------------------------------------------------

  /** Listen to "state", "gateway", "rtt", "error" or "close"; returns a function that stops. */
  on(event, fn) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(fn);
    return () => this._listeners.get(event).delete(fn);
  }

  /**
   * Receive a channel now and after every reconnect. `handlers` is a function (called
   * with each message's data) or an object with `message`, `subscribed` and `error`.
   * `options.since` ({offset, epoch}) resumes from a position the app kept.
   */
  subscribe(channel, handlers, options = {}) {
    const h = typeof handlers === "function" ? { message: handlers } : { ...handlers };
    if (options.since) this.positions.set(channel, { ...options.since });
    const fresh = !this._channels.has(channel);
    if (fresh) this._channels.set(channel, new Set());
    this._channels.get(channel).add(h);
    if (fresh && this._link) this._link.subscribe(channel);
    return {
      channel,
      unsubscribe: () => {
        const set = this._channels.get(channel);
        if (set && set.delete(h) && set.size === 0) this.unsubscribe(channel);
      },
    };
  }

  /** Stop receiving a channel (every handler of it) and forget its position. */
  unsubscribe(channel) {
    if (!this._channels.delete(channel)) return;
    this.positions.delete(channel);
    if (this._link) this._link.unsubscribe(channel);
  }

  /** The channels subscribed, in the order they were first subscribed. */
  get channels() {
    return [...this._channels.keys()];
  }

  /** Start connecting (done by the constructor unless `connect: false`). */
  connect() {
    if (this._running) return;
    this._closed = false;
    this._running = this._run().finally(() => (this._running = null));
  }

  /** Close the connection and stop reconnecting. */
  close() {
    this._closed = true;
    if (this._link) this._link.close();
    if (this._opening) this._opening.close();
    if (this._wake) this._wake();
    this._setState("disconnected");
  }

  // --- the connection loop ----------------------------------------------------------------

  async _run() {
    this._setState("connecting");
    while (!this._closed) {
      const url = this.urls[this._connects++ % this.urls.length];
      let end = null;
      for (let i = this._preferred; i < this.kinds.length && !this._closed; i++) {
        const link = (this._opening = new LINKS[this.kinds[i]](this, url));
        try {
          await link.open();
        } catch (err) {
          link.close();
          continue; // could not open: try the next transport
        } finally {
          this._opening = null;
        }
        if (this._closed) {
          link.close();
          break;
        }
        this._preferred = i;
        this._link = link;
        link.sync(); // channels (un)subscribed while it was opening
        this.transport = link.kind;
        this.url = url;
        this.attempt = 0;
        this._setState("connected");
        end = await link.ended;
        this._link = null;
        if (this._closed) break;
        this.reconnects++;
        this._emit("close", end);
        break;
      }
      if (this._closed) break;
      if (end && end.code >= TERMINAL && end.code < 5000) {
        this._setState("disconnected");
        return;
      }
      this.attempt++;
      this._setState("reconnecting");
      await this._sleep(backoffDelay(this.attempt, this.options.backoffBase, this.options.backoffCap));
    }
    this._setState("disconnected");
  }

  _sleep(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this._wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  _setState(state) {
    if (state === this.state && state !== "reconnecting") return;
    this.state = state;
    this._emit("state", {
      state,
      attempt: this.attempt,
      transport: this.transport,
      url: this.url,
    });
  }

  _emit(event, value) {
    for (const fn of this._listeners.get(event) || []) {
      try {
        fn(value);
      } catch (err) {
        console.error("relaycast: a listener threw", err);
      }
    }
  }

  _setGateway(id) {
    if (id && id !== this.gateway) {
      this.gateway = id;
      this._emit("gateway", id);
    }
  }

  _setRtt(ms) {
    this.rtt = Math.round(ms * 10) / 10;
    this._emit("rtt", this.rtt);
  }

  /** The token for a connection, or null: `options.token`, called when it is a function. */
  async _token() {
    const source = this.options.token;
    return (typeof source === "function" ? await source() : source) || null;
  }

  /** A single-use ticket for an HTTP request, bought with the token (POST /auth/ticket). */
  async _ticket(url, token) {
    const response = await fetch(`${url}/auth/ticket`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      cache: "no-store",
    });
    if (!response.ok) throw new Error(`ticket refused (${response.status})`);
    return (await response.json()).ticket;
  }

  /** The cursor of `channels` (see gateway/transports/cursor.py): "epoch:offset,...". */
  _cursor(channels) {
    const entries = channels.map((c) => {
      const p = this.positions.get(c);
      return p && p.epoch ? `${p.epoch}:${p.offset}` : "";
    });
    return entries.some(Boolean) ? entries.join(",") : "";
  }

  /** One server frame from any transport. `link.announced` holds channels told "subscribed". */
  _frame(link, frame) {
    switch (frame.type) {
      case "message": {
        const known = this.positions.get(frame.channel);
        if (known && frame.offset <= known.offset) return; // a duplicate across a reconnect
        this.positions.set(frame.channel, { offset: frame.offset, epoch: known ? known.epoch : "" });
        this._dispatch(frame.channel, "message", frame.data, {
          channel: frame.channel,
          offset: frame.offset,
        });
        return;
      }
      case "subscribed": {
        this.positions.set(frame.channel, { offset: frame.offset, epoch: frame.epoch });
        // A poll re-subscribes every time; only news reaches the app.
        if (link.announced.has(frame.channel) && frame.recovered !== false) return;
        link.announced.add(frame.channel);
        this._dispatch(frame.channel, "subscribed", {
          channel: frame.channel,
          offset: frame.offset,
          epoch: frame.epoch,
          recovered: frame.recovered ?? null,
          replayed: frame.replayed ?? null,
          transport: link.kind,
        });
        return;
      }
      case "authenticated":
        link.authenticated(frame.expires);
        this._emit("authenticated", { user: frame.user, expires: frame.expires ?? null });
        return;
      case "error":
        if (frame.channel && this._channels.has(frame.channel)) {
          this._dispatch(frame.channel, "error", frame);
        }
        this._emit("error", frame);
        return;
      default:
        return; // ping and pong are the link's business; unsubscribed needs nothing
    }
  }

  _dispatch(channel, kind, ...args) {
    for (const h of this._channels.get(channel) || []) {
      if (typeof h[kind] !== "function") continue;
      try {
        h[kind](...args);
      } catch (err) {
        console.error(`relaycast: a ${kind} handler of ${channel} threw`, err);
      }
    }
  }
}

// --- transports ---------------------------------------------------------------------------
// A link is one connection over one transport. open() resolves once it works and rejects
// when it cannot be opened (then the next transport is tried); `ended` resolves with
// {code, reason} when it is over. subscribe/unsubscribe follow the client's channels.

class Link {
  constructor(client, url) {
    this.client = client;
    this.url = url;
    this.announced = new Set();
    this.lastFrame = Date.now();
    this.done = false;
    this.ended = new Promise((resolve) => (this._resolveEnded = resolve));
    this._timers = [];
  }

  /** Start the heartbeat watch and the latency probe; called once open. */
  _started() {
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
    this._probe();
    if (pingInterval > 0) this._every(pingInterval, () => this._probe());
  }

  /** Measure the round trip (and learn the gateway) by timing GET /gateway. */
  async _probe() {
    const started = performance.now();
    try {
      const response = await fetch(`${this.url}/gateway`, { cache: "no-store" });
      const body = await response.json();
      if (this.done) return;
      this.client._setRtt(performance.now() - started);
      if (this.kind === "websocket") this.client._setGateway(body.gateway);
    } catch (err) {
      // a failed probe says nothing the heartbeat will not
    }
  }

  _every(ms, fn) {
    this._timers.push(setInterval(fn, ms));
  }

  _frame(frame) {
    this.lastFrame = Date.now();
    if (!this.done) this.client._frame(this, frame);
  }

  finish(code, reason = "") {
    if (this.done) return;
    this.done = true;
    this._timers.forEach(clearInterval);
    this._stop();
    this._resolveEnded({ code, reason });
  }

  close() {
    this.finish(1000, "closed by the client");
  }

  /** Catch up with the client's channels. */
  sync() {}

  /** The gateway accepted the token until `expires` (Unix seconds). */
  authenticated(expires) {}

  /** Resolve when `ready` does, reject after the open timeout or when `failed` fires. */
  _opening(start) {
    return new Promise((resolve, reject) => {
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

class WebSocketLink extends Link {
  get kind() {
    return "websocket";
  }

  async open() {
    const url = `${this.url.replace(/^http/, "ws")}/ws`;
    this.sent = new Set();
    const token = await this.client._token();
    return this._opening((ready, failed) => {
      const ws = (this.ws = new WebSocket(url));
      let opened = false;
      ws.onopen = () => {
        opened = true;
        if (token) this._send({ type: "auth", token }); // before any subscribe
        for (const channel of this.client.channels) this.subscribe(channel);
        ready();
      };
      ws.onmessage = (event) => this._message(event.data);
      ws.onclose = (event) => {
        if (!opened) failed(new Error(`websocket closed before opening (${event.code})`));
        this.finish(event.code, event.reason);
      };
    });
  }

  _message(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch (err) {
      return;
    }
    if (frame.type === "ping") {
      this._send({ type: "pong", id: frame.id });
    } else if (frame.type === "pong" && frame.id === this._pingId && this._pingAt) {
      this.client._setRtt(performance.now() - this._pingAt);
      this._pingAt = null;
    }
    this._frame(frame);
  }

  /** Over a WebSocket the round trip is a protocol ping; the gateway id still comes by HTTP. */
  async _probe() {
    if (!this.client.gateway || this._pingId === undefined) await super._probe();
    this._pingId = (this._pingId || 0) + 1;
    this._pingAt = performance.now();
    this._send({ type: "ping", id: this._pingId });
  }

  _send(frame) {
    if (this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify(frame));
  }

  subscribe(channel) {
    if (!this.ws || this.ws.readyState !== 1 || this.sent.has(channel)) return;
    this.sent.add(channel);
    const since = this.client.positions.get(channel);
    this._send({ type: "subscribe", channel, ...(since && since.epoch ? { since } : {}) });
  }

  unsubscribe(channel) {
    this.announced.delete(channel);
    if (this.sent.delete(channel)) this._send({ type: "unsubscribe", channel });
  }

  /** Send a fresh token (`refresh`) a little before the current one expires. */
  authenticated(expires) {
    clearTimeout(this._refresh);
    if (!expires) return;
    const left = expires - Date.now() / 1000;
    const early = Math.min(60, Math.max(1, left / 5));
    this._refresh = setTimeout(async () => {
      const token = await this.client._token().catch(() => null);
      if (token && !this.done) this._send({ type: "refresh", token });
    }, Math.max(1, left - early) * 1000);
  }

  sync() {
    const wanted = new Set(this.client.channels);
    for (const channel of [...this.sent]) if (!wanted.has(channel)) this.unsubscribe(channel);
    for (const channel of wanted) this.subscribe(channel);
  }

  _stop() {
    clearTimeout(this._refresh);
    if (this.ws) {
      this.ws.onclose = this.ws.onmessage = this.ws.onopen = null;
      if (this.ws.readyState <= 1) this.ws.close(1000);
    }
  }
}

/** HTTP transports name their channels in the URL: a change of channels reopens the request. */
class HttpLink extends Link {
  subscribe() {
    this._reopenSoon();
  }

  unsubscribe(channel) {
    this.announced.delete(channel);
    this._reopenSoon();
  }

  _reopenSoon() {
    if (this._reopenQueued || this.done) return;
    this._reopenQueued = true;
    setTimeout(() => {
      this._reopenQueued = false;
      if (!this.done) this._reopen();
    }, 0);
  }

  /** Reopen when the channels served differ from the client's. */
  sync() {
    if (String(this.serving || []) !== String(this.client.channels)) this._reopenSoon();
  }

  _query(extra = {}) {
    const params = new URLSearchParams();
    const channels = (this.serving = this.client.channels);
    for (const channel of channels) params.append("channel", channel);
    const since = this.client._cursor(channels);
    if (since) params.set("since", since);
    for (const [key, value] of Object.entries(extra)) params.set(key, String(value));
    return params.toString();
  }
}

class SSELink extends HttpLink {
  get kind() {
    return "sse";
  }

  open() {
    return this._opening((ready, failed) => {
      if (!this.client.channels.length) {
        // Nothing to stream yet: check the gateway answers, and stream once there is.
        fetch(`${this.url}/gateway`, { cache: "no-store" }).then((r) => {
          if (r.ok) ready();
          else failed(new Error(`gateway answered ${r.status}`));
        }, failed);
        return;
      }
      this._stream(ready, failed);
    });
  }

  get serving() {
    return this.source ? this.source.channels : [];
  }

  set serving(channels) {
    this._requested = channels; // the stream being opened; `source.channels` once open
  }

  /** Open an EventSource for the current channels; it replaces the one before once open. */
  async _stream(ready = () => {}, failed = null) {
    let ticket = null;
    try {
      const token = await this.client._token();
      if (token) ticket = await this.client._ticket(this.url, token); // EventSource sends no headers
    } catch (err) {
      if (failed) failed(err);
      else this.finish(1006, `no ticket: ${err.message}`);
      return;
    }
    if (this.done) return;
    const source = new EventSource(`${this.url}/sse?${this._query(ticket ? { ticket } : {})}`);
    source.channels = this._requested;
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
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch (err) {
        return;
      }
      this._frame(frame);
    };
    source.addEventListener("hello", (event) => {
      this.lastFrame = Date.now();
      this.client._setGateway(JSON.parse(event.data).gateway);
    });
    source.addEventListener("close", (event) => {
      if (source !== this.source) return;
      const { code, reason } = JSON.parse(event.data);
      this.finish(code, reason);
    });
    source.onerror = () => {
      source.close(); // the client reconnects by itself, with backoff and fallback
      if (!opened && failed) failed(new Error("event stream could not be opened"));
      else if (source === this.source || !opened) this.finish(1006, "event stream lost");
    };
    if (!this.source) this.source = source;
  }

  _reopen() {
    if (!this.client.channels.length) {
      if (this.source) this.source.close();
      this.source = null;
      return;
    }
    this._stream();
  }

  _stop() {
    if (this.source) this.source.close();
    if (this.pending) this.pending.close();
  }
}

class PollLink extends HttpLink {
  get kind() {
    return "poll";
  }

  open() {
    return this._opening((ready, failed) => {
      this._poll(0).then(() => {
        ready();
        this._loop();
      }, failed);
    });
  }

  /** One request; its frames are handled before it resolves. Rejects on HTTP failure. */
  async _poll(wait) {
    if (!this.client.channels.length) {
      const response = await fetch(`${this.url}/gateway`, { cache: "no-store" });
      if (!response.ok) throw new Error(`gateway answered ${response.status}`);
      this.lastFrame = Date.now();
      return;
    }
    const headers = {};
    const extra = { wait };
    const token = await this.client._token();
    if (token && new URL(this.url).origin === globalThis.location.origin) {
      headers.authorization = `Bearer ${token}`;
    } else if (token) {
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
      if (!response.ok) throw new Error(`poll answered ${response.status}`);
      const body = await response.json();
      this.lastFrame = Date.now();
      this.client._setGateway(body.gateway);
      for (const frame of body.frames) this._frame(frame);
      if (body.close) this.finish(body.close.code, body.close.reason);
    } finally {
      clearTimeout(limit);
    }
  }

  async _loop() {
    while (!this.done) {
      this._reopened = false;
      try {
        await this._poll(this.client.channels.length ? this.client.options.pollWait : 0);
        if (!this.client.channels.length && !this.done) await this._idle();
      } catch (err) {
        if (this._reopened || this.done) continue; // aborted on purpose
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
    if (this.controller) this.controller.abort();
    if (this._resume) this._resume();
  }

  _stop() {
    if (this.controller) this.controller.abort();
    if (this._resume) this._resume();
  }
}

const LINKS = { websocket: WebSocketLink, sse: SSELink, poll: PollLink };
