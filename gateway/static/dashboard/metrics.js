// Hosts panel: each host's CPU, memory, network and disk over the last minutes (uPlot).
//
// Hosts come from `metrics.fleet` (a FleetSnapshot listing every host) and from the
// page's `?hosts=` parameter; each host's `metrics.host.<host>` is a latest-value
// channel, so a chart gets the current sample at once and a point per sample after.

import uPlot from "./vendor/uplot/uPlot.esm.js";
import { fmt, h } from "./dom.js";

const CHARTS = [
  {
    key: "cpu",
    title: "CPU",
    unit: fmt.percent,
    axis: (v) => `${Math.round(v)}%`,
    range: [0, 100],
    series: [{ label: "cpu", stroke: "#38bdf8", value: (s) => s.cpu.percent }],
  },
  {
    key: "memory",
    title: "Memory",
    unit: fmt.percent,
    axis: (v) => `${Math.round(v)}%`,
    range: [0, 100],
    series: [
      { label: "memory", stroke: "#a78bfa", value: (s) => s.memory.percent },
      { label: "swap", stroke: "#f59e0b", value: (s) => s.swap.percent },
    ],
  },
  {
    key: "network",
    title: "Network",
    unit: fmt.rate,
    axis: fmt.bytes,
    series: [
      { label: "in", stroke: "#22c55e", value: (s) => s.net.recv_bytes_per_s },
      { label: "out", stroke: "#f472b6", value: (s) => s.net.sent_bytes_per_s },
    ],
  },
  {
    key: "disk",
    title: "Disk I/O",
    unit: fmt.rate,
    axis: fmt.bytes,
    series: [
      { label: "read", stroke: "#facc15", value: (s) => s.disk.read_bytes_per_s },
      { label: "write", stroke: "#fb923c", value: (s) => s.disk.write_bytes_per_s },
    ],
  },
];

export class Metrics {
  constructor(rc, { windowMinutes = 10, hosts = [] } = {}) {
    this.rc = rc;
    this.window = windowMinutes * 60;
    this.hosts = new Map(); // host -> {card, charts, samples}
    this.root = document.getElementById("hosts");
    this.none = document.getElementById("hosts-none");
    document.getElementById("metrics-window").textContent = `last ${windowMinutes} min`;
    this._resize = new ResizeObserver((entries) => {
      for (const { target } of entries) {
        if (target.plot) target.plot.setSize({ width: width(target), height: HEIGHT });
      }
    });
    rc.subscribe("metrics.fleet", (fleet) => {
      for (const summary of fleet.hosts || []) this.follow(summary.host, summary.stale);
    });
    for (const host of hosts) this.follow(host);
  }

  /** Chart a host (once), and mark it stale or fresh. */
  follow(host, stale = false) {
    let entry = this.hosts.get(host);
    if (!entry) {
      entry = this._card(host);
      this.hosts.set(host, entry);
      this.none.hidden = true;
      this.rc.subscribe(`metrics.host.${host}`, (snapshot) => this._sample(entry, snapshot));
    }
    entry.card.classList.toggle("stale", Boolean(stale));
  }

  _card(host) {
    const facts = h("div", { class: "facts" });
    const charts = h("div", { class: "charts" });
    const card = h(
      "article",
      { class: "host", "data-host": host, "data-points": 0 },
      h("div", { class: "host-head" }, h("h3", { text: host }), facts),
      charts,
    );
    this.root.append(card);
    const entry = { host, card, facts, times: [], values: new Map(), charts: [] };
    for (const spec of CHARTS) {
      const now = h("span", { class: "now" });
      const box = h("div", { class: "chart", "data-chart": spec.key });
      charts.append(h("div", {}, h("div", { class: "chart-title" }, h("span", { text: spec.title }), now), box));
      this._resize.observe(box);
      entry.values.set(spec.key, spec.series.map(() => []));
      entry.charts.push({ spec, box, now, plot: null });
    }
    return entry;
  }

  _sample(entry, s) {
    if (entry.times.length && s.time <= entry.times[entry.times.length - 1]) return;
    entry.times.push(s.time);
    for (const spec of CHARTS) {
      const columns = entry.values.get(spec.key);
      spec.series.forEach((series, i) => columns[i].push(safe(() => series.value(s))));
    }
    const cutoff = s.time - this.window;
    let drop = 0;
    while (drop < entry.times.length && entry.times[drop] < cutoff) drop++;
    if (drop) {
      entry.times.splice(0, drop);
      for (const columns of entry.values.values()) columns.forEach((c) => c.splice(0, drop));
    }
    entry.card.dataset.points = String(entry.times.length);
    entry.card.classList.remove("stale");
    entry.facts.replaceChildren(
      h("span", { text: `${s.cpu.count} cores` }),
      h("span", { text: `load ${s.load["1m"].toFixed(2)}` }),
      h("span", { text: `disk ${fmt.percent(s.disk.percent)} used` }),
      h("span", { text: `${s.processes} processes` }),
      h("span", { text: `up ${fmt.duration(s.uptime)}` }),
    );
    for (const chart of entry.charts) this._draw(entry, chart);
  }

  _draw(entry, chart) {
    const columns = entry.values.get(chart.spec.key);
    const data = [entry.times, ...columns];
    chart.now.textContent = chart.spec.series
      .map((series, i) => `${series.label} ${chart.spec.unit(columns[i][columns[i].length - 1])}`)
      .join(" · ");
    if (chart.plot) {
      chart.plot.setData(data);
      return;
    }
    const axis = { stroke: "#8b98a5", grid: { stroke: "#27313b", width: 1 }, ticks: { show: false } };
    chart.plot = new uPlot(
      {
        width: width(chart.box),
        height: HEIGHT,
        legend: { show: false },
        cursor: { drag: { x: false, y: false } },
        scales: {
          x: { time: true },
          y: { range: chart.spec.range || ((u, min, max) => [0, Math.max(1, max) * 1.15]) },
        },
        axes: [
          { ...axis, size: 26, space: 70, values: (u, ticks) => ticks.map((t) => fmt.clock(t)) },
          { ...axis, size: 58, space: 24, values: (u, ticks) => ticks.map((v) => chart.spec.axis(v)) },
        ],
        series: [
          {},
          ...chart.spec.series.map((series) => ({
            label: series.label,
            stroke: series.stroke,
            width: 1.5,
            points: { show: false },
          })),
        ],
      },
      data,
      chart.box,
    );
    chart.box.plot = chart.plot;
  }
}

const HEIGHT = 110;

function width(box) {
  return Math.max(160, box.clientWidth);
}

function safe(fn) {
  try {
    const v = fn();
    return Number.isFinite(v) ? v : null;
  } catch (err) {
    return null;
  }
}
