// One run: status and timing, headline values (or its Guild file's view cards), flags,
// attrs, charts (grouped by what they measure, or in the view's rows), media from event
// files (run-media.ts), and the output.
// Charts read their history from GetSeries themselves; while the run is live they read it
// up to the series cursor the page got with the run (GetRun), and one WatchSeries stream
// from that cursor (resumed from its own after a daemon restart) feeds every chart what
// commits after. The view's card values follow the run through GetRunView, at most once a
// second while samples arrive and once when the run ends.

import { LitElement, html, nothing } from "lit";
import { conn, errorText, keepStreaming, runs as runsApi } from "../api";
import { Columns, type AxisMode } from "../chart-data";
import { fmtDuration, fmtNumber, fmtTime, isLive, runDuration, statusName } from "../format";
import type { RunDetail, RunView } from "../gen/guild/v1/guild_pb";
import { groupKeys, type ChartGroup } from "../groups";
import { headline, store, toRow, toSummary, type RunRow, type Summary } from "../store";
import { series as seriesApi } from "../api";
import { viewCharts, type ViewChart, type ViewRowCharts } from "../view";
import type { LineSpec } from "./time-chart";
import { fieldCards } from "./view-cards";
import "./time-chart";
import "./output-view";
import "./run-serves";
import "./run-media";

/** The view's cards are asked for again at most this often while samples arrive. */
const VIEW_REFRESH_MS = 1000;

export class RunPage extends LitElement {
  static override properties = {
    runId: {},
    axis: { state: true },
    smoothing: { state: true },
    log: { state: true },
    chartFilter: { state: true },
    layout: { state: true },
  };

  runId = "";
  axis: AxisMode = (localStorage.getItem("guild-axis") as AxisMode | null) ?? "step";
  smoothing = Number(localStorage.getItem("guild-smoothing") ?? "0");
  log = false;
  chartFilter = "";
  /** With a view: its rows of charts, or every series as without one. */
  layout: "view" | "all" = "view";

  private detail: RunDetail | null = null;
  private row: RunRow | null = null;
  private sums = new Map<string, Summary>();
  /** Samples per key when the page read the run: whether a chart reads a line whole. */
  private histCount = new Map<string, number>();
  /** A live run's samples committed after `until`, per key. */
  private tails = new Map<string, Columns>();
  /** A live run's series cursor when the page read it: history is read up to it. */
  private until: number | undefined = undefined;
  private groups: ChartGroup[] = [];
  private runView: RunView | null = null;
  private viewRows: ViewRowCharts[] = [];
  private lineCache = new Map<string, LineSpec[]>();
  private dataVersion = 0;
  private error = "";
  private abort: AbortController | null = null;
  private unsub: (() => void) | null = null;
  private cursor = 0n;
  private watching = false;
  private bumpQueued = false;
  private tick = 0;
  private viewTimer = 0;
  private viewBusy = false;
  private viewDirty = false;
  private viewLast = 0;
  private viewUpdates = 0;

  protected override createRenderRoot() {
    return this;
  }

  override connectedCallback() {
    super.connectedCallback();
    if (conn.state !== "unauthenticated") store.start();
    this.abort = new AbortController();
    void this.load(this.abort.signal);
    this.unsub = store.on(() => {
      const id = this.detail?.run?.id;
      const r = id ? store.runs.get(id) : undefined;
      if (r && r !== this.row) {
        const wasLive = this.row ? isLive(this.row.status) : false;
        this.row = r;
        if (!wasLive && isLive(r.status)) this.watch();
        this.requestUpdate();
      }
    });
    this.tick = window.setInterval(() => {
      if (this.row && isLive(this.row.status)) this.requestUpdate();
    }, 1000);
  }

  override disconnectedCallback() {
    super.disconnectedCallback();
    this.abort?.abort();
    this.unsub?.();
    clearInterval(this.tick);
    clearTimeout(this.viewTimer);
  }

