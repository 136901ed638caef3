// One uPlot chart of one or more lines (keys of one run, or one key across runs).
//
// The chart reads its lines from GetSeries itself (chart-lines.ts: short lines whole,
// long ones as buckets for the visible range, a live run's history up to the page's
// cursor and its tail after), draws them, and reads again, finer, when the user zooms
// (drag to zoom, double-click to zoom out).
//
// Ticks and their labels come from axes.ts; the y axis is as wide as its longest label.
// Charts off screen still redraw, less often (every 2 s instead of 4 times a second).
//
// The element exposes what it draws for tests and benchmarks: data-state (loading,
// ready, empty, error), data-points (finite points drawn), data-samples (samples they
// stand for), data-drawn-ms (first load to first draw), data-fetch-ms (last zoom
// refetch to redraw), and axisReport() (each axis's ticks, labels and room).

import { LitElement, html, nothing, type PropertyValues } from "lit";
import uPlot from "uplot";
import { conn, errorText } from "../api";
import { durationTicks, plainTicks, SECONDS_INCRS, splitsFor, STEP_INCRS, yIncrs, yTicks, yValue, type YFormat } from "../axes";
import { align, type AxisMode, type Specials } from "../chart-data";
import { ChartLines, type LineSpec } from "../chart-lines";
import { fmtDuration, fmtNumber } from "../format";

export type { LineSpec } from "../chart-lines";

export type Unit = "" | "bytes" | "fraction";

/** What an axis shows, for tests: ticks (values), their labels, the step between them,
 * the room it takes and the widest label's width (CSS px). */
export interface AxisTicks {
  splits: number[];
  labels: string[];
  step: number;
  size: number;
  widest: number;
}

export const PALETTE = [
  "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
  "#bcbd22", "#7f7f7f", "#393b79", "#ad494a", "#637939", "#e7969c", "#5254a3", "#8ca252",
  "#bd9e39", "#843c39", "#7b4173", "#3182bd",
];

export class TimeChart extends LitElement {
  static override properties = {
    lines: { attribute: false },
    axis: {},
    smoothing: { type: Number },
    log: { type: Boolean },
    unit: {},
    format: {},
    yLabel: {},
    heading: {},
    version: { type: Number },
    height: { type: Number },
  };

  lines: LineSpec[] = [];
  axis: AxisMode = "step";
  smoothing = 0;
  log = false;
  unit: Unit = "";
  /** A Guild file's Numeral pattern for the y values; empty: by `unit`. */
  format = "";
  /** The y axis's label. */
  yLabel = "";
  heading = "";
  /** Bumped by the page when local samples changed. */
  version = 0;
  height = 200;

  private plot: uPlot | null = null;
  private plotShape = "";
  private data = new ChartLines();
  private zoom: [number, number] | null = null;
  private loadToken = 0;
  /** Aborts the GetSeries calls of the load or zoom that a newer one replaced, so they do
   * not hold the browser's few connections to guildd. */
  private loadAbort = new AbortController();
  private width = 0;
  private resize: ResizeObserver | null = null;
  private specials = new Map<number, Specials>();
  private bad = "";
  private error = "";
  private state: "loading" | "ready" | "empty" | "error" = "loading";
  private loadStart = 0;
  private drawnOnce = false;
  private redrawTimer = 0;
  private lastRedraw = 0;
  /** Something changed since the last draw. */
  private dirty = false;
  private visible = false;
  private io: IntersectionObserver | null = null;
  private ticks: (AxisTicks | null)[] = [null, null];
  private dataRange: [number, number] = [NaN, NaN];

  protected override createRenderRoot() {
    return this;
  }

  override connectedCallback() {
    super.connectedCallback();
    this.resize = new ResizeObserver(() => {
      const w = Math.floor(this.querySelector(".plot")?.clientWidth ?? 0);
      if (w > 0 && w !== this.width) {
        const first = this.width === 0;
        this.width = w;
        if (this.plot) this.plot.setSize({ width: w, height: this.height });
        if (first) this.reload();
      }
    });
    this.io = new IntersectionObserver((entries) => {
      const vis = entries.some((e) => e.isIntersecting);
      if (vis && !this.visible) {
        // Coming into view: draw what changed meanwhile now, not at the off-screen pace.
        this.visible = true;
        clearTimeout(this.redrawTimer);
        this.redrawTimer = 0;
        this.scheduleRedraw();
      } else this.visible = vis;
    }, { rootMargin: "200px" });
  }

