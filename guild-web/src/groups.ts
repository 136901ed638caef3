// Which chart each series key goes in, on the run page. Event-file scalars
// `tf/<subdir>/<tag>` share one chart per tag with one line per subdir (train and
// validation overlaid); an output scalar `val_x` joins `x`; system, GPU and process
// stats are grouped by what they measure.

import type { Unit } from "./components/time-chart";

export interface ChartGroup {
  section: "Event-file scalars" | "Scalars" | "System" | "GPU" | "Process";
  id: string;
  title: string;
  unit: Unit;
  keys: { key: string; label: string }[];
}

const SECTION_ORDER = ["Scalars", "Event-file scalars", "Process", "System", "GPU"];

function place(key: string): { section: ChartGroup["section"]; id: string; title: string; unit: Unit; label: string } {
  let m: RegExpExecArray | null;
  if ((m = /^tf\/([^/]+)\/(.+)$/.exec(key))) {
    return { section: "Event-file scalars", id: `tf:${m[2]}`, title: m[2], unit: "", label: m[1] };
  }
  if ((m = /^sys\/cpu(\d*)\/util$/.exec(key))) {
    return { section: "System", id: "sys:cpu", title: "CPU utilization", unit: "fraction", label: m[1] ? `cpu${m[1]}` : "all" };
  }
  if ((m = /^sys\/(mem|swap)\/util$/.exec(key))) {
    return { section: "System", id: "sys:memutil", title: "Memory utilization", unit: "fraction", label: m[1] };
  }
  if ((m = /^sys\/(mem|swap)\/(\w+)$/.exec(key))) {
    return { section: "System", id: `sys:${m[1]}`, title: m[1] === "mem" ? "Memory" : "Swap", unit: "bytes", label: m[2] };
  }
  if ((m = /^sys\/dev([^/]+)\/(\w+)$/.exec(key))) {
    const unit: Unit = m[2] === "util" ? "fraction" : "";
    return { section: "System", id: `sys:dev:${m[2]}`, title: `Disk ${m[2]}`, unit, label: m[1] };
  }
  if ((m = /^sys\/net\/?([^/]+)\/(\w+)$/.exec(key))) {
    return { section: "System", id: `sys:net:${m[2]}`, title: `Network ${m[2]}`, unit: "", label: m[1] };
  }
  if ((m = /^sys\/gpu(\d+)\/(gpu|mem)\/util$/.exec(key))) {
    return { section: "GPU", id: `gpu${m[1]}:util`, title: `GPU ${m[1]} utilization`, unit: "fraction", label: m[2] };
  }
  if ((m = /^sys\/gpu(\d+)\/mem\/(used|total|free)$/.exec(key))) {
    return { section: "GPU", id: `gpu${m[1]}:mem`, title: `GPU ${m[1]} memory`, unit: "bytes", label: m[2] };
  }
  if ((m = /^sys\/gpu(\d+)\/(.+)$/.exec(key))) {
    const names: Record<string, string> = { temp: "temperature (°C)", powerdraw: "power (W)", fanspeed: "fan speed", pstate: "performance state" };
    return { section: "GPU", id: `gpu${m[1]}:${m[2]}`, title: `GPU ${m[1]} ${names[m[2]] ?? m[2]}`, unit: "", label: m[2] };
  }
  if (key === "op/cpu/util") return { section: "Process", id: "op:cpu", title: "Process CPU", unit: "fraction", label: "cpu" };
  if ((m = /^op\/mem\/(\w+)$/.exec(key))) {
    return { section: "Process", id: "op:mem", title: "Process memory", unit: "bytes", label: m[1] };
  }
  if (key.startsWith("sys/")) return { section: "System", id: `sys:${key}`, title: key.slice(4), unit: "", label: key };
  if (key.startsWith("op/")) return { section: "Process", id: `op:${key}`, title: key.slice(3), unit: "", label: key };
  // Output scalars: `val_loss` and `validation_loss` overlay `loss`.
  m = /^(val|validation)_(.+)$/.exec(key);
  const base = m ? m[2] : key;
  return { section: "Scalars", id: `s:${base}`, title: base, unit: "", label: key };
}

export function groupKeys(keys: Iterable<string>): ChartGroup[] {
  const groups = new Map<string, ChartGroup>();
  for (const key of [...keys].sort(naturalCompare)) {
    const p = place(key);
    let g = groups.get(p.id);
    if (!g) {
      g = { section: p.section, id: p.id, title: p.title, unit: p.unit, keys: [] };
      groups.set(p.id, g);
    }
    g.keys.push({ key, label: p.label });
  }
  const out = [...groups.values()];
  for (const g of out) {
    // train before validation, "all" before per-CPU lines, the plain key before val_.
    g.keys.sort((a, b) => rank(a.label) - rank(b.label) || naturalCompare(a.label, b.label));
  }
  out.sort(
    (a, b) =>
      SECTION_ORDER.indexOf(a.section) - SECTION_ORDER.indexOf(b.section) || naturalCompare(a.title, b.title),
  );
  return out;
}

function rank(label: string): number {
  if (label === "train" || label === "all" || label === "mem" || label === "gpu") return 0;
  if (label === "validation" || label === "val" || label.startsWith("val_") || label === "eval") return 1;
  return 0.5;
}

const collator = new Intl.Collator(undefined, { numeric: true });
function naturalCompare(a: string, b: string): number {
  return collator.compare(a, b);
}
