// Notification bell: the unread count, the list (mark one or all read), a toast for each
// new notification, and a toast when a followed task completes or fails.
//
// Whose notifications: `?user=` in the page's URL, else the `sub` of the connection token
// kept in this browser, else none (the bell says so). `notifications.<user>` carries each
// change with the unread count after it (docs/notifications.md), and the HTTP API's list
// (GET /api/notifications/users/<user>) fills in what came before the page opened.
// Followed tasks: `?follow=project/id,...` and the form in the bell's panel; each is
// watched on `tasks.<project>.<id>@state`, and a toast says when it completes or fails.

import { api, fmt, h, toast } from "./dom.js";

const FOLLOW_KEY = "relaycast.follow";
const TOAST_KIND = { success: "resolved", error: "critical", warning: "warning" };
const ENDED = { completed: "resolved", failed: "critical" };
const ID = /^[A-Za-z0-9_-]{1,64}$/;

export class Notifications {
  constructor(rc, { user, follow = [] }) {
    this.rc = rc;
    this.user = user;
    this.items = new Map(); // id -> notification, newest last
    this.bell = document.getElementById("bell");
    this.count = document.getElementById("bell-count");
    this.panel = document.getElementById("bell-panel");
    this.list = document.getElementById("bell-list");
    this.none = document.getElementById("bell-none");
    this.bell.addEventListener("click", () => this.toggle());
    document.getElementById("bell-read-all").addEventListener("click", () => this.markRead());
    this.followed = new Map(); // "project/id" -> {sub, status}
    const stored = JSON.parse(localStorage.getItem(FOLLOW_KEY) || "[]");
    for (const key of [...follow, ...stored]) this.follow(key);
    const form = document.getElementById("follow-form");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const input = document.getElementById("follow-input");
      if (this.follow(input.value.trim())) input.value = "";
      else toast("warning", "Not a task", "Write project/task-id, e.g. shop/reindex-1");
    });
    if (!user) {
      this.none.textContent = "No user: open the page with ?user=<id>, or keep a connection token here.";
      this._show(0);
      return;
    }
    this.bell.dataset.user = user;
    rc.subscribe(`notifications.${user}`, {
      message: (event) => this._event(event),
      subscribed: (info) => {
        if (info.recovered === false) this._load();
      },
    });
    this._load();
  }

  toggle() {
    this.panel.hidden = !this.panel.hidden;
    this.bell.setAttribute("aria-expanded", String(!this.panel.hidden));
  }

  async _load() {
    try {
      const body = await this._api(`?limit=50`);
      for (const note of [...body.notifications].reverse()) this.items.set(note.id, note);
      this._render(body.unread);
    } catch (err) {
      this.none.textContent = `Notifications unavailable: ${err.message}`;
    }
  }

  _event(event) {
    if (event.type === "notification.created") {
      const note = event.notification;
      const fresh = !this.items.has(note.id);
      this.items.set(note.id, note);
      if (fresh) toast(TOAST_KIND[note.type] || "info", note.title, note.body || "");
    } else if (event.type === "notification.read") {
      for (const note of this.items.values()) if (!event.id || note.id === event.id) note.read = true;
    } else if (event.type === "notification.deleted") {
      this.items.delete(event.id);
    }
    this._render(event.unread);
  }

  _render(unread) {
    const notes = [...this.items.values()].sort((a, b) => b.created_at - a.created_at).slice(0, 50);
    this.list.replaceChildren(...notes.map((note) => this._item(note)));
    this.none.hidden = notes.length > 0;
    this._show(unread);
  }

  _show(unread) {
    this.count.textContent = String(unread);
    this.count.hidden = !unread;
    this.bell.dataset.unread = String(unread);
    this.bell.setAttribute("aria-label", `Notifications: ${unread} unread`);
  }

  _item(note) {
    const read = note.read
      ? null
      : h("button", { type: "button", class: "mark-read", onclick: () => this.markRead(note.id) }, "Mark read");
    const where = note.project ? ` · ${note.project}${note.task_id ? `/${note.task_id}` : ""}` : "";
    return h(
      "li",
      { class: `alert note ${note.read ? "read" : "unread"}`, "data-id": note.id, "data-type": note.type, "data-priority": note.priority },
      h("div", { class: "alert-top" }, h("span", {}, h("span", { class: `badge ${note.type}`, text: note.type }), ` ${note.title}`), read),
      note.body ? h("div", { class: "body", text: note.body }) : null,
      h("div", { class: "meta", text: `${note.priority} · ${fmt.clock(note.created_at)}${where}` }),
    );
  }

  async markRead(id) {
    try {
      await this._api(id ? `/${encodeURIComponent(id)}/read` : "/read", "POST");
    } catch (err) {
      toast("error", "Could not mark read", err.message);
    }
  }

  /** The user's notification endpoints, with the connection token (a user's own) if kept
   *  here, else through `api` (the API key, asked for on a 401). */
  async _api(path, method = "GET") {
    const url = `/api/notifications/users/${encodeURIComponent(this.user)}${path}`;
    const token = localStorage.getItem("relaycast.token");
    if (!token) return api(url, { method });
    const response = await fetch(url, { method, headers: { authorization: `Bearer ${token}` }, cache: "no-store" });
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new Error((data && data.error && data.error.message) || `${response.status}`);
    return data;
  }

  /** Watch a task ("project/id"); a toast says when it completes or fails. */
  follow(key) {
    const [project, id, ...rest] = key.split("/");
    if (rest.length || !ID.test(project || "") || !ID.test(id || "")) return false;
    if (this.followed.has(key)) return true;
    const entry = { status: null, sub: null };
    this.followed.set(key, entry);
    entry.sub = this.rc.subscribe(`tasks.${project}.${id}@state`, (task) => {
      const before = entry.status;
      entry.status = task.status;
      if (before !== null && before !== task.status && ENDED[task.status]) {
        const detail = task.status === "failed" ? task.error || "" : task.message || "";
        toast(ENDED[task.status], `${task.name} ${task.status}`, `${project}/${id}${detail ? ` · ${detail}` : ""}`);
      }
    });
    localStorage.setItem(FOLLOW_KEY, JSON.stringify([...this.followed.keys()]));
    document.getElementById("follow-list").textContent = [...this.followed.keys()].join(", ");
    return true;
  }
}

/** The `sub` of a JWT, unverified (only to pick whose notifications to show). */
export function tokenUser(token) {
  try {
    const payload = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    return typeof payload.sub === "string" ? payload.sub : null;
  } catch (err) {
    return null;
  }
}