  override disconnectedCallback() {
    super.disconnectedCallback();
    this.resize?.disconnect();
    this.io?.disconnect();
    this.plot?.destroy();
    this.plot = null;
    this.plotShape = "";
    this.nextLoad();
    clearTimeout(this.redrawTimer);
  }

  protected override firstUpdated() {
    const el = this.querySelector(".plot")!;
    this.resize!.observe(el);
    this.io!.observe(this);
  }

  protected override updated(changed: PropertyValues) {
    if (changed.has("lines") || changed.has("axis")) {
      const before = changed.get("lines") as LineSpec[] | undefined;
      const sameLines = before !== undefined && !changed.has("axis") && sameIds(before, this.lines);
      if (!sameLines) {
        this.zoom = null;
        this.reload();
        return;
      }
    }
    if (changed.has("format") || changed.has("unit")) {
      // Formats are baked into the plot's options: make a new one.
      this.plotShape = "";
    }
    if (
      changed.has("smoothing") || changed.has("log") || changed.has("version") || changed.has("lines") ||
      changed.has("format") || changed.has("unit") || changed.has("yLabel")
    ) {
      this.dirty = true;
      this.scheduleRedraw();
    }
  }

  override render() {
    return html`
      <div class="chart-head">
        <span class="chart-title">${this.heading}</span>
        ${this.bad ? html`<span class="chart-bad" title="not drawn">${this.bad}</span>` : nothing}
        ${this.zoom ? html`<button class="link small" @click=${this.zoomOut}>zoom out</button>` : nothing}
      </div>
      <div class="plot" style="min-height:${this.height}px"></div>
      ${this.state === "empty" ? html`<div class="chart-empty">no samples</div>` : nothing}
      ${this.state === "error" ? html`<div class="chart-empty error">${this.error}</div>` : nothing}
    `;
  }

  private setState(s: typeof this.state) {
    this.state = s;
    this.dataset.state = s;
    this.requestUpdate();
  }

  /** Loads every line from scratch (new lines, a new axis, or zoom out). */
  private reload() {
    if (!this.width) return;
    const token = this.nextLoad();
    this.loadStart = performance.now();
    this.drawnOnce = false;
    this.data.clearBuckets();
    this.setState("loading");
    void (async () => {
      try {
        await conn.up();
        await this.fetchLines(token, null);
        if (token !== this.loadToken) return;
        this.redraw(true);
      } catch (err) {
        if (token !== this.loadToken) return;
        conn.report(err);
        this.error = errorText(err);
        console.error("chart", this.heading, err);
        this.setState("error");
      }
    })();
  }

  /** Starts a new load (or zoom): earlier ones stop and their answers are dropped. */
  private nextLoad(): number {
    this.loadAbort.abort();
    this.loadAbort = new AbortController();
    return ++this.loadToken;
  }

  private zoomOut = () => {
    this.zoom = null;
    const token = this.nextLoad();
    void (async () => {
      try {
        if (this.lines.some((l) => this.data.bucketed(l))) await this.fetchLines(token, null);
      } catch (err) {
        if (token === this.loadToken) conn.report(err);
        return;
      }
      if (token === this.loadToken) this.redraw(true);
    })();
  };

