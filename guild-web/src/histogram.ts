// Histograms and distributions drawn on a canvas, as TensorBoard draws them: the
// histograms of a tag's steps offset one behind the other (or overlaid), and the
// distribution of values over steps as percentile bands (TensorBoard's basis points).

export interface Hist {
  step: number;
  left: number[];
  right: number[];
  counts: number[];
}

/** TensorBoard's compressed-histogram basis points: min, -2σ, -1.5σ, -σ, -0.5σ... max. */
export const BASIS_POINTS = [0, 668, 1587, 3085, 5000, 6915, 8413, 9332, 10000];

/** The values below which each fraction of `h`'s count lies, interpolated linearly within
 * a bucket (NaN for an empty histogram). */
export function percentiles(h: Hist, fractions: number[] = BASIS_POINTS.map((b) => b / 10000)): number[] {
  const total = h.counts.reduce((a, b) => a + b, 0);
  if (!(total > 0)) return fractions.map(() => NaN);
  const out: number[] = [];
  let i = 0;
  let before = 0;
  for (const f of fractions) {
    const target = f * total;
    while (i < h.counts.length - 1 && before + h.counts[i] < target) {
      before += h.counts[i];
      i++;
    }
    const c = h.counts[i];
    const within = c > 0 ? Math.min(1, Math.max(0, (target - before) / c)) : 0;
    out.push(h.left[i] + within * (h.right[i] - h.left[i]));
  }
  return out;
}

/**
 * Draws queued for the coming frames, in the order asked (the cards in view first): in
 * each frame every canvas's width is read first (one layout for all of them), then each
 * is drawn. Reading a width between draws forced a layout per canvas: 40 canvases on a
 * run page took half a second that way.
 *
 * Each canvas drawn is a new picture the compositor takes in that frame's commit. In
 * headless Chromium (software compositing) three of them made a 40 ms frame, sixteen a
 * 50–90 ms one, and a slider moved meanwhile waited for it. So the canvases a frame
 * follow how long the frames that drew took: one more after a frame within budget, half
 * as many after a long one, and no more than one fewer than made a long frame (a machine
 * that draws one a frame in budget, and two not, stays at one; RAISE_AFTER frames in
 * budget at that ceiling raise it by one, in case the long frame had another cause).
 * And none are drawn within INPUT_QUIET_MS of an input, pointer-down, key or wheel
 * event: a slider being moved, or a page being scrolled, gets its frames first.
 */
const queue = new Map<HTMLCanvasElement, (width: number) => void>();
/** A frame's length, seen from the next frame's start, that leaves room for one more. */
const FRAME_BUDGET_MS = 20;
const INPUT_QUIET_MS = 150;
const MOST_PER_FRAME = 32;
const RAISE_AFTER = 60;
let perFrame = 1;
/** The most a frame may draw (lowered by a long frame). */
let ceiling = MOST_PER_FRAME;
/** Frames in budget that drew `ceiling` canvases, since it was last lowered or raised. */
let atCeiling = 0;
/** When the last frame that drew began (NaN: the last frame drew nothing). */
let drewAt = Number.NaN;
let lastInput = -Infinity;
// (No window where the unit tests load this module in Node.)
// (Not pointermove: a mouse merely moving over the page must not hold the drawing back.)
for (const type of ["input", "pointerdown", "keydown", "wheel"]) {
  globalThis.addEventListener?.(type, () => (lastInput = performance.now()), { capture: true, passive: true });
}

/** A frame is asked for exactly while the queue holds draws (flush asks for the next). */
export function drawSoon(canvas: HTMLCanvasElement, draw: (width: number) => void): void {
  if (!queue.size) requestAnimationFrame(flush);
  queue.set(canvas, draw);
}

function flush(now: number) {
  const took = now - drewAt;
  if (took > FRAME_BUDGET_MS * 1.25) {
    ceiling = Math.max(1, perFrame - 1);
    perFrame = Math.max(1, perFrame >> 1);
    atCeiling = 0;
  } else if (took <= FRAME_BUDGET_MS) {
    if (perFrame >= ceiling && ++atCeiling >= RAISE_AFTER) {
      ceiling = Math.min(MOST_PER_FRAME, ceiling + 1);
      atCeiling = 0;
    }
    perFrame = Math.min(ceiling, perFrame + 1);
  }
  drewAt = Number.NaN;
  if (now - lastInput >= INPUT_QUIET_MS && queue.size) {
    const jobs = [...queue].slice(0, perFrame);
    for (const [c] of jobs) queue.delete(c);
    const widths = jobs.map(([c]) => c.clientWidth || c.parentElement?.clientWidth || 400);
    jobs.forEach(([, draw], i) => draw(widths[i]));
    drewAt = now;
  }
  if (queue.size) requestAnimationFrame(flush);
  // With no frame right after it, a drawing frame's length cannot be seen (the next
  // drawSoon may come seconds later).
  else drewAt = Number.NaN;
}

