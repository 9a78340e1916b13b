// Task explorer: filter tasks (project, status, type, owner) over a window, see the status
// distribution and the durations per type for that window, page through the list, read a
// task's kept log page by page, and export the filtered list as JSON or CSV.
//
// Everything comes from the HTTP API (docs/tasks.md): GET /api/tasks[/<project>] with the
// filters and a cursor, GET /api/task-stats[/<project>]?window=, and
// GET /api/tasks/<project>/<id>/log with level, search and a cursor.

import { api, fmt, h } from "./dom.js";

const STATUSES = ["queued", "running", "paused", "completed", "failed", "cancelled"];
const WINDOWS = { hour: 3600, day: 86400, week: 7 * 86400 };
const PAGE = 50;
const LOG_PAGE = 50;
const EXPORT_CAP = 10000; // tasks fetched at most for one export
const CSV_COLUMNS = ["project", "id", "name", "type", "status", "owner", "tags", "percent",
  "created_at", "started_at", "finished_at", "duration", "error"];

function duration(t) {
  if (!t.started_at || !t.finished_at) return null;
  return Math.max(0, t.finished_at - t.started_at - (t.paused_seconds || 0));
}

function csvCell(value) {
  if (value === null || value === undefined) return "";
  const text = Array.isArray(value) ? value.join(" ") : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** The filtered list as CSV, one row per task. */
export function toCsv(tasks) {
  const rows = tasks.map((t) => CSV_COLUMNS.map((c) => csvCell(c === "duration" ? duration(t) : t[c])).join(","));
  return [CSV_COLUMNS.join(","), ...rows].join("\r\n") + "\r\n";
}

export class TaskExplorer {
  constructor() {
    this.form = document.getElementById("explorer-form");
    this.body = document.querySelector("#explorer-table tbody");
    this.more = document.getElementById("explorer-more");
    this.status = document.getElementById("explorer-status");
    this.statusChart = document.getElementById("status-chart");
    this.durationChart = document.getElementById("duration-chart");
    this.logView = document.getElementById("task-log-view");
    this.cursor = null;
    this.generation = 0; // a newer search makes the replies of older ones stale
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (this.form.reportValidity()) this.search();
    });
    this.more.addEventListener("click", () => this._page());
    document.getElementById("export-json").addEventListener("click", () => this.export("json"));
    document.getElementById("export-csv").addEventListener("click", () => this.export("csv"));
    this._logControls();
    this.search();
  }

  /** The filters of the form, as API query parameters (empty ones left out). */
  filters() {
    const data = new FormData(this.form);
    const params = new URLSearchParams({ sort: "created" });
    for (const name of ["status", "type", "owner"]) {
      const value = String(data.get(name) || "").trim();
      if (value) params.set(name, value);
    }
    params.set("since", String(Date.now() / 1000 - WINDOWS[data.get("window")]));
    return params;
  }

  _base() {
    const project = String(new FormData(this.form).get("project") || "").trim();
    return { project, list: project ? `/api/tasks/${encodeURIComponent(project)}` : "/api/tasks" };
  }

  async search() {
    this.generation += 1;
    this.cursor = null;
    this.body.replaceChildren();
    this.more.hidden = true;
    await Promise.all([this._page(), this._stats()]);
  }

  async _page() {
    const generation = this.generation;
    const params = this.filters();
    params.set("limit", String(PAGE));
    if (this.cursor) params.set("cursor", this.cursor);
    try {
      const body = await api(`${this._base().list}?${params}`);
      if (generation !== this.generation) return;
      for (const task of body.tasks) this.body.append(this._row(task));
      this.cursor = body.cursor;
      this.more.hidden = !body.cursor;
      this.status.textContent = `${this.body.childElementCount} task(s) shown${body.cursor ? ", more below" : ""}`;
    } catch (err) {
      if (generation === this.generation) this.status.textContent = `Tasks unavailable: ${err.message}`;
    }
    this.form.dataset.loaded = String(this.generation);
  }

  _row(t) {
    const took = duration(t);
    return h(
      "tr",
      { "data-task-id": t.id, "data-project": t.project, "data-status": t.status, tabindex: 0,
        onclick: () => this.openLog(t), onkeydown: (e) => e.key === "Enter" && this.openLog(t) },
      h("td", { text: t.project }),
      h("td", { text: t.name || t.id, title: t.id }),
      h("td", { text: t.type }),
      h("td", {}, h("span", { class: `badge ${t.status}`, text: t.status })),
      h("td", { text: t.owner || "" }),
      h("td", { text: fmt.ago(t.created_at) }),
      h("td", { text: took === null ? "" : fmt.duration(took) }),
    );
  }

  async _stats() {
    const generation = this.generation;
    const { project } = this._base();
    const window = new FormData(this.form).get("window");
    const path = project ? `/api/task-stats/${encodeURIComponent(project)}` : "/api/task-stats";
    try {
      const stats = await api(`${path}?window=${window}`);
      if (generation !== this.generation) return;
      this._statusChart(stats);
      this._durationChart(stats);
    } catch (err) {
      if (generation === this.generation) this.statusChart.textContent = `Statistics unavailable: ${err.message}`;
    }
  }

  _statusChart(stats) {
    const counts = STATUSES.map((s) => [s, stats.by_status[s] || 0]);
    const top = Math.max(1, ...counts.map(([, n]) => n));
    const rate = stats.success_rate === null ? "–" : `${Math.round(stats.success_rate * 100)}%`;
    this.statusChart.replaceChildren(
      h("h3", { text: `By status (${stats.created} created; success ${rate})` }),
      ...counts.map(([status, n]) =>
        h("div", { class: "chart-row", "data-status": status, "data-count": n },
          h("span", { class: "chart-label", text: status }),
          h("span", { class: `chart-bar ${status}`, style: `width: ${(100 * n) / top}%` }),
          h("span", { class: "chart-value", text: String(n) })),
      ),
    );
  }

  _durationChart(stats) {
    const top = Math.max(0.001, ...stats.types.map((t) => t.p99 || 0));
    const rows = stats.types.map((t) =>
      h("div", { class: "chart-row", "data-type": t.type, "data-p50": t.p50 ?? "", "data-p99": t.p99 ?? "" },
        h("span", { class: "chart-label", text: t.type }),
        h("span", { class: "chart-stack" },
          ...["p50", "p90", "p99"].map((q) => h("span", { class: `chart-bar ${q}`, title: `${q} ${t[q] ?? "–"} s`,
            style: `width: ${(100 * (t[q] || 0)) / top}%` }))),
        h("span", { class: "chart-value", text: `p50 ${fmt.number(t.p50)} s · p99 ${fmt.number(t.p99)} s` })),
    );
    this.durationChart.replaceChildren(
      h("h3", { text: "Durations by type (p50, p90, p99)" }),
      ...(rows.length ? rows : [h("p", { class: "empty", text: "No task finished in this window." })]),
    );
  }

  /** Every task the filters select (up to EXPORT_CAP), downloaded as a JSON or CSV file. */
  async export(kind) {
    const params = this.filters();
    params.set("limit", "1000");
    const tasks = [];
    let cursor = null;
    do {
      if (cursor) params.set("cursor", cursor);
      const body = await api(`${this._base().list}?${params}`);
      tasks.push(...body.tasks);
      cursor = body.cursor;
    } while (cursor && tasks.length < EXPORT_CAP);
    const text = kind === "json" ? JSON.stringify(tasks, null, 2) : toCsv(tasks);
    const type = kind === "json" ? "application/json" : "text/csv";
    const url = URL.createObjectURL(new Blob([text], { type }));
    const link = h("a", { href: url, download: `tasks.${kind}` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    return tasks.length;
  }

  _logControls() {
    this.logList = this.logView.querySelector(".log-lines");
    this.logOlder = this.logView.querySelector(".log-older");
    this.logForm = this.logView.querySelector("form");
    this.logForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this._readLog(true);
    });
    this.logOlder.addEventListener("click", () => this._readLog(false));
    this.logView.querySelector(".log-close").addEventListener("click", () => (this.logView.hidden = true));
  }

  /** Show a task's kept log, newest first; "Older" pages back. */
  openLog(task) {
    this.logTask = task;
    this.logView.hidden = false;
    this.logView.dataset.taskId = task.id;
    this.logView.querySelector("h3").textContent = `Log of ${task.name || task.id} (${task.project})`;
    this._readLog(true);
  }

  async _readLog(fresh) {
    const task = this.logTask;
    if (fresh) {
      this.logCursor = null;
      this.logList.replaceChildren();
    }
    const data = new FormData(this.logForm);
    const params = new URLSearchParams({ limit: String(LOG_PAGE) });
    if (data.get("level")) params.set("level", String(data.get("level")));
    if (String(data.get("search") || "").trim()) params.set("search", String(data.get("search")).trim());
    if (this.logCursor) params.set("cursor", this.logCursor);
    const path = `/api/tasks/${encodeURIComponent(task.project)}/${encodeURIComponent(task.id)}/log?${params}`;
    try {
      const page = await api(path);
      if (this.logTask !== task) return;
      for (const line of page.lines) {
        const fields = line.fields ? ` ${JSON.stringify(line.fields)}` : "";
        this.logList.append(
          h("li", { class: line.level, "data-line-id": line.id },
            h("span", { class: "time", text: fmt.clock(line.time) }),
            h("span", { class: "level", text: line.level }),
            `${line.phase ? `[${line.phase}] ` : ""}${line.message}${fields}`),
        );
      }
      this.logCursor = page.cursor;
      this.logOlder.hidden = !page.cursor;
      this.logView.dataset.lines = String(this.logList.childElementCount);
    } catch (err) {
      this.logList.append(h("li", { class: "error", text: `Log unavailable: ${err.message}` }));
    }
  }
}
