// One uPlot chart of one or more lines (keys of one run, or one key across runs).
//
// A line's samples are either local (`raw`: every sample, fed by the page from GetSeries
// or WatchSeries) or fetched by the chart as min/max/last buckets from GetSeries for the
// visible range, as many buckets as the plot is wide, and fetched again, finer, when the
// user zooms (drag to zoom, double-click to zoom out). A bucketed line of a live run also
// gets `tail`: samples that arrived after the buckets were read, drawn after them.
//
// The element exposes what it draws for tests and benchmarks: data-state (loading,
// ready, empty, error), data-points (finite points drawn), data-samples (samples they
// stand for), data-drawn-ms (first load to first draw), data-fetch-ms (last zoom
// refetch to redraw).

import { LitElement, html, nothing, type PropertyValues } from "lit";
import uPlot from "uplot";
import { Axis } from "../gen/guild/v1/guild_pb";
import { conn, errorText, getSeriesColumns } from "../api";
import { align, Columns, emptyPoints, rawPoints, type AxisMode, type Points, type Specials } from "../chart-data";
import { fmtBytes, fmtDuration, fmtNumber } from "../format";

export interface LineSpec {
  /** Unique within the chart. */
  id: string;
  label: string;
  run: string;
  key: string;
  /** The run's start (ms), the origin of the relative-time axis. */
  runStart: number;
  /** Samples stored, from the series summary (decides raw fetch or buckets). */
  count: number;
  lastStep: number;
  lastTimeMs: number;
  /** Every sample, kept current by the page. */
  raw?: Columns;
  /** For a bucketed line of a live run: samples that arrived while the page was open. */
  tail?: Columns;
}

export type Unit = "" | "bytes" | "fraction";

/** Lines with at most this many samples are fetched whole and zoomed locally. */
export const RAW_FETCH_MAX = 4000;

const STEP_INCRS = Array.from({ length: 16 }, (_, e) => [1, 2, 5].map((m) => m * 10 ** e)).flat();

export const PALETTE = [
  "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
  "#bcbd22", "#7f7f7f", "#393b79", "#ad494a", "#637939", "#e7969c", "#5254a3", "#8ca252",
  "#bd9e39", "#843c39", "#7b4173", "#3182bd",
];

interface Fetched {
  /** Display range the buckets cover. */
  from: number;
  to: number;
  points: Points;
  /** Highest x read (display units); tail samples beyond it are drawn after. */
  maxX: number;
}

export class TimeChart extends LitElement {
  static override properties = {
    lines: { attribute: false },
    axis: {},
    smoothing: { type: Number },
    log: { type: Boolean },
    unit: {},
    heading: {},
    version: { type: Number },
    height: { type: Number },
  };

  lines: LineSpec[] = [];
  axis: AxisMode = "step";
  smoothing = 0;
  log = false;
  unit: Unit = "";
  heading = "";
  /** Bumped by the page when local samples changed. */
  version = 0;
  height = 200;

