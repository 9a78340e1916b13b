// The dashboard page: one Relaycast connection feeding the connection indicator and the
// hosts, alerts and tasks panels. Settings come from the page's query string:
//
//   ?gateways=URL,URL     gateway base URLs to connect to (default: this page's gateway)
//   ?transports=sse,poll  transports allowed, in order (default: websocket,sse,poll)
//   ?projects=a,b         task projects to follow (default: the last ones followed here,
//                         else the demo's); more can be added on the page
//   ?hosts=a,b            hosts to chart besides those metrics.fleet lists
//   ?window=10            minutes of metrics the charts keep
//   ?heartbeat=45000      milliseconds of silence before the connection counts as dead
//   ?share=0              a connection of this tab's own, instead of one shared by every
//                         tab of the dashboard (relaycast-shared.js)

import { Relaycast } from "../sdk/relaycast.js";
import { openRelaycast } from "../sdk/relaycast-shared.js";
import { Alerts } from "./alerts.js";
import { Metrics } from "./metrics.js";
import { Tasks } from "./tasks.js";

const params = new URLSearchParams(location.search);
const list = (name) => (params.get(name) || "").split(",").map((s) => s.trim()).filter(Boolean);
const PROJECTS_KEY = "relaycast.projects";
const TOKEN_KEY = "relaycast.token";
const DEMO_PROJECTS = ["billing", "media", "web", "ml"];

// A gateway in production mode wants a connection token (a JWT from your login service).
const options = { pingInterval: 5000, token: () => localStorage.getItem(TOKEN_KEY) };
if (list("gateways").length) options.urls = list("gateways");
if (list("transports").length) options.transports = list("transports");
if (params.get("heartbeat")) options.heartbeatTimeout = Number(params.get("heartbeat"));

const rc = params.get("share") === "0" ? new Relaycast(options) : openRelaycast(options);
showConnection(rc);

new Alerts(rc);
new Metrics(rc, { windowMinutes: Number(params.get("window")) || 10, hosts: list("hosts") });
const stored = JSON.parse(localStorage.getItem(PROJECTS_KEY) || "null");
new Tasks(rc, list("projects").length ? list("projects") : stored || DEMO_PROJECTS, (projects) =>
  localStorage.setItem(PROJECTS_KEY, JSON.stringify(projects)),
);

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
