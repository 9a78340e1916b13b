// The dashboard page: one Relaycast connection feeding the connection indicator and the
// hosts, alerts and tasks panels. Settings come from the page's query string:
//
//   ?gateways=URL,URL     gateway base URLs to connect to (default: this page's gateway);
//                         only this page's origin and those the gateway's
//                         RELAYCAST_DASHBOARD_GATEWAYS names (GET /dashboard/config): the
//                         connection carries the token kept in this browser
//   ?transports=sse,poll  transports allowed, in order (default: websocket,sse,poll)
//   ?projects=a,b         task projects to follow (default: the last ones followed here,
//                         else the demo's); more can be added on the page
//   ?hosts=a,b            hosts to chart besides those metrics.fleet lists
//   ?sources=a,b          services whose own metrics to chart besides those with history
//   ?range=1h             the span the charts show first: 1h, 1d or 30d
//   ?heartbeat=45000      milliseconds of silence before the connection counts as dead
//   ?share=0              a connection of this tab's own, instead of one shared by every
//                         tab of the dashboard (relaycast-shared.js)
//   ?user=alice           whose notifications the bell shows (default: the token's sub)
//   ?follow=p/id,p/id     tasks whose completion or failure is announced by a toast

import { Relaycast } from "../sdk/relaycast.js";
import { openRelaycast } from "../sdk/relaycast-shared.js";
import { Alerts } from "./alerts.js";
import { Metrics } from "./metrics.js";
import { Notifications, tokenUser } from "./notifications.js";
import { TaskExplorer } from "./task_explorer.js";
import { Tasks } from "./tasks.js";

const params = new URLSearchParams(location.search);
const list = (name) => (params.get(name) || "").split(",").map((s) => s.trim()).filter(Boolean);
const PROJECTS_KEY = "relaycast.projects";
const TOKEN_KEY = "relaycast.token";
const DEMO_PROJECTS = ["billing", "media", "web", "ml"];

// A gateway in production mode wants a connection token (a JWT from your login service).
const options = { pingInterval: 5000, token: () => localStorage.getItem(TOKEN_KEY) };
const { trusted, refused } = sortGateways(list("gateways"), await configuredGateways());
if (trusted.length) options.urls = trusted;
if (refused.length) {
  const text = `Not connecting to ${refused.join(", ")}: only this gateway and those its RELAYCAST_DASHBOARD_GATEWAYS names receive this browser's token.`;
  console.warn(`relaycast dashboard: ${text}`);
  const notice = document.getElementById("notice");
  notice.textContent = text;
  notice.hidden = false;
}
if (list("transports").length) options.transports = list("transports");
if (params.get("heartbeat")) options.heartbeatTimeout = Number(params.get("heartbeat"));

const rc = params.get("share") === "0" ? new Relaycast(options) : openRelaycast(options);
showConnection(rc);

new Alerts(rc);
new Metrics(rc, { range: params.get("range") || "1h", hosts: list("hosts"), sources: list("sources") });
const stored = JSON.parse(localStorage.getItem(PROJECTS_KEY) || "null");
new Tasks(rc, list("projects").length ? list("projects") : stored || DEMO_PROJECTS, (projects) =>
  localStorage.setItem(PROJECTS_KEY, JSON.stringify(projects)),
);
window.taskExplorer = new TaskExplorer(); // for the console, and for tests

const token = localStorage.getItem(TOKEN_KEY);
new Notifications(rc, { user: params.get("user") || (token && tokenUser(token)), follow: list("follow") });

window.relaycast = rc; // for the console, and for tests

let asked = false;
rc.on("error", (frame) => {
  if (asked || (frame.code !== "unauthorized" && frame.code !== "permission_denied")) return;
  asked = true;
  const token = window.prompt(`This gateway needs a connection token to read ${frame.channel || "its channels"}:`);
  if (token) {
    localStorage.setItem(TOKEN_KEY, token.trim());
    location.reload();
  }
});

function showConnection(client) {
  const box = document.getElementById("connection");
  const text = (id, value) => (document.getElementById(id).textContent = value);
  client.on("state", ({ state, attempt, transport }) => {
    box.dataset.state = state;
    box.dataset.transport = transport || "";
    text("conn-state", state === "reconnecting" ? `reconnecting (attempt ${attempt})` : state);
    text("conn-transport", transport && state === "connected" ? `via ${transport}` : "");
    text("conn-reconnects", client.reconnects ? `${client.reconnects} reconnect${client.reconnects > 1 ? "s" : ""}` : "");
  });
  client.on("gateway", (id) => {
    box.dataset.gateway = id;
    text("conn-gateway", `gateway ${id}`);
  });
  client.on("rtt", (ms) => text("conn-rtt", `rtt ${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`));
}

/** The origins, besides this page's, that the gateway lets the dashboard connect to. */
async function configuredGateways() {
  try {
    const response = await fetch("/dashboard/config", { cache: "no-store" });
    const body = response.ok ? await response.json() : {};
    return new Set((body.gateways || []).map(originOf).filter(Boolean));
  } catch (err) {
    return new Set(); // this page's own gateway still works
  }
}

/** Split `?gateways=` into those the token may go to and those it may not. */
function sortGateways(urls, configured) {
  const trusted = [];
  const refused = [];
  for (const url of urls) {
    const origin = originOf(url);
    (origin && (origin === location.origin || configured.has(origin)) ? trusted : refused).push(url);
  }
  return { trusted, refused };
}

function originOf(url) {
  try {
    const parsed = new URL(url, location.origin);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.origin : null;
  } catch (err) {
    return null;
  }
}
