// Formatting shared by every page. Numbers that are not finite are shown as text
// (NaN, inf, -inf), never dropped and never given to a chart scale.

import { RunStatus } from "./gen/guild/v1/guild_pb";

export const STATUS_NAMES: Record<number, string> = {
  [RunStatus.UNSPECIFIED]: "unknown",
  [RunStatus.PENDING]: "pending",
  [RunStatus.RUNNING]: "running",
  [RunStatus.COMPLETED]: "completed",
  [RunStatus.ERROR]: "error",
  [RunStatus.TERMINATED]: "terminated",
  [RunStatus.FAILED]: "failed",
  [RunStatus.QUEUED]: "queued",
};

export function statusName(s: number): string {
  return STATUS_NAMES[s] ?? "unknown";
}

export function isLive(s: number): boolean {
  return s === RunStatus.PENDING || s === RunStatus.RUNNING || s === RunStatus.QUEUED;
}

export function fmtNumber(v: number | null | undefined): string {
  if (v === null || v === undefined) return "";
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "inf";
  if (v === -Infinity) return "-inf";
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-4 || a >= 1e7)) return v.toExponential(4);
  return String(Number(v.toPrecision(6)));
}

export function fmtBytes(v: number): string {
  if (!Number.isFinite(v)) return fmtNumber(v);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let x = Math.abs(v);
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${v < 0 ? "-" : ""}${x.toFixed(x >= 100 || i === 0 ? 0 : 1)} ${units[i]}`;
}

const pad = (n: number) => String(n).padStart(2, "0");

export function fmtTime(ms: number): string {
  if (!ms) return "";
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtDuration(ms: number): string {
  if (!(ms >= 0)) return "";
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h ? `${h}:${pad(m)}:${pad(sec)}` : `${m}:${pad(sec)}`;
}

/** Start to stop, or to now while the run is live. */
export function runDuration(r: { startedMs: number; stoppedMs: number; status: number }, now = Date.now()): number {
  if (!r.startedMs) return NaN;
  const end = r.stoppedMs || (isLive(r.status) ? now : 0);
  return end ? Math.max(0, end - r.startedMs) : NaN;
}

export function csvCell(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Compares two cell values: numbers numerically (NaN last), then strings naturally. */
export function compareValues(a: unknown, b: unknown): number {
  const an = typeof a === "number", bn = typeof b === "number";
  if (an && bn) {
    const x = a as number, y = b as number;
    if (Number.isNaN(x)) return Number.isNaN(y) ? 0 : 1;
    if (Number.isNaN(y)) return -1;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a === undefined || a === null || a === "") return b === undefined || b === null || b === "" ? 0 : 1;
  if (b === undefined || b === null || b === "") return -1;
  if (an) return -1;
  if (bn) return 1;
  return collator.compare(String(a), String(b));
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

/** A flag value as a number when it reads as one. */
export function numericValue(s: string): number | null {
  if (s.trim() === "") return null;
  const v = Number(s);
  return Number.isFinite(v) ? v : null;
}