  private plot: uPlot | null = null;
  private plotShape = "";
  private fetched = new Map<string, Fetched>();
  private localRaw = new Map<string, Columns>();
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
  private visible = false;
  private io: IntersectionObserver | null = null;

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
        this.visible = true;
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
    if (changed.has("smoothing") || changed.has("log") || changed.has("version") || changed.has("lines")) {
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

  /** Fetched as buckets: long lines, and lines whose length is not known (a bucket
   * of a short series holds one sample, so nothing is lost). */
  private lineBucketed(l: LineSpec): boolean {
    return !l.raw && !(l.count <= RAW_FETCH_MAX);
  }

  /** Loads every line from scratch (new lines, a new axis, or zoom out). */
  private reload() {
    if (!this.width) return;
    const token = this.nextLoad();
    this.loadStart = performance.now();
    this.drawnOnce = false;
    this.fetched.clear();
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
        if (this.lines.some((l) => this.lineBucketed(l))) await this.fetchLines(token, null);
      } catch (err) {
        if (token === this.loadToken) conn.report(err);
        return;
      }
      if (token === this.loadToken) this.redraw(true);
    })();
  };

  /** The display range that covers every line, from the summaries. */
  private fullRange(): [number, number] {
    let lo = Infinity, hi = -Infinity;
    for (const l of this.lines) {
      let a: number, b: number;
      if (this.axis === "step") {
        a = Math.min(0, l.lastStep);
        b = l.lastStep;
      } else if (this.axis === "wall") {
        a = l.runStart / 1000;
        b = l.lastTimeMs / 1000;
      } else {
        a = 0;
        b = (l.lastTimeMs - l.runStart) / 1000;
      }
      lo = Math.min(lo, a);
      hi = Math.max(hi, b);
    }
    if (!(hi >= lo)) return [NaN, NaN];
    return [lo, hi];
  }

  /** GetSeries for the lines the chart fetches itself: whole (small) or as buckets over
   * `range` (null: everything). One request per run. */
  private async fetchLines(token: number, range: [number, number] | null) {
    const t0 = performance.now();
    const signal = this.loadAbort.signal;
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
    const byRun = new Map<string, LineSpec[]>();
    for (const l of this.lines) {
      if (l.raw) continue;
      if (!this.lineBucketed(l) && this.localRaw.has(l.id) && this.localRaw.get(l.id)!.length >= l.count) continue;
      const list = byRun.get(l.run) ?? [];
      list.push(l);
      byRun.set(l.run, list);
    }
    const full = this.fullRange();
    const [from, to] = range ?? full;
    const nb = Math.max(16, Math.min(4000, Math.round(this.width)));
    await Promise.all(
      [...byRun.entries()].map(async ([run, lines]) => {
        const bucketed = lines.filter((l) => this.lineBucketed(l));
        const whole = lines.filter((l) => !this.lineBucketed(l));
        const runStart = lines[0].runStart;
        if (whole.length) {
          const got = await getSeriesColumns({ run, keys: whole.map((l) => l.key), axis: Axis.STEP, buckets: 0 }, { signal });
          if (token !== this.loadToken) return;
          for (const s of got) {
            const c = Columns.of(s.samples.step, s.samples.time, s.samples.value, s.samples.length);
            for (const l of whole) if (l.key === s.key) this.localRaw.set(l.id, c);
          }
        }
        if (bucketed.length) {
          // Unknown extents (no summaries): each run's own, as the daemon finds them.
          const toAxis = (v: number) =>
            Number.isNaN(v) ? undefined : this.axis === "step" ? v : this.axis === "wall" ? v * 1000 : runStart + v * 1000;
          const got = await getSeriesColumns({
            run,
            keys: bucketed.map((l) => l.key),
            axis: this.axis === "step" ? Axis.STEP : Axis.TIME,
            min: toAxis(from),
            max: toAxis(to),
            buckets: nb,
          }, { signal });
          if (token !== this.loadToken) return;
          for (const s of got) {
            const b = s.buckets;
            const n = b.length;
            const p: Points = {
              x: new Float64Array(n),
              y: new Float64Array(n),
              lo: new Float64Array(n),
              hi: new Float64Array(n),
              samples: s.count,
              nan: 0,
              posInf: 0,
              negInf: 0,
            };
            let maxX = -Infinity;
            let k = 0;
            for (let i = 0; i < n; i++) {
              const x =
                this.axis === "step"
                  ? b.lastStep[i]
                  : this.axis === "wall"
                    ? b.lastTimeMs[i] / 1000
                    : (b.lastTimeMs[i] - runStart) / 1000;
              if (k > 0 && x <= p.x[k - 1]) continue;
              const last = b.last[i];
              p.x[k] = x;
              p.y[k] = last;
              p.lo![k] = b.min[i];
              p.hi![k] = b.max[i];
              if (Number.isNaN(last)) p.nan++;
              else if (last === Infinity) p.posInf++;
              else if (last === -Infinity) p.negInf++;
              maxX = Math.max(maxX, x);
              k++;
            }
            if (k < n) {
              p.x = p.x.slice(0, k);
              p.y = p.y.slice(0, k);
              p.lo = p.lo!.slice(0, k);
              p.hi = p.hi!.slice(0, k);
            }
            for (const l of bucketed) {
              if (l.key === s.key) this.fetched.set(l.id, { from, to, points: p, maxX: range ? Infinity : maxX });
            }
          }
        }
        partial();
      }),
    );
    finished = true;
    // Time spent waiting for the daemon, for the benchmark.
    this.dataset.netMs = String(Math.round(performance.now() - t0));
  }

  private scheduleRedraw() {
    if (!this.drawnOnce || this.redrawTimer) return;
    // At most four redraws a second, however fast samples arrive; none while off screen.
    const wait = Math.max(0, 250 - (performance.now() - this.lastRedraw));
    this.redrawTimer = window.setTimeout(() => {
      this.redrawTimer = 0;
      if (!this.visible) return;
      requestAnimationFrame(() => this.redraw(false));
    }, wait);
  }

  private pointsOf(l: LineSpec): Points {
    const nb = Math.max(16, Math.round(this.width));
    const [from, to] = this.zoom ?? [-Infinity, Infinity];
    const raw = l.raw ?? this.localRaw.get(l.id);
    if (raw) return rawPoints(raw, this.axis, l.runStart, nb, from, to);
    const f = this.fetched.get(l.id);
    if (!f) return emptyPoints();
    if (!l.tail || l.tail.length === 0 || this.zoom) return f.points;
    // Live samples after the buckets, reduced like the rest when there are many.
    const t = rawPoints(l.tail, this.axis, l.runStart, nb, f.maxX, Infinity);
    let start = 0;
    while (start < t.x.length && t.x[start] <= f.maxX) start++;
    if (start === t.x.length) return f.points;
    const a = f.points;
    const cat = (head: Float64Array, rest: Float64Array) => {
      const out = new Float64Array(head.length + rest.length - start);
      out.set(head);
      out.set(rest.subarray(start), head.length);
      return out;
    };
    return {
      x: cat(a.x, t.x),
      y: cat(a.y, t.y),
      lo: cat(a.lo ?? a.y, t.lo ?? t.y),
      hi: cat(a.hi ?? a.y, t.hi ?? t.y),
      samples: a.samples + t.samples,
      nan: a.nan + t.nan,
      posInf: a.posInf + t.posInf,
      negInf: a.negInf + t.negInf,
    };
  }

  /** Rebuilds the aligned data from the lines and draws it. */
  private redraw(resetScale: boolean, final = true) {
    if (!this.width) return;
    this.lastRedraw = performance.now();
    const lines = this.lines;
    const pts = lines.map((l) => this.pointsOf(l));
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
    const shape = JSON.stringify([lines.map((l) => l.id), bands, this.axis, this.log, this.unit, this.smoothing > 0]);
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
    const fmtY = (v: number | null) =>
      v === null ? "" : this.unit === "bytes" ? fmtBytes(v) : this.unit === "fraction" ? `${fmtNumber(+(v * 100).toFixed(2))}%` : fmtNumber(v);
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
        points: { show: false },
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
    const yValues = (_u: uPlot, vals: number[]) => vals.map((v) => fmtY(v));
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
        y: this.log ? { distr: 3, log: 10 } : {},
      },
      axes: [
        {
          // Steps are whole numbers: no 2.5 between 0 and 5.
          incrs: this.axis === "step" ? STEP_INCRS : undefined,
          values:
            this.axis === "relative"
              ? (_u: uPlot, vals: number[]) => vals.map((v) => fmtDuration(v * 1000))
              : this.axis === "step"
                ? (_u: uPlot, vals: number[]) => vals.map((v) => fmtNumber(v))
                : undefined,
        },
        { values: yValues, size: 60 },
      ],
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

  /** Zooms to [min, max] (display units): local lines re-reduce, bucketed ones refetch. */
  async zoomTo(min: number, max: number): Promise<number> {
    const t0 = performance.now();
    this.zoom = [min, max];
    this.requestUpdate();
    const token = this.nextLoad();
    if (this.lines.some((l) => this.lineBucketed(l))) {
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
    if (a[i].id !== b[i].id || a[i].raw !== b[i].raw) return false;
  }
  return true;
}

customElements.define("time-chart", TimeChart);
