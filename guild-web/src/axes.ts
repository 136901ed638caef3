// Chart axes: where ticks go and how they read. Every axis's ticks are multiples of a
// round step in the unit its labels use (bytes in one binary unit for the whole axis,
// fractions as percents, a Guild file's Numeral pattern with decimals enough to tell its
// ticks apart), so labels are in order and say the values the ticks stand at.

import { fmtBytes, fmtDuration, fmtNumber } from "./format";
import { moreDecimals, numeral } from "./numeral";

/** How a chart's values read: by what they measure (the automatic layout), or by a
 * Guild file's Numeral pattern. */
export type YFormat = { unit: "" | "bytes" | "fraction" } | { pattern: string };

/** 1, 2, 5 x 10^k over the range of magnitudes a chart can meet. */
export const DECIMAL_INCRS: number[] = Array.from({ length: 61 }, (_, i) => i - 30).flatMap((e) =>
  [1, 2, 5].map((m) => Number(`${m}e${e}`)),
);

/** Whole steps only (steps are whole numbers: no 2.5 between 0 and 5). */
export const STEP_INCRS: number[] = DECIMAL_INCRS.filter((v) => v >= 1 && v <= 1e15);

/** Seconds: tenths, then the clock's own steps. */
export const SECONDS_INCRS: number[] = [
  0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
  172800, 432000, 864000, 1728000, 4320000, 8640000, 17280000, 43200000, 86400000,
];

const BINARY_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/** The binary unit (as a power of 1024) that bytes up to `maxAbs` read in. */
export function bytesPower(maxAbs: number): number {
  let p = 0;
  while (p + 1 < BINARY_UNITS.length && maxAbs >= 1024 ** (p + 1)) p++;
  return p;
}

/** Steps for a bytes axis over [min, max]: 1, 2, 5 x 10^k of the unit its labels use. */
export function bytesIncrs(min: number, max: number): number[] {
  const unit = 1024 ** bytesPower(Math.max(Math.abs(min), Math.abs(max)));
  // No step below a byte.
  return DECIMAL_INCRS.filter((v) => v >= 1e-3 && v <= 1e6 && v * unit >= 1).map((v) => v * unit);
}

/** Whether a pattern reads bytes in binary units (`0.0 ib`). */
function binaryBytes(pattern: string): boolean {
  return /[0 ]ib/.test(pattern);
}

/** The steps an axis chooses from, as a function of its range. */
export function yIncrs(f: YFormat): (min: number, max: number) => number[] {
  if ("unit" in f) return f.unit === "bytes" ? bytesIncrs : () => DECIMAL_INCRS;
  if (f.pattern.includes(":")) return () => SECONDS_INCRS.filter((v) => v >= 1);
  if (binaryBytes(f.pattern)) return bytesIncrs;
  return () => DECIMAL_INCRS;
}

/** The ticks of a linear axis over [min, max]: every multiple of `step` in it (uPlot's
 * own splitting needs steps it knows the decimals of; these are computed). */
export function splitsFor(min: number, max: number, step: number): number[] {
  if (!(step > 0) || !Number.isFinite(min) || !Number.isFinite(max) || max < min) return [];
  const first = Math.ceil(min / step - 1e-9);
  const n = Math.floor(max / step + 1e-9) - first;
  // A step too small for the range (uPlot asks before it has one) gives no ticks.
  if (!(n >= 0 && n <= 1000) || Math.abs(first) > 2 ** 52) return [];
  const out: number[] = [];
  for (let i = 0; i <= n; i++) {
    const k = first + i;
    out.push(k === 0 ? 0 : Number((k * step).toPrecision(12)));
  }
  return out;
}

/** Decimals that write `step` (a 1-2-5 step, or a sum of them) exactly, at most 12. */
export function decimalsOf(step: number): number {
  for (let d = 0; d < 12; d++) {
    const x = step * 10 ** d;
    if (Math.abs(x - Math.round(x)) <= 1e-9 * Math.max(1, Math.abs(x))) return d;
  }
  return 12;
}

/** Plain numbers for ticks `step` apart: fixed decimals, or the exponent form for very
 * large and very small magnitudes, with the digits the step needs. */
export function plainTicks(splits: number[], step: number): string[] {
  const maxAbs = Math.max(0, ...splits.map(Math.abs));
  if (maxAbs >= 1e7 || (maxAbs > 0 && maxAbs < 1e-4)) {
    const digits = Math.max(0, Math.min(20, Math.floor(Math.log10(maxAbs)) - Math.floor(Math.log10(step) + 1e-9)));
    return splits.map((v) => (v === 0 ? "0" : v.toExponential(digits)));
  }
  const d = decimalsOf(step);
  return splits.map((v) => zeroless(v.toFixed(d)));
}

/** `-0.00` reads `0.00`. */
function zeroless(s: string): string {
  return /^-0(\.0*)?$/.test(s) ? s.slice(1) : s;
}

/** Tick labels of a y axis whose ticks are `step` apart. */
export function yTicks(f: YFormat, splits: number[], step: number): string[] {
  if ("unit" in f) {
    if (f.unit === "bytes") {
      const p = bytesPower(Math.max(0, ...splits.map(Math.abs)));
      const unit = 1024 ** p;
      const d = decimalsOf(step / unit);
      return splits.map((v) => `${zeroless((v / unit).toFixed(d))} ${BINARY_UNITS[p]}`);
    }
    if (f.unit === "fraction") return plainTicks(splits.map((v) => v * 100), step * 100).map((s) => `${s}%`);
    return plainTicks(splits, step);
  }
  // A Guild file's format, with more decimals while it writes two ticks alike.
  let labels = splits.map((v) => numeral(v, f.pattern));
  for (let extra = 1; extra <= 8 && !distinct(labels); extra++) {
    labels = splits.map((v) => numeral(v, moreDecimals(f.pattern, extra)));
  }
  return labels;
}

function distinct(labels: string[]): boolean {
  for (let i = 1; i < labels.length; i++) if (labels[i] === labels[i - 1]) return false;
  return true;
}

/** A value under the cursor (the hover legend): in full, in the chart's format. */
export function yValue(f: YFormat, v: number): string {
  if ("pattern" in f) return numeral(v, f.pattern);
  if (f.unit === "bytes") return fmtBytes(v);
  if (f.unit === "fraction") return `${fmtNumber(+(v * 100).toFixed(2))}%`;
  return fmtNumber(v);
}

/** Labels of the time-since-start axis: `M:SS` (`H:MM:SS`), with tenths when the ticks
 * are less than a second apart. */
export function durationTicks(splits: number[], step: number): string[] {
  if (step >= 1) {
    return splits.map((v) => {
      const s = Math.round(v);
      return `${s < 0 ? "-" : ""}${fmtDuration(Math.abs(s) * 1000)}`;
    });
  }
  return splits.map((v) => {
    const tenths = Math.round(v * 10);
    const sign = tenths < 0 ? "-" : "";
    const t = Math.abs(tenths);
    return `${sign}${fmtDuration(Math.floor(t / 10) * 1000)}.${t % 10}`;
  });
}