  private async load(signal: AbortSignal) {
    for (;;) {
      await conn.up();
      if (signal.aborted) return;
      try {
        const [d, rv] = await Promise.all([
          runsApi.getRun({ run: this.runId }, { signal }),
          // A view that cannot be read leaves the automatic layout; the run still shows.
          runsApi.getRunView({ run: this.runId }, { signal }).catch((err: unknown) => {
            if (signal.aborted) throw err;
            console.warn("GetRunView", errorText(err));
            return null;
          }),
        ]);
        this.detail = d;
        this.row = (d.run && store.runs.get(d.run.id)) || (d.run ? toRow(d.run) : null);
        this.runView = rv?.view ? rv : null;
        for (const s of d.series) {
          this.sums.set(s.key, toSummary(s));
          this.histCount.set(s.key, Number(s.count));
        }
        if (this.row && isLive(this.row.status)) {
          this.cursor = d.cursor;
          this.until = Number(d.cursor);
        }
        this.regroup();
        this.dataset.view = this.runView ? "true" : "false";
        this.dataset.loaded = "true";
        this.requestUpdate();
        if (this.row && isLive(this.row.status)) this.watch();
        return;
      } catch (err) {
        if (signal.aborted) return;
        conn.report(err);
        if (conn.state === "up") {
          this.error = errorText(err);
          this.requestUpdate();
          return;
        }
      }
    }
  }

  /** A key the page had not seen: a summary of what arrives, a tail for it, and no
   * history counted (a chart reads what it has up to the cursor, if anything). */
  private addKey(key: string): Summary {
    const sum: Summary = { key, last: NaN, min: NaN, max: NaN, count: 0, lastStep: 0, lastTimeMs: 0 };
    this.sums.set(key, sum);
    if (!this.histCount.has(key)) this.histCount.set(key, 0);
    if (this.watching) this.tails.set(key, new Columns());
    return sum;
  }

  /** Follows what every key commits after the page's cursor while the run is live. */
  private watch() {
    if (this.watching || !this.detail?.run) return;
    this.watching = true;
    const id = this.detail.run.id;
    if (this.until === undefined) {
      // A run that turned live after the page read it: its history is what the page has
      // not read yet, so the charts read up to the cursor of the first update.
      this.until = Number(this.cursor);
    }
    for (const key of this.sums.keys()) this.tails.set(key, new Columns());
    this.dataset.watchFrom = String(this.cursor);
    this.lineCache.clear();
    this.requestUpdate();
    void keepStreaming({
      signal: this.abort!.signal,
      open: (signal) => seriesApi.watchSeries({ run: id, keys: [], afterCursor: this.cursor }, { signal }),
      onMessage: (u) => {
        this.cursor = u.cursor;
        let newKeys = false;
        for (const s of u.series) {
          let sum = this.sums.get(s.key);
          if (!sum) {
            sum = this.addKey(s.key);
            newKeys = true;
          }
          const tail = this.tails.get(s.key)!;
          for (const p of s.samples) {
            const v = p.value;
            tail.push(Number(p.step), Number(p.timeMs), v);
            if (Number.isFinite(v)) {
              if (!(v >= sum.min)) sum.min = v;
              if (!(v <= sum.max)) sum.max = v;
            }
          }
          const lastS = s.samples[s.samples.length - 1];
          if (lastS) {
            sum.last = lastS.value;
            sum.lastStep = Math.max(sum.lastStep, Number(lastS.step));
            sum.lastTimeMs = Math.max(sum.lastTimeMs, Number(lastS.timeMs));
            sum.count += s.samples.length;
          }
        }
        if (newKeys) this.regroup();
        this.bump();
        this.scheduleView();
      },
      ended: async () => {
        const res = await runsApi.getRun({ run: id });
        if (res.run) store.upsert(res.run);
        const done = !isLive(res.run?.status ?? 0);
        if (done) {
          // Keys the index had not listed when the page read the run, and that committed
          // nothing after it: their charts read them up to the cursor.
          let newKeys = false;
          for (const s of res.series) {
            if (!this.sums.has(s.key)) {
              this.addKey(s.key);
              newKeys = true;
            }
          }
          if (newKeys) {
            this.regroup();
            this.requestUpdate();
          }
          // The cards' final values.
          this.viewDirty = true;
          void this.refreshView();
        }
        return done;
      },
      onError: (err) => {
        this.error = errorText(err);
        this.requestUpdate();
      },
    }).finally(() => {
      this.watching = false;
    });
  }

  private bump() {
    if (this.bumpQueued) return;
    this.bumpQueued = true;
    requestAnimationFrame(() => {
      this.bumpQueued = false;
      this.dataVersion++;
      this.requestUpdate();
    });
  }

