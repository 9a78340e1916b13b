// Small helpers for the dashboard: elements, number formats, toasts, and the HTTP API.

/** h("li", {class: "x", "data-id": 1, onclick}, child, "text") */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "text") el.textContent = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  el.append(...children.filter((c) => c !== null && c !== undefined));
  return el;
}

export const fmt = {
  percent: (v) => (v === null || v === undefined ? "–" : `${v.toFixed(v >= 10 ? 0 : 1)}%`),
  bytes(v) {
    if (v === null || v === undefined) return "–";
    const units = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (Math.abs(v) >= 1000 && i < units.length - 1) {
      v /= 1000;
      i++;
    }
    return `${v.toFixed(v >= 100 || i === 0 ? 0 : 1)} ${units[i]}`;
  },
  rate: (v) => (v === null || v === undefined ? "–" : `${fmt.bytes(v)}/s`),
  number(v) {
    if (v === null || v === undefined) return "–";
    const a = Math.abs(v);
    if (a >= 1e9) return `${(v / 1e9).toFixed(1)}G`;
    if (a >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
    if (a >= 1e4) return `${(v / 1e3).toFixed(a >= 1e5 ? 0 : 1)}k`;
    return Number.isInteger(v) ? String(v) : v.toFixed(a >= 100 ? 0 : a >= 10 ? 1 : 2);
  },
  duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
    if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
    return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
  },
  clock: (t) => new Date(t * 1000).toLocaleTimeString([], { hour12: false }),
  ago: (t) => `${fmt.duration(Date.now() / 1000 - t)} ago`,
};

/** Show a toast for `ms` milliseconds. kind: info, warning, critical, resolved... */
export function toast(kind, title, body = "", ms = 8000) {
  const el = h(
    "div",
    { class: `toast ${kind}`, role: "alert" },
    h("div", { class: "title", text: title }),
    body ? h("div", { class: "body", text: body }) : null,
  );
  document.getElementById("toasts").append(el);
  setTimeout(() => el.remove(), ms);
  return el;
}

const KEY = "relaycast.apiKey";

/**
 * Call the gateway's HTTP API (same origin). With an API key configured on the gateway,
 * the first 401 asks for the key and keeps it in this browser's local storage.
 */
export async function api(path, { method = "GET", body } = {}) {
  for (let attempt = 0; attempt < 2; attempt++) {
    const headers = { accept: "application/json" };
    const key = localStorage.getItem(KEY);
    if (key) headers.authorization = `Bearer ${key}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
    if (response.status === 401 && attempt === 0) {
      const entered = window.prompt("This gateway's API needs its key (RELAYCAST_API_KEY):");
      if (!entered) break;
      localStorage.setItem(KEY, entered.trim());
      continue;
    }
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const error = data && data.error;
      const message = error && error.message ? error.message : `${response.status} ${response.statusText}`;
      throw new Error(message);
    }
    return data;
  }
  throw new Error("the API key was refused");
}