function prepare(canvas: HTMLCanvasElement, width: number, height: number): CanvasRenderingContext2D | null {
  width = Math.max(200, width);
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * dpr);
  canvas.height = Math.round(height * dpr);
  canvas.style.height = `${height}px`;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  if (!ctx) return null;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.font = "11px system-ui, sans-serif";
  return ctx;
}

const PAD = { l: 8, r: 8, t: 8, b: 18 };

function label(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a >= 1e5 || a < 1e-3) ? v.toExponential(2) : String(Number(v.toPrecision(4)));
}

/** Steps offset one behind the other (oldest at the back, top), or overlaid on one
 * baseline; colour runs from light (oldest) to dark (newest). Returns how many it drew. */
export function drawHistograms(canvas: HTMLCanvasElement, hists: Hist[], mode: "offset" | "overlay", width: number, height = 240): number {
  const ctx = prepare(canvas, width, height);
  if (!ctx || !hists.length) return 0;
  width = canvas.width / (window.devicePixelRatio || 1);
  let lo = Infinity;
  let hi = -Infinity;
  let top = 0;
  for (const h of hists) {
    for (let i = 0; i < h.counts.length; i++) {
      if (Number.isFinite(h.left[i])) lo = Math.min(lo, h.left[i]);
      if (Number.isFinite(h.right[i])) hi = Math.max(hi, h.right[i]);
      const w = h.right[i] - h.left[i];
      // Density, so buckets of different widths compare.
      const d = w > 0 ? h.counts[i] / w : h.counts[i];
      if (Number.isFinite(d)) top = Math.max(top, d);
    }
  }
  if (!(hi > lo)) {
    lo -= 0.5;
    hi += 0.5;
  }
  if (!(top > 0)) top = 1;
  const plotW = width - PAD.l - PAD.r;
  const plotH = height - PAD.t - PAD.b;
  const n = hists.length;
  const offsetSpan = mode === "offset" && n > 1 ? plotH * 0.6 : 0;
  const peak = plotH - offsetSpan;
  const x = (v: number) => PAD.l + ((v - lo) / (hi - lo)) * plotW;
  hists.forEach((h, k) => {
    const base = PAD.t + peak + (n > 1 ? (offsetSpan * k) / (n - 1) : offsetSpan);
    const shade = n > 1 ? k / (n - 1) : 1;
    ctx.beginPath();
    ctx.moveTo(x(h.left[0] ?? lo), base);
    for (let i = 0; i < h.counts.length; i++) {
      const w = h.right[i] - h.left[i];
      const d = w > 0 ? h.counts[i] / w : h.counts[i];
      const y = base - (Number.isFinite(d) ? d / top : 0) * peak;
      ctx.lineTo(x((h.left[i] + h.right[i]) / 2), y);
    }
    ctx.lineTo(x(h.right[h.right.length - 1] ?? hi), base);
    const light = Math.round(215 - 150 * shade);
    if (mode === "offset") {
      ctx.fillStyle = "rgba(255,255,255,0.92)";
      ctx.fill();
    }
    ctx.strokeStyle = mode === "offset" ? `rgb(${light - 40},${light - 10},${Math.min(255, light + 60)})` : `rgba(36,87,197,${0.15 + 0.7 * shade})`;
    ctx.lineWidth = 1.2;
    ctx.stroke();
  });
  ctx.fillStyle = "#6b7280";
  ctx.textBaseline = "bottom";
  ctx.textAlign = "left";
  ctx.fillText(label(lo), PAD.l, height - 2);
  ctx.textAlign = "right";
  ctx.fillText(label(hi), width - PAD.r, height - 2);
  ctx.textAlign = "center";
  ctx.fillText(`steps ${hists[0].step}–${hists[n - 1].step}`, width / 2, height - 2);
  return n;
}

/** Percentile bands over steps, widest faintest, and the median as a line. Returns how
 * many steps it drew. */
