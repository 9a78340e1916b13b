// Hosts panel: each host's CPU, memory, network and disk, and each service's own metrics,
// over the last hour, day or 30 days (uPlot).
//
// Hosts come from `metrics.fleet` (a FleetSnapshot listing every host) and from the
// page's `?hosts=` parameter; each host's `metrics.host.<host>` is a latest-value
// channel, so a chart gets the current sample at once and a point per sample after.
// Services come from `GET /api/history` and `?sources=`; each `metrics.source.<source>`
// carries every series of the source with its unit, and each series gets a chart.
//
// A card draws its history (`GET /api/history/<source>/<metric>`) the moment it appears,
// and again when the range changes; live samples then extend the lines. Without access to
// the API (a gateway with an API key this browser does not hold) the charts start empty.
//
// A snapshot need not be the metrics publisher's whole HostSnapshot: "metrics of your
// own" (docs/publishers.md) publish any mapping. A chart of the standard set appears once
// a snapshot has a number for it, and every other number in the snapshot gets a chart of
// its own, named by its dotted path (`queue.depth`), up to OWN_CHARTS per host.

import uPlot from "./vendor/uplot/uPlot.esm.js";
import { fmt, h } from "./dom.js";
import {
  CHART_PATHS,
  CHARTS,
  OWN_CHARTS,
  STANDARD,
  facts,
  number,
  ownNumbers,
  ownSpec,
  pick,
  place,
  seriesLabel,
} from "./snapshot.js";

const HEIGHT = 110;
const RANGES = { "1h": 3600, "1d": 86400, "30d": 30 * 86400 };
const HISTORY_POINTS = 1500;

export class Metrics {
  constructor(rc, { range = "1h", hosts = [], sources = [] } = {}) {
    this.rc = rc;
    this.range = RANGES[range] ? range : "1h";
    this.window = RANGES[this.range];
    this.hosts = new Map(); // host or source -> entry (see _card)
    this.root = document.getElementById("hosts");
    this.none = document.getElementById("hosts-none");
    this.span = document.getElementById("metrics-window");
    this._rangeButtons();
    this._resize = new ResizeObserver((entries) => {
      for (const { target } of entries) {
        if (target.plot) target.plot.setSize({ width: width(target), height: HEIGHT });
      }
    });
    rc.subscribe("metrics.fleet", (fleet) => {
      for (const summary of fleet.hosts || []) this.follow(summary.host, summary.stale);
    });
    for (const host of hosts) this.follow(host);
    for (const source of sources) this.followSource(source);
    fetchJSON("/api/history").then((body) => {
      for (const { name, kind } of (body && body.sources) || []) {
        if (kind === "host") this.follow(name);
        else this.followSource(name);
      }
    });
  }

  /** Chart a host (once), and mark it stale or fresh. */
  follow(host, stale = false) {
    let entry = this.hosts.get(host);
    if (!entry) {
      entry = this._card(host, "host");
      this.hosts.set(host, entry);
      this.none.hidden = true;
      this.rc.subscribe(`metrics.host.${host}`, (snapshot) => this._sample(entry, snapshot));
      this._history(entry);
    }
    entry.card.classList.toggle("stale", Boolean(stale));
  }

  /** Chart a service's own metrics (once): every series it sends, named and in its units. */
  followSource(source) {
    if (this.hosts.has(source)) return;
    const entry = this._card(source, "source");
    this.hosts.set(source, entry);
    this.none.hidden = true;
    this.rc.subscribe(`metrics.source.${source}`, (message) => {
      const snapshot = { time: message && message.time };
      for (const s of (message && message.series) || []) {
        const label = seriesLabel(s);
        entry.units.set(label, s.unit || "");
        snapshot[label] = s.value;
      }
      this._sample(entry, snapshot);
    });
    this._history(entry);
  }

  /** The range buttons: the last hour, day or 30 days. */
  _rangeButtons() {
    const box = h("span", { class: "ranges", id: "metrics-ranges" });
    for (const name of Object.keys(RANGES)) {
      const button = h("button", { type: "button", "data-range": name, text: name });
      button.addEventListener("click", () => this.setRange(name));
      box.append(button);
    }
    this.span.after(box);
    this._showSpan();
  }