  /** Reads the lines that need it over `range` (null: everything), drawing what has
   * arrived meanwhile on a first load. */
  private async fetchLines(token: number, range: [number, number] | null) {
    const t0 = performance.now();
    let partialQueued = false;
    let finished = false;
    let lastPartial = performance.now();
    const partial = () => {
      // Draw what has arrived so far, at most every 150 ms: the first lines show while
      // the others are still being read, without slowing the reading down. Not for a
      // zoom: the zoomed view already shows the coarser lines, and a redraw of every
      // line meanwhile only delays reading the rest.
      if (partialQueued || range !== null) return;
      partialQueued = true;
      setTimeout(() => requestAnimationFrame(() => {
        partialQueued = false;
        lastPartial = performance.now();
        if (token === this.loadToken && !finished) this.redraw(range === null && !this.zoom, false);
      }), Math.max(0, 150 - (performance.now() - lastPartial)));
    };
    await this.data.fetch({
      lines: this.lines,
      axis: this.axis,
      width: this.width,
      range,
      signal: this.loadAbort.signal,
      current: () => token === this.loadToken,
      onRun: partial,
    });
    finished = true;
    // Time spent waiting for the daemon, for the benchmark.
    this.dataset.netMs = String(Math.round(performance.now() - t0));
  }

  private scheduleRedraw() {
    if (!this.drawnOnce || this.redrawTimer || !this.dirty) return;
    // At most four redraws a second in view, however fast samples arrive; one every two
    // seconds off screen (so a chart scrolled to, or looked at by a test, is current).
    const every = this.visible ? 250 : 2000;
    const wait = Math.max(0, every - (performance.now() - this.lastRedraw));
    this.redrawTimer = window.setTimeout(() => {
      this.redrawTimer = 0;
      requestAnimationFrame(() => this.redraw(false));
    }, wait);
  }

  /** Rebuilds the aligned data from the lines and draws it. */
  private redraw(resetScale: boolean, final = true) {
    if (!this.width) return;
    this.lastRedraw = performance.now();
    this.dirty = false;
    const lines = this.lines;
    const pts = lines.map((l) => this.data.points(l, this.axis, this.width, this.zoom));
    // Bands (bucket min/max) only where they help: few lines, bucketed data.
    const bands = pts.map((p) => p.lo !== undefined && p.samples > p.x.length && lines.length <= 3);
    const al = align(pts, bands, this.log, this.smoothing);
    this.specials = al.specials;
    let nan = 0, pos = 0, neg = 0, samples = 0;
    for (const p of pts) {
      nan += p.nan;
      pos += p.posInf;
      neg += p.negInf;
      samples += p.samples;
    }
    const bad = [nan && `${nan} NaN`, pos && `${pos} inf`, neg && `${neg} -inf`].filter(Boolean).join(", ");
    if (bad !== this.bad) {
      this.bad = bad;
      this.requestUpdate();
    }
    this.dataset.points = String(al.points);
    this.dataset.samples = String(samples);
    this.dataRange = finiteRange(al.data);
    const shape = JSON.stringify([lines.map((l) => l.id), bands, this.axis, this.log, this.unit, this.format, this.yLabel, this.smoothing > 0]);
    const data = al.data as uPlot.AlignedData;
    try {
      if (shape !== this.plotShape || !this.plot) {
        this.plot?.destroy();
        this.plot = null;
        this.plotShape = shape;
        this.plot = new uPlot(this.options(lines, bands), data, this.querySelector(".plot") as HTMLElement);
        if (this.zoom) this.plot.setScale("x", { min: this.zoom[0], max: this.zoom[1] });
      } else {
        this.plot.setData(data, resetScale || !this.zoom);
        if (this.zoom && !resetScale) this.plot.setScale("x", { min: this.zoom[0], max: this.zoom[1] });
      }
    } catch (err) {
      // One chart that cannot draw must not take the page with it.
      console.error("chart", this.heading, err);
      this.plotShape = "";
      this.error = `cannot draw: ${err instanceof Error ? err.message : String(err)}`;
      this.setState("error");
      return;
    }
    if (!final) return;
    const empty = al.points === 0 && samples === 0;
    this.setState(empty ? "empty" : "ready");
    if (!this.drawnOnce) {
      this.drawnOnce = true;
      this.dataset.drawnMs = String(Math.round(performance.now() - this.loadStart));
      this.dataset.drawnAt = String(Math.round(performance.now()));
    }
  }