export function drawDistribution(canvas: HTMLCanvasElement, hists: Hist[], width: number, height = 200): number {
  const ctx = prepare(canvas, width, height);
  if (!ctx || !hists.length) return 0;
  width = canvas.width / (window.devicePixelRatio || 1);
  const pts = hists.map((h) => ({ step: h.step, p: percentiles(h) })).filter((q) => q.p.every(Number.isFinite));
  if (!pts.length) return 0;
  let lo = Infinity;
  let hi = -Infinity;
  for (const q of pts) {
    lo = Math.min(lo, q.p[0]);
    hi = Math.max(hi, q.p[q.p.length - 1]);
  }
  if (!(hi > lo)) {
    lo -= 0.5;
    hi += 0.5;
  }
  const s0 = pts[0].step;
  const s1 = pts[pts.length - 1].step;
  const plotW = width - PAD.l - PAD.r - 40;
  const plotH = height - PAD.t - PAD.b;
  const x = (s: number) => PAD.l + 40 + (s1 > s0 ? ((s - s0) / (s1 - s0)) * plotW : plotW / 2);
  const y = (v: number) => PAD.t + (1 - (v - lo) / (hi - lo)) * plotH;
  const bands: [number, number, number][] = [
    [0, 8, 0.14],
    [1, 7, 0.22],
    [2, 6, 0.3],
    [3, 5, 0.38],
  ];
  for (const [a, b, alpha] of bands) {
    ctx.beginPath();
    pts.forEach((q, i) => (i ? ctx.lineTo(x(q.step), y(q.p[b])) : ctx.moveTo(x(q.step), y(q.p[b]))));
    for (let i = pts.length - 1; i >= 0; i--) ctx.lineTo(x(pts[i].step), y(pts[i].p[a]));
    ctx.closePath();
    ctx.fillStyle = `rgba(36,87,197,${alpha})`;
    ctx.fill();
  }
  ctx.beginPath();
  pts.forEach((q, i) => (i ? ctx.lineTo(x(q.step), y(q.p[4])) : ctx.moveTo(x(q.step), y(q.p[4]))));
  ctx.strokeStyle = "#1d3f91";
  ctx.lineWidth = 1.2;
  ctx.stroke();
  ctx.fillStyle = "#6b7280";
  ctx.textAlign = "right";
  ctx.textBaseline = "top";
  ctx.fillText(label(hi), PAD.l + 36, PAD.t);
  ctx.textBaseline = "bottom";
  ctx.fillText(label(lo), PAD.l + 36, PAD.t + plotH);
  ctx.textAlign = "left";
  ctx.fillText(String(s0), PAD.l + 40, height - 2);
  ctx.textAlign = "right";
  ctx.fillText(String(s1), width - PAD.r, height - 2);
  return pts.length;
}

/** Precision (y) against recall (x), both 0..1. */
export function drawPrCurve(canvas: HTMLCanvasElement, precision: number[], recall: number[], width: number, height = 220): number {
  const ctx = prepare(canvas, width, height);
  if (!ctx) return 0;
  width = canvas.width / (window.devicePixelRatio || 1);
  const plotW = width - PAD.l - PAD.r - 30;
  const plotH = height - PAD.t - PAD.b;
  const x = (v: number) => PAD.l + 30 + v * plotW;
  const y = (v: number) => PAD.t + (1 - v) * plotH;
  ctx.strokeStyle = "#e3e6ec";
  ctx.strokeRect(x(0), y(1), plotW, plotH);
  const pts = recall.map((r, i) => [r, precision[i]]).filter(([r, p]) => Number.isFinite(r) && Number.isFinite(p));
  pts.sort((a, b) => a[0] - b[0]);
  ctx.beginPath();
  pts.forEach(([r, p], i) => (i ? ctx.lineTo(x(r), y(p)) : ctx.moveTo(x(r), y(p))));
  ctx.strokeStyle = "#2457c5";
  ctx.lineWidth = 1.5;
  ctx.stroke();
  ctx.fillStyle = "#6b7280";
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  ctx.fillText("1", x(0) - 4, y(1));
  ctx.fillText("0", x(0) - 4, y(0));
  ctx.textAlign = "center";
  ctx.textBaseline = "bottom";
  ctx.fillText("recall", x(0.5), height - 2);
  ctx.save();
  ctx.translate(PAD.l + 6, y(0.5));
  ctx.rotate(-Math.PI / 2);
  ctx.fillText("precision", 0, 6);
  ctx.restore();
  return pts.length;
}
