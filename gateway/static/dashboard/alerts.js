// Alerts panel: active alerts by severity, recently resolved ones, a toast for each
// change, and resolve-by-hand through the HTTP API.
//
// `alerts@state` (latest-value) carries every active alert and the recent ones, so the
// panel is right the moment it subscribes; `alerts` carries each raise and resolve.

import { api, fmt, h, toast } from "./dom.js";

const SEVERITY = { critical: 0, error: 1, warning: 2, info: 3 };

export class Alerts {
  constructor(rc) {
    this.active = document.getElementById("alerts-active");
    this.recent = document.getElementById("alerts-recent");
    this.none = document.getElementById("alerts-none");
    this.count = document.getElementById("alerts-count");
    rc.subscribe("alerts@state", (state) => this.render(state));
    rc.subscribe("alerts", (event) => this.announce(event));
  }

  render(state) {
    const active = [...(state.active || [])].sort(
      (a, b) => (SEVERITY[a.severity] ?? 9) - (SEVERITY[b.severity] ?? 9) || b.raised_at - a.raised_at,
    );
    this.active.replaceChildren(...active.map((alert) => this._item(alert, true)));
    this.recent.replaceChildren(...(state.recent || []).map((alert) => this._item(alert, false)));
    this.none.hidden = active.length > 0;
    this.count.textContent = `${active.length} active`;
  }

  _item(alert, active) {
    const detail = active
      ? `${alert.metric} ${alert.op} ${alert.threshold} (was ${round(alert.value)}) · raised ${fmt.clock(alert.raised_at)}`
      : `resolved ${alert.resolved_by === "manual" ? "by hand" : "automatically"} ${fmt.clock(alert.resolved_at)}` +
        (alert.note ? ` · ${alert.note}` : "");
    const button = active
      ? h("button", { type: "button", onclick: (e) => this.resolve(alert, e.currentTarget) }, "Resolve")
      : null;
    return h(
      "li",
      { class: "alert", "data-alert-id": alert.id, "data-severity": alert.severity },
      h(
        "div",
        { class: "alert-top" },
        h("span", {}, h("span", { class: `badge ${alert.severity}`, text: alert.severity }), ` ${alert.message}`),
        button,
      ),
      h("div", { class: "meta", text: `${alert.host} · ${detail}` }),
    );
  }

  announce(event) {
    const alert = event.alert;
    if (!alert) return;
    if (event.type === "alert.raised") {
      toast(alert.severity, `${capital(alert.severity)}: ${alert.message}`, `${alert.host} · ${alert.metric} ${round(alert.value)}`);
    } else if (event.type === "alert.resolved") {
      const how = alert.resolved_by === "manual" ? "by hand" : "automatically";
      toast("resolved", `Resolved: ${alert.message}`, `${alert.host} · ${how}`);
    }
  }

  async resolve(alert, button) {
    button.disabled = true;
    try {
      await api(`/api/alerts/${encodeURIComponent(alert.id)}/resolve`, {
        method: "POST",
        body: { note: "resolved on the dashboard" },
      });
    } catch (err) {
      button.disabled = false;
      toast("error", "Could not resolve the alert", err.message);
    }
  }
}

function round(v) {
  return typeof v === "number" ? Math.round(v * 10) / 10 : v;
}

function capital(s) {
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}