  /** Show the last `name` (1h, 1d, 30d): every card draws that span of history again. */
  setRange(name) {
    if (!RANGES[name] || name === this.range) return;
    this.range = name;
    this.window = RANGES[name];
    this._showSpan();
    for (const entry of this.hosts.values()) this._history(entry);
  }

  _showSpan() {
    this.span.textContent = `last ${this.range}`;
    for (const button of document.querySelectorAll("#metrics-ranges button")) {
      button.setAttribute("aria-pressed", String(button.dataset.range === this.range));
    }
  }

  /**
   * Draw the card's history for the current range: one query per charted series, their
   * points merged by time into snapshots that go through `_sample` like live ones (a
   * host's numbers share each sample's time, and buckets share their start).
   */
  async _history(entry) {
    const generation = ++entry.generation;
    const range = this.range;
    const source = encodeURIComponent(entry.name);
    const listed = await fetchJSON(`/api/history/${source}`);
    if (!listed || generation !== entry.generation) return;
    const wanted = listed.series.filter(
      (s) => entry.kind === "source" || CHART_PATHS.has(s.metric) || !STANDARD.has(s.metric.split(".")[0]),
    );
    const answers = await Promise.all(
      wanted.map((s) => {
        const entity = s.entity ? `&entity=${encodeURIComponent(s.entity)}` : "";
        const metric = encodeURIComponent(s.metric);
        return fetchJSON(`/api/history/${source}/${metric}?range=${range}&max_points=${HISTORY_POINTS}${entity}`);
      }),
    );
    if (generation !== entry.generation) return;
    const byTime = new Map();
    answers.forEach((answer, i) => {
      if (!answer) return;
      const s = wanted[i];
      const label = entry.kind === "source" ? seriesLabel(s) : s.metric;
      if (entry.kind === "source") entry.units.set(label, s.unit || "");
      for (const [time, avg] of answer.points) {
        let snapshot = byTime.get(time);
        if (!snapshot) byTime.set(time, (snapshot = { time }));
        if (entry.kind === "source") snapshot[label] = avg;
        else place(snapshot, label, avg);
      }
    });
    entry.times = [];
    for (const chart of entry.charts.values()) chart.columns = chart.spec.series.map(() => []);
    for (const time of [...byTime.keys()].sort((a, b) => a - b)) {
      this._sample(entry, byTime.get(time), { history: true });
    }
    entry.card.dataset.range = range;
    for (const chart of entry.charts.values()) this._draw(entry, chart);
  }

  _card(name, kind) {
    const facts = h("div", { class: "facts" });
    const charts = h("div", { class: "charts" });
    const card = h(
      "article",
      { class: "host", "data-host": name, "data-kind": kind, "data-points": 0 },
      h("div", { class: "host-head" }, h("h3", { text: name }), facts),
      charts,
    );
    this.root.append(card);
    return { name, kind, card, facts, chartsBox: charts, times: [], charts: new Map(), units: new Map(), generation: 0 };
  }

  /** A chart for `spec`, its columns filled with gaps for the samples before it. */
  _chart(entry, spec) {
    const legend = h("span", { class: "legend" });
    const box = h("div", { class: "chart", "data-chart": spec.key });
    entry.chartsBox.append(h("div", {}, h("div", { class: "chart-title" }, h("span", { text: spec.title }), legend), box));
    this._resize.observe(box);
    const gaps = entry.times.length;
    const chart = { spec, box, legend, columns: spec.series.map(() => new Array(gaps).fill(null)), plot: null };
    entry.charts.set(spec.key, chart);
    return chart;
  }

