// Pure data work behind the charts: growable sample columns, min/max/last buckets,
// aligning many lines on one x array for uPlot, smoothing. Non-finite values never reach
// a chart scale: they become gaps (null) and are counted and named instead.

export type AxisMode = "step" | "wall" | "relative";

/** Samples of one key in arrival order: step, time (ms) and value columns. */
export class Columns {
  step: Float64Array;
  time: Float64Array;
  value: Float64Array;
  length = 0;
  /** Bumped on every append. */
  version = 0;

  constructor(capacity = 256) {
    this.step = new Float64Array(capacity);
    this.time = new Float64Array(capacity);
    this.value = new Float64Array(capacity);
  }

  /** Columns over the first `length` entries of these arrays (taken as they are when
   * they hold at least 16, copied into 16 otherwise). */
  static of(step: Float64Array, time: Float64Array, value: Float64Array, length: number): Columns {
    const c = new Columns(0);
    const cap = Math.max(16, step.length);
    const fit = (a: Float64Array) => {
      if (a.length === cap) return a;
      const b = new Float64Array(cap);
      b.set(a.subarray(0, length));
      return b;
    };
    c.step = fit(step);
    c.time = fit(time);
    c.value = fit(value);
    c.length = length;
    c.version = length;
    return c;
  }

  push(step: number, time: number, value: number) {
    if (this.length === this.step.length) this.grow();
    this.step[this.length] = step;
    this.time[this.length] = time;
    this.value[this.length] = value;
    this.length++;
    this.version++;
  }

  private grow() {
    const n = this.step.length * 2;
    const g = (a: Float64Array) => {
      const b = new Float64Array(n);
      b.set(a);
      return b;
    };
    this.step = g(this.step);
    this.time = g(this.time);
    this.value = g(this.value);
  }

  x(i: number, axis: AxisMode, runStart: number): number {
    if (axis === "step") return this.step[i];
    if (axis === "wall") return this.time[i] / 1000;
    return (this.time[i] - runStart) / 1000;
  }
}

/** One line ready to draw: x ascending; y the value (or a bucket's last); with buckets,
 * lo/hi the bucket's min and max. `bad` counts values that are not finite. */
export interface Points {
  x: Float64Array;
  y: Float64Array;
  lo?: Float64Array;
  hi?: Float64Array;
  /** Samples these points stand for (a bucket counts all of its samples). */
  samples: number;
  nan: number;
  posInf: number;
  negInf: number;
}

export function emptyPoints(): Points {
  return { x: new Float64Array(0), y: new Float64Array(0), samples: 0, nan: 0, posInf: 0, negInf: 0 };
}

function countBad(p: Points, v: number) {
  if (Number.isNaN(v)) p.nan++;
  else if (v === Infinity) p.posInf++;
  else if (v === -Infinity) p.negInf++;
}

/**
 * Raw samples as points on the axis, sorted by x (a later sample at the same x wins), and
 * reduced to at most `maxBuckets` min/max/last buckets over [from, to] when there are more
 * than 2x that many in the range (so a million samples draw as fast as a thousand).
 */
export function rawPoints(
  c: Columns,
  axis: AxisMode,
  runStart: number,
  maxBuckets: number,
  from = -Infinity,
  to = Infinity,
): Points {
  const n = c.length;
  const xs = new Float64Array(n);
  let sorted = true;
  for (let i = 0; i < n; i++) {
    xs[i] = c.x(i, axis, runStart);
    if (i && xs[i] < xs[i - 1]) sorted = false;
  }
  let order: Uint32Array | null = null;
  if (!sorted) {
    order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    // Stable by x: equal x keep arrival order, so the later one wins below.
    order.sort((a, b) => xs[a] - xs[b] || a - b);
  }
  const at = (i: number) => (order ? order[i] : i);
  let first = 0;
  let end = n;
  if (from > -Infinity || to < Infinity) {
    while (first < n && xs[at(first)] < from) first++;
    end = first;
    while (end < n && xs[at(end)] <= to) end++;
    // One sample either side keeps lines running to the edge of a zoomed view.
    if (first > 0) first--;
    if (end < n) end++;
  }
  const m = end - first;
  if (m > 2 * maxBuckets && maxBuckets > 0) {
    const lo = Math.max(from, xs[at(first)]);
    const hi = Math.min(to, xs[at(end - 1)]);
    return bucketize(
      (k) => xs[at(first + k)],
      (k) => c.value[at(first + k)],
      m,
      lo,
      hi,
      maxBuckets,
    );
  }
  const p: Points = {
    x: new Float64Array(m),
    y: new Float64Array(m),
    samples: 0,
    nan: 0,
    posInf: 0,
    negInf: 0,
  };
  let k = 0;
  for (let i = first; i < end; i++) {
    const j = at(i);
    const x = xs[j];
    const v = c.value[j];
    countBad(p, v);
    if (k > 0 && p.x[k - 1] === x) {
      p.y[k - 1] = v;
    } else {
      p.x[k] = x;
      p.y[k] = v;
      k++;
    }
  }
  p.samples = m;
  if (k < m) {
    p.x = p.x.slice(0, k);
    p.y = p.y.slice(0, k);
  }
  return p;
}