  private options(lines: LineSpec[], bands: boolean[]): uPlot.Options {
    const yFormat: YFormat = this.format ? { pattern: this.format } : { unit: this.unit };
    const fmtY = (v: number | null) => (v === null ? "" : yValue(yFormat, v));
    const series: uPlot.Series[] = [
      {
        label: this.axis === "step" ? "step" : this.axis === "wall" ? "time" : "elapsed",
        value: (_u, v) =>
          v === null ? "" : this.axis === "relative" ? fmtDuration(v * 1000) : this.axis === "wall" ? new Date(v * 1000).toLocaleTimeString() : fmtNumber(v),
      },
    ];
    const bandDefs: uPlot.Band[] = [];
    lines.forEach((l, i) => {
      const color = PALETTE[i % PALETTE.length];
      const idx = series.length;
      series.push({
        label: l.label,
        stroke: color,
        width: 1.5,
        spanGaps: true,
        // A line of one point is a dot (a line needs two).
        points: { show: (u, si) => this.lonePoint(u, si), size: 5 },
        value: (_u, v, sidx, didx) => {
          if (v === null || v === undefined) {
            const sp = didx === null ? undefined : this.specials.get(sidx)?.get(didx);
            return sp ?? "—";
          }
          return fmtY(v);
        },
      });
      if (bands[i]) {
        series.push(
          { label: `${l.label} min`, stroke: color + "55", width: 0.5, spanGaps: true, points: { show: false }, value: (_u, v) => (v === null ? "—" : fmtY(v)) },
          { label: `${l.label} max`, stroke: color + "55", width: 0.5, spanGaps: true, points: { show: false }, value: (_u, v) => (v === null ? "—" : fmtY(v)) },
        );
        bandDefs.push({ series: [idx + 2, idx + 1], fill: color + "22" });
      }
    });
    // Tick labels, remembered for axisReport().
    const record = (axis: number, splits: number[], labels: string[], step: number) => {
      const prev = this.ticks[axis];
      this.ticks[axis] = { splits: [...splits], labels, step, size: prev?.size ?? 0, widest: prev?.widest ?? 0 };
      return labels;
    };
    const yIncr = yIncrs(yFormat);
    const yAxis: uPlot.Axis = {
      values: (_u, splits, _i, _space, step) =>
        record(1, splits, this.log ? splits.map((v) => fmtY(v)) : yTicks(yFormat, splits, step), step),
      size: (u, values, axisIdx) => this.axisSize(u, values, axisIdx),
    };
    // A log scale places its own ticks (powers of ten and their multiples).
    if (!this.log) {
      yAxis.incrs = (_u, _i, min, max) => yIncr(min, max);
      yAxis.splits = (_u, _i, min, max, step) => splitsFor(min, max, step);
    }
    if (this.yLabel) yAxis.label = this.yLabel;
    const xAxis: uPlot.Axis =
      this.axis === "relative"
        ? { incrs: SECONDS_INCRS, values: (_u, splits, _i, _space, step) => record(0, splits, durationTicks(splits, step), step) }
        : this.axis === "step"
          ? { incrs: STEP_INCRS, values: (_u, splits, _i, _space, step) => record(0, splits, plainTicks(splits, step), step) }
          : {};
    return {
      width: this.width,
      height: this.height,
      series,
      bands: bandDefs,
      legend: { live: true },
      cursor: {
        drag: { x: true, y: false, setScale: true },
        bind: {
          dblclick: () => () => {
            this.zoomOut();
            return null;
          },
        },
      },
      scales: {
        // One sample (or all at one x): a little room either side, in the axis' own units
        // (uPlot would pad a time scale by a day in milliseconds: 1000 days in seconds).
        x: {
          time: this.axis === "wall",
          range: (u, min, max) => {
            const xs = u.data[0];
            if (xs.length === 1 && xs[0] !== null) return [xs[0] - 1, xs[0] + 1];
            if (min === null || max === null || !Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
            return min === max ? [min - 1, max + 1] : [min, max];
          },
        },
        // One value (or all alike): room around it, and 0 to 1 around a 0, so the ticks
        // say the value (uPlot would give 0 a range of 0 to 100: 10000% for a fraction).
        y: this.log
          ? { distr: 3, log: 10 }
          : {
              range: (_u, min, max) => {
                if (min === null || max === null || !Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
                const mag = Math.max(Math.abs(min), Math.abs(max));
                if (max - min <= mag * 1e-6) {
                  // Alike to a millionth: uPlot would make a range of nothing.
                  if (mag === 0) return [0, 1];
                  const mid = (min + max) / 2;
                  return [mid - mag * 0.1, mid + mag * 0.1];
                }
                const r = uPlot.rangeNum(min, max, 0.1, true);
                return r[0] !== null && r[1] !== null && r[0] < r[1] ? r : [min, max];
              },
            },
      },
      axes: [xAxis, yAxis],
      hooks: {
        setSelect: [
          (u) => {
            // Drag-zoom: remember the range; refetch finer buckets for it.
            if (u.select.width < 2) return;
            const min = u.posToVal(u.select.left, "x");
            const max = u.posToVal(u.select.left + u.select.width, "x");
            this.zoomTo(min, max);
          },
        ],
      },
    };
  }

  /** Whether series `si` has a single point to draw (shown as a dot). */
  private lonePoint(u: uPlot, si: number): boolean {
    const ys = u.data[si];
    let n = 0;
    for (let i = 0; i < ys.length && n < 2; i++) if (ys[i] !== null && ys[i] !== undefined) n++;
    return n === 1;
  }

  /** The room an axis takes: ticks, gap and its longest label (so no label is cut). */
  private axisSize(u: uPlot, values: string[] | null, axisIdx: number): number {
    const axis = u.axes[axisIdx];
    let widest = 0;
    if (values?.length) {
      // After init uPlot holds the font as [css font, size, css size], scaled to the pixels.
      const font = axis.font as unknown as [string] | string;
      u.ctx.font = Array.isArray(font) ? font[0] : font;
      for (const v of values) widest = Math.max(widest, u.ctx.measureText(v).width / uPlot.pxRatio);
    }
    const size = Math.ceil(Math.max(40, widest + (axis.ticks?.size ?? 10) + (axis.gap ?? 5) + 4));
    const t = this.ticks[axisIdx];
    if (t) {
      t.size = size;
      t.widest = widest;
    }
    return size;
  }

  /** For tests: each axis's ticks and labels as last drawn (x: null on the wall-time
   * axis, whose labels are uPlot's), the drawn data's finite range and the y scale. */
  axisReport(): { x: AxisTicks | null; y: AxisTicks | null; data: [number, number]; scale: [number, number] } {
    const y = this.plot?.scales.y;
    return {
      x: this.axis === "wall" ? null : this.ticks[0],
      y: this.ticks[1],
      data: this.dataRange,
      scale: [y?.min ?? NaN, y?.max ?? NaN],
    };
  }

  /** Zooms to [min, max] (display units): local lines re-reduce, bucketed ones refetch. */
  async zoomTo(min: number, max: number): Promise<number> {
    const t0 = performance.now();
    this.zoom = [min, max];
    this.requestUpdate();
    const token = this.nextLoad();
    if (this.lines.some((l) => this.data.bucketed(l))) {
      try {
        await this.fetchLines(token, [min, max]);
      } catch (err) {
        conn.report(err);
        return NaN;
      }
      if (token !== this.loadToken) return NaN;
    }
    this.redraw(false);
    // uPlot draws in a microtask queued by setData: wait for it, so the time includes
    // drawing the new lines.
    await Promise.resolve();
    const ms = performance.now() - t0;
    this.dataset.fetchMs = String(Math.round(ms));
    return ms;
  }
}

function sameIds(a: LineSpec[], b: LineSpec[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i].id !== b[i].id || a[i].tail !== b[i].tail || a[i].until !== b[i].until) return false;
  }
  return true;
}

/** The finite min and max of uPlot's data (every series but x). */
function finiteRange(data: ArrayLike<number | null>[]): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (let s = 1; s < data.length; s++) {
    const ys = data[s];
    for (let i = 0; i < ys.length; i++) {
      const v = ys[i];
      if (v !== null && Number.isFinite(v)) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
  }
  return lo <= hi ? [lo, hi] : [NaN, NaN];
}

customElements.define("time-chart", TimeChart);