  /** Asks for the view's card values again, at most once a second. */
  private scheduleView() {
    if (!this.runView) return;
    this.viewDirty = true;
    if (this.viewBusy || this.viewTimer) return;
    const wait = Math.max(0, VIEW_REFRESH_MS - (performance.now() - this.viewLast));
    this.viewTimer = window.setTimeout(() => {
      this.viewTimer = 0;
      void this.refreshView();
    }, wait);
  }

  private async refreshView() {
    if (!this.runView || !this.detail?.run || this.viewBusy || !this.viewDirty) return;
    this.viewBusy = true;
    this.viewDirty = false;
    this.viewLast = performance.now();
    try {
      const rv = await runsApi.getRunView({ run: this.detail.run.id }, { signal: this.abort?.signal });
      if (rv.view) {
        this.runView = rv;
        this.viewUpdates++;
        this.dataset.viewUpdates = String(this.viewUpdates);
        this.requestUpdate();
      }
    } catch (err) {
      if (!this.abort?.signal.aborted) conn.report(err);
    } finally {
      this.viewBusy = false;
      if (this.viewDirty) this.scheduleView();
    }
  }

  private regroup() {
    this.groups = groupKeys(this.sums.keys());
    this.viewRows = this.runView?.view ? viewCharts(this.runView.view, this.sums.keys()) : [];
    this.lineCache.clear();
  }

  /** One line per key, with the key's history count, the cursor and the live tail. */
  private lineSpecs(cacheId: string, keys: { key: string; label: string }[]): LineSpec[] {
    const cached = this.lineCache.get(cacheId);
    if (cached) return cached;
    const run = this.detail!.run!;
    const start = Number(run.startedMs || run.createdMs);
    const lines = keys.map(({ key, label }) => {
      const s = this.sums.get(key)!;
      return {
        id: key,
        label,
        run: run.id,
        key,
        runStart: start,
        count: this.histCount.get(key) ?? s.count,
        lastStep: s.lastStep,
        lastTimeMs: s.lastTimeMs,
        until: this.until,
        tail: this.tails.get(key),
      } satisfies LineSpec;
    });
    this.lineCache.set(cacheId, lines);
    return lines;
  }

  private lines(g: ChartGroup): LineSpec[] {
    return this.lineSpecs(g.id, g.keys);
  }

  private async stop() {
    if (!this.row || !confirm(`Stop run ${this.row.id}?`)) return;
    try {
      const r = await runsApi.stopRun({ run: this.row.id });
      store.upsert(r);
    } catch (err) {
      conn.report(err);
      alert(errorText(err));
    }
  }

  private setAxis(a: AxisMode) {
    this.axis = a;
    localStorage.setItem("guild-axis", a);
  }

  private setSmoothing(v: number) {
    this.smoothing = v;
    localStorage.setItem("guild-smoothing", String(v));
  }

  private summary() {
    const r = this.row!;
    const view = this.runView?.view;
    if (view && view.fields.length) {
      // The view's fields are the cards; status and timing stay beside them.
      return html`<div class="cards">
          <div class="card"><div class="card-k">status</div><div class="card-v status status-${statusName(r.status)}" id="run-status">${statusName(r.status)}${r.exitStatus !== undefined ? html` <span class="muted">exit ${r.exitStatus}</span>` : nothing}</div></div>
          <div class="card"><div class="card-k">started</div><div class="card-v">${fmtTime(r.startedMs || r.createdMs)}</div></div>
          <div class="card"><div class="card-k">duration</div><div class="card-v">${fmtDuration(runDuration(r))}</div></div>
        </div>
        ${fieldCards(view.fields, this.runView!.fields)}`;
    }
    const h = headline(this.sums.keys());
    let step: number | undefined;
    for (const s of this.sums.values()) {
      if (s.key.startsWith("sys/") || s.key.startsWith("op/")) continue;
      step = Math.max(step ?? -Infinity, s.lastStep);
    }
    const val = (k?: string) => (k ? this.sums.get(k) : undefined);
    const loss = val(h.loss);
    const acc = val(h.acc);
    return html`<div class="cards">
      <div class="card"><div class="card-k">status</div><div class="card-v status status-${statusName(r.status)}" id="run-status">${statusName(r.status)}${r.exitStatus !== undefined ? html` <span class="muted">exit ${r.exitStatus}</span>` : nothing}</div></div>
      <div class="card"><div class="card-k">started</div><div class="card-v">${fmtTime(r.startedMs || r.createdMs)}</div></div>
      <div class="card"><div class="card-k">duration</div><div class="card-v">${fmtDuration(runDuration(r))}</div></div>
      <div class="card"><div class="card-k">${h.loss ?? "loss"}</div><div class="card-v num" id="run-loss">${loss ? fmtNumber(loss.last) : "—"}</div></div>
      <div class="card"><div class="card-k">${h.acc ?? "accuracy"}</div><div class="card-v num" id="run-acc">${acc ? fmtNumber(acc.last) : "—"}</div></div>
      <div class="card"><div class="card-k">step</div><div class="card-v num" id="run-step">${step === undefined ? "—" : fmtNumber(step)}</div></div>
    </div>`;
  }

