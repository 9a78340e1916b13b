// A host's snapshot as the hosts panel (metrics.js) reads it: which charts the standard
// fields make, the one-line facts, and a chart for every other number (its dotted path).

import { fmt } from "./dom.js";

const percent = (v) => `${Math.round(v)}%`;

/** A chart of percentages (0-100) and one of byte rates, each with its lines. */
function percentChart(key, title, series) {
  return { key, title, unit: fmt.percent, axis: percent, range: [0, 100], series };
}

function rateChart(key, title, series) {
  return { key, title, unit: fmt.rate, axis: fmt.rate, series };
}

/** The standard charts of a host, drawn from the metrics publisher's HostSnapshot. */
export const CHARTS = [
  percentChart("cpu", "CPU", [{ label: "cpu", stroke: "#38bdf8", path: "cpu.percent" }]),
  percentChart("memory", "Memory", [
    { label: "memory", stroke: "#a78bfa", path: "memory.percent" },
    { label: "swap", stroke: "#f59e0b", path: "swap.percent" },
  ]),
  rateChart("network", "Network", [
    { label: "in", stroke: "#22c55e", path: "net.recv_bytes_per_s" },
    { label: "out", stroke: "#f472b6", path: "net.sent_bytes_per_s" },
  ]),
  rateChart("disk", "Disk I/O", [
    { label: "read", stroke: "#facc15", path: "disk.read_bytes_per_s" },
    { label: "write", stroke: "#fb923c", path: "disk.write_bytes_per_s" },
  ]),
];

/** Fields of the metrics publisher's snapshot: charted above, shown as facts, or neither. */
export const STANDARD = new Set(["host", "time", "interval", "cpu", "memory", "swap", "disk", "net", "load", "processes", "uptime"]);
export const OWN_CHARTS = 12; // charts of a host's own fields, at most
const OWN_COLOURS = ["#38bdf8", "#a78bfa", "#22c55e", "#f472b6", "#facc15", "#fb923c"];
export const CHART_PATHS = new Set(CHARTS.flatMap((c) => c.series.map((s) => s.path)));

/** The one-line facts of a snapshot, from whichever of their fields it has. */
export function facts(s) {
  const out = [];
  const cores = number(pick(s, "cpu.count"));
  const load = number(pick(s, "load.1m"));
  const disk = number(pick(s, "disk.percent"));
  const processes = number(pick(s, "processes"));
  const uptime = number(pick(s, "uptime"));
  if (cores !== null) out.push(`${cores} cores`);
  if (load !== null) out.push(`load ${load.toFixed(2)}`);
  if (disk !== null) out.push(`disk ${fmt.percent(disk)} used`);
  if (processes !== null) out.push(`${processes} processes`);
  if (uptime !== null) out.push(`up ${fmt.duration(uptime)}`);
  return out;
}

/** [dotted path, number] for every number in the snapshot outside the standard fields. */
export function ownNumbers(s) {
  const found = [];
  const walk = (value, path, depth) => {
    if (typeof value === "number") {
      if (Number.isFinite(value)) found.push([path, value]);
    } else if (value && typeof value === "object" && !Array.isArray(value) && depth < 4) {
      for (const [key, inner] of Object.entries(value)) walk(inner, `${path}.${key}`, depth + 1);
    }
  };
  for (const [key, value] of Object.entries(s)) if (!STANDARD.has(key)) walk(value, key, 0);
  return found;
}

export function ownSpec(key, index, units) {
  const path = key.slice("own:".length);
  const withUnit = (v) => {
    const unit = units.get(path);
    return unit && v !== null && v !== undefined ? `${fmt.number(v)} ${unit}` : fmt.number(v);
  };
  return {
    key,
    own: true,
    title: units.get(path) ? `${path} (${units.get(path)})` : path,
    unit: withUnit,
    axis: fmt.number,
    series: [{ label: path.split(".").pop(), stroke: OWN_COLOURS[index % OWN_COLOURS.length], path }],
  };
}

/** A service's series as its chart names it: `metric`, or `metric[entity]`. */
export function seriesLabel(s) {
  return s.entity ? `${s.metric}[${s.entity}]` : s.metric;
}

/** Set `value` at dotted `path` in a host snapshot being rebuilt from history. */
export function place(snapshot, path, value) {
  const parts = path.split(".");
  let at = snapshot;
  for (const part of parts.slice(0, -1)) {
    if (!at[part] || typeof at[part] !== "object") at[part] = {};
    at = at[part];
  }
  at[parts[parts.length - 1]] = value;
}

export function pick(s, path) {
  let value = s;
  for (const part of path.split(".")) {
    if (value === null || typeof value !== "object") return undefined;
    value = value[part];
  }
  return value;
}

export function number(v) {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}