  _sample(entry, s, { history = false } = {}) {
    if (!s || typeof s !== "object") return;
    const time = Number.isFinite(s.time) ? s.time : Date.now() / 1000;
    // History keeps milliseconds: a live sample within one of the newest point is that point.
    if (entry.times.length && time < entry.times[entry.times.length - 1] + 0.001) return;
    // This sample's numbers, by chart key: the standard charts, then the host's own fields.
    const values = new Map();
    for (const spec of CHARTS) {
      const row = spec.series.map((series) => number(pick(s, series.path)));
      if (entry.charts.has(spec.key) || row.some((v) => v !== null)) values.set(spec.key, row);
    }
    for (const [path, value] of ownNumbers(s)) values.set(`own:${path}`, [value]);
    for (const key of values.keys()) {
      if (entry.charts.has(key)) continue;
      const spec = CHARTS.find((c) => c.key === key) || ownSpec(key, entry.charts.size, entry.units);
      if (spec.own && [...entry.charts.keys()].filter((k) => k.startsWith("own:")).length >= OWN_CHARTS) {
        values.delete(key);
        continue;
      }
      this._chart(entry, spec);
    }
    entry.times.push(time);
    for (const [key, chart] of entry.charts) {
      const row = values.get(key) || chart.spec.series.map(() => null);
      chart.columns.forEach((column, i) => column.push(row[i]));
    }
    const cutoff = time - this.window;
    let drop = 0;
    while (drop < entry.times.length && entry.times[drop] < cutoff) drop++;
    if (drop) {
      entry.times.splice(0, drop);
      for (const chart of entry.charts.values()) chart.columns.forEach((c) => c.splice(0, drop));
    }
    entry.card.dataset.points = String(entry.times.length);
    if (history) return; // drawn once the whole history is in
    entry.card.classList.remove("stale");
    entry.facts.replaceChildren(...facts(s).map((text) => h("span", { text })));
    for (const chart of entry.charts.values()) this._draw(entry, chart);
  }

  _draw(entry, chart) {
    const { spec, columns } = chart;
    const data = [entry.times, ...columns];
    chart.legend.replaceChildren(
      ...spec.series.map((series, i) =>
        h(
          "span",
          { class: "key", "data-series": series.label },
          h("i", { class: "swatch", style: `background: ${series.stroke}` }),
          `${spec.own ? "" : `${series.label} `}${spec.unit(columns[i][columns[i].length - 1])}`,
        ),
      ),
    );
    if (chart.plot) {
      chart.plot.setData(data);
      return;
    }
    const axis = { stroke: "#8b98a5", grid: { stroke: "#27313b", width: 1 }, ticks: { show: false } };
    chart.plot = new uPlot(
      {
        width: width(chart.box),
        height: HEIGHT,
        legend: { show: false }, // the legend is in the chart's title row, with the values
        cursor: { drag: { x: false, y: false } },
        scales: {
          // One sample so far: a minute up to it, rather than a range of zero width.
          x: { time: true, range: (u, min, max) => (min === max ? [min - 60, max + 1] : [min, max]) },
          y: { range: spec.range || ((u, min, max) => [0, Math.max(1, max) * 1.15]) },
        },
        axes: [
          { ...axis, size: 26, space: 70, values: (u, ticks) => ticks.map((t) => fmt.clock(t)) },
          { ...axis, size: 72, space: 24, values: (u, ticks) => ticks.map((v) => spec.axis(v)) },
        ],
        series: [
          {},
          ...spec.series.map((series) => ({
            label: series.label,
            stroke: series.stroke,
            width: 1.5,
            points: { show: false },
            spanGaps: false,
          })),
        ],
      },
      data,
      chart.box,
    );
    chart.box.plot = chart.plot;
  }
}

/** GET a JSON document of the API with the key this browser holds, if any; null on any failure. */
async function fetchJSON(path) {
  try {
    const headers = { accept: "application/json" };
    const key = localStorage.getItem("relaycast.apiKey");
    if (key) headers.authorization = `Bearer ${key}`;
    const response = await fetch(path, { headers, cache: "no-store" });
    return response.ok ? await response.json() : null;
  } catch (err) {
    return null;
  }
}

function width(box) {
  return Math.max(160, box.clientWidth);
}