  private table(rows: [string, string][], id: string) {
    if (!rows.length) return html`<div class="muted">none</div>`;
    return html`<table class="kv" id=${id}>
      ${rows.map(([k, v]) => html`<tr><th>${k}</th><td><span class="kv-v">${v}</span></td></tr>`)}
    </table>`;
  }

  private chartAxis(stats: boolean): AxisMode {
    return stats && this.axis === "step" ? "relative" : this.axis;
  }

  /** The view's rows of charts: one line per key its pattern matches, in the series'
   * format, titled and labelled as the file says. */
  private viewChartRows() {
    const f = this.chartFilter.toLowerCase();
    const shows = (c: ViewChart) =>
      !f || c.series.title.toLowerCase().includes(f) || c.keys.some((k) => k.toLowerCase().includes(f));
    return html`<div id="view-charts">${this.viewRows.map(
      (row) => html`<div class="view-row" data-row=${row.name}>
        <div class="chart-grid">${row.charts.filter(shows).map((c) => this.viewChart(c))}</div>
      </div>`,
    )}</div>`;
  }

  private viewChart(c: ViewChart) {
    if (!c.keys.length) {
      const why = c.error ?? (c.series.pattern ? `no series matches ${c.series.pattern}` : "no series source");
      return html`<div class="chart chart-none" data-row=${c.row} data-series=${c.series.name} data-state="none">
        <div class="chart-head"><span class="chart-title">${c.series.title}</span></div>
        <div class="chart-none-why">${why}</div>
      </div>`;
    }
    const lines = this.lineSpecs(`view:${c.row}:${c.series.name}`, c.keys.map((key) => ({ key, label: key })));
    return html`<time-chart class="chart" data-row=${c.row} data-series=${c.series.name} data-keys=${c.keys.join(",")}
      .lines=${lines} .axis=${this.chartAxis(c.stats)} .smoothing=${this.smoothing} .log=${this.log}
      .format=${c.series.format} .yLabel=${c.series.label} .heading=${c.series.title} .version=${this.dataVersion}></time-chart>`;
  }

  private charts() {
    if (this.runView && this.layout === "view" && this.viewRows.length) return this.viewChartRows();
    if (this.groups.length === 0) return html`<div class="empty" id="no-series">This run has no series.</div>`;
    const f = this.chartFilter.toLowerCase();
    const shown = this.groups.filter((g) => !f || g.title.toLowerCase().includes(f) || g.keys.some((k) => k.key.toLowerCase().includes(f)));
    const sections = [...new Set(shown.map((g) => g.section))];
    return sections.map(
      (sec) => html`<details class="section" open>
        <summary>${sec} <span class="muted">(${shown.filter((g) => g.section === sec).length})</span></summary>
        <div class="chart-grid">
          ${shown
            .filter((g) => g.section === sec)
            .map(
              (g) => html`<time-chart class="chart" data-group=${g.id} data-keys=${g.keys.map((k) => k.key).join(",")}
                .lines=${this.lines(g)} .axis=${this.chartAxis(g.section !== "Scalars" && g.section !== "Event-file scalars")} .smoothing=${this.smoothing} .log=${this.log}
                .unit=${g.unit} .heading=${g.title} .version=${this.dataVersion}></time-chart>`,
            )}
        </div>
      </details>`,
    );
  }

