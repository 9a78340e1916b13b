// relaycast-worker.ts: the SharedWorker behind relaycast-shared. One Relaycast connection
// serves every tab of the same origin and options: a channel is subscribed once however
// many tabs follow it, and each frame is handed to the tabs that follow it.
//
// Tab -> worker: {op: "hello", options, tab}, {op: "subscribe", channel, since?, maxRate?},
//                {op: "unsubscribe", channel}, {op: "token", id, token}, {op: "bye"}
// Worker -> tab: {ev: "status", status}, {ev: "state" | "connected" | "disconnected" |
//                "reconnecting" | "gateway" | "rtt" | "error" | "close" | "authenticated",
//                value, status}, {ev: "message", channel, data, meta},
//                {ev: "subscribed", channel, info}, {ev: "suberror", channel, frame},
//                {ev: "token", id}: asks a tab for a connection token (options.token "ask")
import { Relaycast } from "./relaycast.js";
const scope = globalThis;
let client = null;
const tabs = new Map(); // port -> channels it follows
const channels = new Map();
const tokens = new Map(); // tokens asked of a tab
let asked = 0;
/** A token from one of the tabs (a function cannot cross a MessagePort; tabs hold it). */
function askToken() {
    const port = tabs.keys().next().value;
    if (!port)
        return Promise.resolve(null);
    const id = ++asked;
    return new Promise((resolve) => {
        tokens.set(id, resolve);
        port.postMessage({ ev: "token", id });
        setTimeout(() => tokens.delete(id) && resolve(null), 10000);
    });
}
function status() {
    const { state, attempt, transport, url, gateway, rtt, reconnects } = client;
    return { state, attempt, transport, url, gateway, rtt, reconnects };
}
function send(ports, message) {
    for (const port of ports)
        port.postMessage(message);
}
const EVENTS = [
    "state",
    "connected",
    "disconnected",
    "reconnecting",
    "gateway",
    "rtt",
    "error",
    "close",
    "authenticated",
];
function hello(port, options, tab) {
    tabs.set(port, new Set());
    if (!client) {
        const own = new Relaycast({ ...options, token: options.token === "ask" ? askToken : null });
        client = own;
        for (const ev of EVENTS)
            own.on(ev, (value) => send(tabs.keys(), { ev, value, status: status() }));
    }
    port.postMessage({ ev: "status", status: status() });
    // A tab that closes without saying bye (a crash) releases its lock: forget it then.
    if (tab && scope.navigator.locks)
        scope.navigator.locks.request(`relaycast-tab-${tab}`, () => leave(port));
}
function subscribe(port, channel, since, maxRate) {
    const mine = tabs.get(port);
    if (!mine || mine.has(channel) || !client)
        return;
    mine.add(channel);
    const entry = channels.get(channel);
    if (entry) {
        // Joining a channel another tab follows: where it stands, and its newest message.
        entry.ports.add(port);
        if (entry.info)
            port.postMessage({ ev: "subscribed", channel, info: { ...entry.info, shared: true } });
        if (entry.last)
            port.postMessage({ ev: "message", channel, ...entry.last });
        return;
    }
    const fresh = { ports: new Set([port]), info: null, last: null };
    channels.set(channel, fresh);
    client.subscribe(channel, {
        message(data, meta) {
            fresh.last = { data, meta };
            send(fresh.ports, { ev: "message", channel, data, meta });
        },
        subscribed(info) {
            fresh.info = info;
            send(fresh.ports, { ev: "subscribed", channel, info });
        },
        error(frame) {
            send(fresh.ports, { ev: "suberror", channel, frame });
        },
    }, { ...(since ? { since } : {}), ...(maxRate != null ? { maxRate } : {}) });
}
function unsubscribe(port, channel) {
    const mine = tabs.get(port);
    if (mine)
        mine.delete(channel);
    const entry = channels.get(channel);
    if (!entry || !entry.ports.delete(port) || entry.ports.size)
        return;
    channels.delete(channel);
    if (client)
        client.unsubscribe(channel);
}
function leave(port) {
    const mine = tabs.get(port);
    if (!mine)
        return;
    for (const channel of [...mine])
        unsubscribe(port, channel);
    tabs.delete(port);
    if (!tabs.size && client) {
        client.close();
        client = null;
    }
}
scope.onconnect = (event) => {
    const port = event.ports[0];
    port.onmessage = ({ data }) => {
        try {
            if (data.op === "hello")
                hello(port, data.options, data.tab);
            else if (data.op === "subscribe")
                subscribe(port, data.channel, data.since, data.maxRate ?? null);
            else if (data.op === "unsubscribe")
                unsubscribe(port, data.channel);
            else if (data.op === "token" && tokens.has(data.id)) {
                tokens.get(data.id)(data.token);
                tokens.delete(data.id);
            }
            else if (data.op === "bye")
                leave(port);
        }
        catch (err) {
            port.postMessage({ ev: "log", value: `relaycast worker: ${err instanceof Error && err.stack ? err.stack : err}` });
        }
    };
    port.start();
};