/** Client-side twin of the daemon's buckets: equal-width over [lo, hi], min/max of the
 * finite values, the last value, placed at the x of the bucket's last sample. */
export function bucketize(
  xAt: (k: number) => number,
  vAt: (k: number) => number,
  m: number,
  lo: number,
  hi: number,
  n: number,
): Points {
  const width = hi > lo ? (hi - lo) / n : 1;
  const x = new Float64Array(n);
  const y = new Float64Array(n);
  const bmin = new Float64Array(n);
  const bmax = new Float64Array(n);
  const p: Points = { x, y, lo: bmin, hi: bmax, samples: m, nan: 0, posInf: 0, negInf: 0 };
  let b = -1;
  let out = -1;
  for (let k = 0; k < m; k++) {
    const xv = xAt(k);
    const v = vAt(k);
    countBad(p, v);
    const idx = Math.min(n - 1, Math.max(0, Math.floor((xv - lo) / width)));
    if (idx !== b) {
      b = idx;
      out++;
      bmin[out] = Infinity;
      bmax[out] = -Infinity;
    }
    x[out] = xv;
    y[out] = v;
    if (Number.isFinite(v)) {
      if (v < bmin[out]) bmin[out] = v;
      if (v > bmax[out]) bmax[out] = v;
    }
  }
  const len = out + 1;
  for (let i = 0; i < len; i++) {
    if (bmin[i] === Infinity) {
      bmin[i] = NaN;
      bmax[i] = NaN;
    }
  }
  p.x = x.slice(0, len);
  p.y = y.slice(0, len);
  p.lo = bmin.slice(0, len);
  p.hi = bmax.slice(0, len);
  return p;
}

/** Where a drawn value at an aligned index is not a number: what to say instead. */
export type Specials = Map<number, string>;

export interface Aligned {
  data: (Float64Array | (number | null)[])[];
  /** Per drawn series (1-based like uPlot's), the text of non-finite values by index. */
  specials: Map<number, Specials>;
  points: number;
}

export function specialText(v: number): string {
  return Number.isNaN(v) ? "NaN" : v > 0 ? "inf" : "-inf";
}

/**
 * Puts every line on one ascending x array (uPlot's aligned data). A line without a
 * sample at some x gets null there (drawn across, spanGaps). Values that are not finite,
 * and values <= 0 on a log scale, become null and are remembered as text for hovering.
 * `bands` says, per line, whether its lo/hi columns are drawn too.
 */
export function align(lines: Points[], bands: boolean[], log: boolean, smoothing: number): Aligned {
  let total = 0;
  for (const l of lines) total += l.x.length;
  const all = new Float64Array(total);
  let o = 0;
  for (const l of lines) {
    all.set(l.x, o);
    o += l.x.length;
  }
  all.sort();
  let u = 0;
  for (let i = 0; i < total; i++) if (i === 0 || all[i] !== all[u - 1]) all[u++] = all[i];
  const xs = all.slice(0, u);
  const data: (Float64Array | (number | null)[])[] = [xs];
  const specials = new Map<number, Specials>();
  let points = 0;
  const ok = (v: number) => Number.isFinite(v) && (!log || v > 0);
  lines.forEach((l, li) => {
    const ys: (number | null)[] = new Array(u).fill(null);
    const los: (number | null)[] | null = bands[li] && l.lo ? new Array(u).fill(null) : null;
    const his: (number | null)[] | null = bands[li] && l.hi ? new Array(u).fill(null) : null;
    const sp: Specials = new Map();
    const smooth = smoothing > 0 ? smoothed(l.y, smoothing) : l.y;
    let j = 0;
    for (let i = 0; i < l.x.length; i++) {
      const x = l.x[i];
      while (xs[j] < x) j++;
      const v = smooth[i];
      if (ok(v)) {
        ys[j] = v;
        points++;
      } else {
        ys[j] = null;
        sp.set(j, Number.isFinite(v) ? `${v} (not on log scale)` : specialText(l.y[i]));
      }
      if (los && his && l.lo && l.hi) {
        los[j] = ok(l.lo[i]) ? l.lo[i] : null;
        his[j] = ok(l.hi[i]) ? l.hi[i] : null;
      }
    }
    specials.set(data.length, sp);
    data.push(ys);
    if (los && his) {
      data.push(los, his);
    }
  });
  return { data, specials, points };
}

/** TensorBoard's smoothing: a debiased exponential moving average over finite values;
 * a value that is not finite stays as it is and does not disturb the average. */
export function smoothed(y: Float64Array, weight: number): Float64Array {
  const out = new Float64Array(y.length);
  let last = 0;
  let n = 0;
  for (let i = 0; i < y.length; i++) {
    const v = y[i];
    if (!Number.isFinite(v)) {
      out[i] = v;
      continue;
    }
    last = last * weight + (1 - weight) * v;
    n++;
    out[i] = last / (1 - Math.pow(weight, n));
  }
  return out;
}
