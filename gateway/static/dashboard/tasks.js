// Tasks panel: per project, running and recent tasks and workflows with progress bars,
// current step, ETA, status, phases and an expandable live log.
//
// `tasks.<project>` carries every event of the project's tasks (docs/publishers.md); each
// event but `*.log` holds the task's whole state, whose `version` grows with every change,
// so states are applied newest-wins and the HTTP API's list (GET /api/tasks/<project>)
// fills in what happened before the page opened, in any order relative to the events.
//
// The projects followed are the page's choice (there is no list of every project): the
// form in the panel's head adds one, and each project's card has a button that drops it.

import { api, fmt, h } from "./dom.js";

const ACTIVE = new Set(["queued", "running", "paused"]);
const FINISHED_SHOWN = 8; // finished tasks kept on screen per project
const LOG_LINES = 300; // lines kept per task log
const QUIET = 120; // seconds without a change after which a running task without ETA counts as stalled

export class Tasks {
  /** `saved(projects)` is called when the user adds or removes a project on the page. */
  constructor(rc, projects, saved = () => {}) {
    this.rc = rc;
    this.saved = saved;
    this.root = document.getElementById("projects");
    this.none = document.getElementById("projects-none");
    this.projects = new Map(); // project -> {card, list, count, tasks: Map(id -> entry), sub}
    for (const project of projects) this.add(project);
    this._showNone();
    const form = document.getElementById("project-form");
    const input = document.getElementById("project-input");
    input.addEventListener("input", () => input.setCustomValidity(""));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      input.value = input.value.trim();
      if (!input.value || !input.reportValidity()) return; // the browser says what is wrong
      this.add(input.value);
      this._save();
      input.value = "";
    });
    setInterval(() => this._tick(), 1000);
  }

  add(project) {
    if (this.projects.has(project)) return;
    const list = h("ul", { class: "task-list" });
    const count = h("span", { class: "count" });
    const empty = h("p", { class: "empty", text: "No tasks yet." });
    const remove = h("button", {
      type: "button",
      class: "remove",
      title: `Stop following ${project}`,
      "aria-label": `Stop following ${project}`,
      text: "×",
      onclick: () => this.remove(project),
    });
    const card = h(
      "article",
      { class: "project", "data-project": project },
      h("div", { class: "project-head" }, h("h3", { text: project }), h("span", { class: "project-tools" }, count, remove)),
      list,
      empty,
    );
    this.root.append(card);
    const entry = { card, list, count, empty, tasks: new Map(), sub: null };
    this.projects.set(project, entry);
    this._showNone();
    entry.sub = this.rc.subscribe(`tasks.${project}`, {
      message: (event) => this._event(entry, event),
      subscribed: (info) => {
        if (info.recovered === false) this._load(project, entry); // events were lost: reload
      },
    });
    this._load(project, entry);
  }

  /** Stop following a project: its card goes, and so does its channel. */
  remove(project) {
    const entry = this.projects.get(project);
    if (!entry) return;
    this.projects.delete(project);
    entry.sub.unsubscribe();
    entry.card.remove();
    this._save();
    this._showNone();
  }

  _save() {
    this.saved([...this.projects.keys()]);
  }

  _showNone() {
    this.none.hidden = this.projects.size > 0;
  }

  async _load(project, entry) {
    try {
      const body = await api(`/api/tasks/${encodeURIComponent(project)}?limit=30`);
      if (this.projects.get(project) !== entry) return; // removed meanwhile
      for (const state of [...body.tasks].reverse()) this._apply(entry, state, false);
    } catch (err) {
      entry.empty.textContent = `Task list unavailable: ${err.message}`;
    }
  }

  _event(entry, event) {
    if (event.type === "task.deleted") {
      entry.tasks.get(event.id)?.el.remove();
      entry.tasks.delete(event.id);
      this._order(entry);
      return;
    }
    const task = this._task(entry, event.id, event.task);
    if (!task) return;
    task.events += 1;
    task.el.dataset.events = String(task.events);
    const what = event.type.slice(event.type.indexOf(".") + 1);
    if (what === "log") {
      this._log(task, event.time, event.level || "info", event.message, event.phase);
    } else if (what !== "progress") {
      const state = event.task || {};
      const text = state.error || state.message || "";
      const phase = event.phase ? `${event.phase} ` : "";
      this._log(task, event.time, what === "failed" ? "error" : "info", `${phase}${what}${text ? `: ${text}` : ""}`);
    }
    if (event.task) this._apply(entry, event.task);
  }

  /** The entry of a task, made from `state` if new; null for an unknown task without state. */
  _task(entry, id, state) {
    let task = entry.tasks.get(id);
    if (!task && state) {
      task = this._row(state);
      entry.tasks.set(id, task);
    }
    return task || null;
  }

  /**
   * Show `state` unless the task already has a newer one. `live`: it came as an event just
   * now; otherwise (the API's list at page load) it may be old, and its ETA and quiet time
   * count from its `updated_at`.
   */
  _apply(entry, state, live = true) {
    const task = this._task(entry, state.id, state);
    if (task.state && state.version <= task.state.version) return;
    task.state = state;
    const now = Date.now() / 1000;
    task.seen = live || !Number.isFinite(state.updated_at) ? now : Math.min(now, state.updated_at);
    this._render(task);
    this._order(entry);
  }

  _row(state) {
    const name = h("span", { class: "task-name" });
    const badge = h("span", { class: "badge" });
    const fill = h("span");
    const step = h("span", { class: "step" });
    const eta = h("span", { class: "eta" });
    const phases = h("div", { class: "phases" });
    const log = h("ul", { class: "task-log" });
    const summary = h("summary", { text: "log" });
    const el = h(
      "li",
      { class: "task", "data-task-id": state.id, "data-events": 0 },
      h("div", { class: "task-top" }, name, badge),
      h("div", { class: "bar", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100 }, fill),
      phases,
      h("div", { class: "task-info" }, step, eta),
      h("details", {}, summary, log),
    );
    return { el, name, badge, fill, step, eta, phases, log, summary, lines: 0, events: 0, state: null };
  }

  _render(task) {
    const s = task.state;
    const percent = Math.max(0, Math.min(100, s.percent || 0));
    task.el.dataset.status = s.status;
    task.el.dataset.percent = String(percent);
    task.el.querySelector(".bar").setAttribute("aria-valuenow", String(percent));
    task.name.textContent = s.name || s.id;
    task.name.title = `${s.kind} ${s.type} · ${s.id}`;
    task.badge.className = `badge ${s.status}`;
    task.badge.textContent = `${s.status} ${Math.floor(percent)}%`;
    task.fill.style.width = `${percent}%`;
    const step =
      s.step_name && s.total_steps ? `${s.step_name} (${s.step}/${s.total_steps})` : s.step_name || "";
    task.step.textContent = [s.phase && s.kind === "workflow" ? `▸ ${s.phase}` : "", step, s.error || s.message || ""]
      .filter(Boolean)
      .join(" · ");
    task.phases.replaceChildren(
      ...(s.phases || []).map((p) =>
        h(
          "div",
          { class: "phase", "data-status": p.status, title: `${p.name}: ${p.status} ${Math.floor(p.percent)}%`, style: `flex-grow: ${p.weight}` },
          h("span", { class: "phase-name", text: p.name }),
          h("div", { class: "bar" }, h("span", { style: `width: ${p.status === "completed" ? 100 : p.percent}%` })),
        ),
      ),
    );
    this._eta(task);
  }

  _eta(task) {
    const s = task.state;
    const quiet = Date.now() / 1000 - task.seen;
    const hasEta = s.eta_seconds !== null && s.eta_seconds !== undefined;
    const left = hasEta ? s.eta_seconds - quiet : null;
    // The ETA ran out with no word from the task (or it has none and went quiet): say so
    // rather than sit at "0s".
    const stalled = s.status === "running" && (hasEta ? left <= 0 : quiet >= QUIET);
    task.el.toggleAttribute("data-stalled", stalled);
    if (stalled) {
      task.eta.textContent = `stalled: no progress for ${fmt.duration(quiet)}`;
    } else if (s.status === "running" && hasEta) {
      task.eta.textContent = `ETA ${fmt.duration(left)}`;
    } else if (!ACTIVE.has(s.status) && s.started_at && s.finished_at) {
      task.eta.textContent = `took ${fmt.duration(s.finished_at - s.started_at - (s.paused_seconds || 0))}`;
    } else {
      task.eta.textContent = s.status === "queued" ? `queued ${fmt.ago(s.created_at)}` : "";
    }
  }

  _tick() {
    for (const entry of this.projects.values()) {
      for (const task of entry.tasks.values()) if (task.state && ACTIVE.has(task.state.status)) this._eta(task);
    }
  }

  _log(task, time, level, message, phase) {
    const line = h(
      "li",
      { class: level },
      h("span", { class: "time", text: fmt.clock(time) }),
      phase ? `[${phase}] ` : "",
      message,
    );
    const stick = task.log.scrollTop + task.log.clientHeight >= task.log.scrollHeight - 4;
    task.log.append(line);
    task.lines += 1;
    if (task.log.childElementCount > LOG_LINES) task.log.firstElementChild.remove();
    task.summary.textContent = `log (${task.lines})`;
    if (stick) task.log.scrollTop = task.log.scrollHeight;
  }

  /** Active tasks first (newest first), then the most recently finished, a few of them. */
  _order(entry) {
    const tasks = [...entry.tasks.values()].filter((t) => t.state);
    const active = tasks.filter((t) => ACTIVE.has(t.state.status)).sort((a, b) => b.state.created_at - a.state.created_at);
    const done = tasks
      .filter((t) => !ACTIVE.has(t.state.status))
      .sort((a, b) => (b.state.finished_at || 0) - (a.state.finished_at || 0));
    for (const gone of done.splice(FINISHED_SHOWN)) {
      gone.el.remove();
      entry.tasks.delete(gone.state.id);
    }
    const order = [...active, ...done];
    order.forEach((task, i) => {
      if (entry.list.children[i] !== task.el) entry.list.insertBefore(task.el, entry.list.children[i] || null);
    });
    entry.empty.hidden = order.length > 0;
    const counts = ["running", "paused", "queued"].map((status) => [
      status,
      active.filter((t) => t.state.status === status).length,
    ]);
    entry.count.textContent = [
      ...counts.filter(([status, n]) => n || status === "running").map(([status, n]) => `${n} ${status}`),
      `${done.length} recent`,
    ].join(" · ");
  }
}