  override render() {
    if (this.error && !this.detail) return html`<div class="error page-error" id="run-error">${this.error}</div>`;
    if (!this.detail || !this.row) return html`<div class="empty">Loading run…</div>`;
    const r = this.row;
    const d = this.detail;
    const attr = (name: string) => d.attrs.find((a) => a.name === name)?.value ?? "";
    const slurmNode = attr("slurm_node");
    const info: [string, string][] = [
      ["id", r.id],
      ["model", r.model],
      ["operation", r.op],
      ["project", `${r.projectName} (${r.projectDir})`],
      ["folder", r.runDir],
      ["label", r.label],
      ["stopped", fmtTime(r.stoppedMs)],
      ["source run", r.sourceRun],
      ["reason", r.reason],
      // A run on Slurm: its job (and node, once it ran).
      ["Slurm job", attr("slurm_job_id") && `${attr("slurm_job_id")}${slurmNode ? ` on ${slurmNode}` : ""}`],
    ].filter(([, v]) => v) as [string, string][];
    return html`
      <div class="run-head">
        <h1><a href="#/runs" class="muted">Runs</a> / <span id="run-id">${r.id}</span></h1>
        <span class="muted">${r.model}:${r.op}</span>
        <span class="spacer"></span>
        <a href="#/tensorboard?runs=${encodeURIComponent(r.id)}" id="run-tensorboard">TensorBoard</a>
        ${isLive(r.status) ? html`<button class="danger" @click=${this.stop}>Stop</button>` : nothing}
      </div>
      ${this.summary()}
      <div class="columns3">
        <div><h2>Run</h2>${this.table(info, "run-info")}</div>
        <div><h2>Flags</h2>${this.table(d.flags.map((f) => [f.name, f.value]), "run-flags")}</div>
        <div><details class="attrs" ?open=${d.attrs.length <= 12}><summary>Attrs <span class="muted">(${d.attrs.length})</span></summary>
          <div class="kv-scroll">${this.table(d.attrs.map((a) => [a.name, attrText(a.name, a.value)]), "run-attrs")}</div></details></div>
      </div>
      <run-serves .runId=${r.id}></run-serves>
      <h2>Charts</h2>
      <div class="toolbar chart-tools">
        ${this.viewRows.length
          ? html`<label>charts <select id="chart-layout" @change=${(e: Event) => (this.layout = (e.target as HTMLSelectElement).value as "view" | "all")}>
              <option value="view" ?selected=${this.layout === "view"}>the view's</option>
              <option value="all" ?selected=${this.layout === "all"}>every series</option>
            </select></label>`
          : nothing}
        <label>x axis
          <select id="axis" .value=${this.axis} @change=${(e: Event) => this.setAxis((e.target as HTMLSelectElement).value as AxisMode)}>
            <option value="step" ?selected=${this.axis === "step"}>step</option>
            <option value="wall" ?selected=${this.axis === "wall"}>wall time</option>
            <option value="relative" ?selected=${this.axis === "relative"}>relative time</option>
          </select></label>
        <label>smoothing <input id="smoothing" type="range" min="0" max="0.99" step="0.01" .value=${String(this.smoothing)}
          @input=${(e: Event) => this.setSmoothing(Number((e.target as HTMLInputElement).value))}> <span class="num">${this.smoothing.toFixed(2)}</span></label>
        <label><input id="log-scale" type="checkbox" .checked=${this.log} @change=${(e: Event) => (this.log = (e.target as HTMLInputElement).checked)}> log scale</label>
        <input id="chart-filter" type="search" placeholder="Filter charts" .value=${this.chartFilter}
          @input=${(e: Event) => (this.chartFilter = (e.target as HTMLInputElement).value)}>
        <span class="muted">drag to zoom, double-click to zoom out</span>
      </div>
      ${this.charts()}
      <run-media .runId=${r.id} .live=${isLive(r.status)}></run-media>
      <h2>Output</h2>
      <output-view .runId=${r.id} .live=${isLive(r.status)}></output-view>
    `;
  }
}

/** Times (ms since the epoch) as dates; everything else as stored. */
function attrText(name: string, value: string): string {
  if ((name === "created" || name === "started" || name === "stopped") && /^\d{12,}$/.test(value)) {
    return `${fmtTime(Number(value))} (${value})`;
  }
  return value;
}

customElements.define("run-page", RunPage);
