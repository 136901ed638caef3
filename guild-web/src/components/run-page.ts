// One run: status and timing, headline values, flags, attrs, charts grouped by what they
// measure, and the output. While the run is live one WatchSeries stream (resumed from
// its cursor after a daemon restart) feeds every chart; a finished run's charts read
// GetSeries themselves.

import { LitElement, html, nothing } from "lit";
import { conn, errorText, keepStreaming, runs as runsApi } from "../api";
import { Columns, type AxisMode } from "../chart-data";
import { fmtDuration, fmtNumber, fmtTime, isLive, runDuration, statusName } from "../format";
import type { RunDetail } from "../gen/guild/v1/guild_pb";
import { groupKeys, type ChartGroup } from "../groups";
import { headline, store, toRow, toSummary, type RunRow, type Summary } from "../store";
import { series as seriesApi } from "../api";
import type { LineSpec } from "./time-chart";
import "./time-chart";
import "./output-view";
import "./run-serves";

/** Keys of a live run with at most this many samples are kept whole in the page. */
const LOCAL_MAX = 50_000;

export class RunPage extends LitElement {
  static override properties = {
    runId: {},
    axis: { state: true },
    smoothing: { state: true },
    log: { state: true },
    chartFilter: { state: true },
  };

  runId = "";
  axis: AxisMode = (localStorage.getItem("guild-axis") as AxisMode | null) ?? "step";
  smoothing = Number(localStorage.getItem("guild-smoothing") ?? "0");
  log = false;
  chartFilter = "";

  private detail: RunDetail | null = null;
  private row: RunRow | null = null;
  private sums = new Map<string, Summary>();
  private raw = new Map<string, Columns>();
  private tails = new Map<string, Columns>();
  private groups: ChartGroup[] = [];
  private lineCache = new Map<string, LineSpec[]>();
  private dataVersion = 0;
  private error = "";
  private abort: AbortController | null = null;
  private unsub: (() => void) | null = null;
  private cursor = 0n;
  private watching = false;
  private bumpQueued = false;
  private tick = 0;

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
  }

  private async load(signal: AbortSignal) {
    for (;;) {
      await conn.up();
      if (signal.aborted) return;
      try {
        const d = await runsApi.getRun({ run: this.runId }, { signal });
        this.detail = d;
        this.row = (d.run && store.runs.get(d.run.id)) || (d.run ? toRow(d.run) : null);
        for (const s of d.series) this.sums.set(s.key, toSummary(s));
        this.regroup();
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

  /** Follows new samples of every key while the run is live. */
  private watch() {
    if (this.watching || !this.detail?.run) return;
    this.watching = true;
    const id = this.detail.run.id;
    // Keys already too long to keep whole are drawn from buckets; only their new
    // samples are kept (as a tail after the buckets).
    for (const [key, s] of this.sums) {
      if (s.count <= LOCAL_MAX) this.raw.set(key, new Columns());
      else this.tails.set(key, new Columns());
    }
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
            sum = { key: s.key, last: NaN, min: NaN, max: NaN, count: 0, lastStep: 0, lastTimeMs: 0 };
            this.sums.set(s.key, sum);
            this.raw.set(s.key, new Columns());
            newKeys = true;
          }
          const raw = this.raw.get(s.key);
          const tail = this.tails.get(s.key);
          const loadedStep = sum.lastStep;
          for (const p of s.samples) {
            const step = Number(p.step), t = Number(p.timeMs);
            if (raw) raw.push(step, t, p.value);
            else if (tail && (step > loadedStep || t > sum.lastTimeMs)) tail.push(step, t, p.value);
          }
          const lastS = s.samples[s.samples.length - 1];
          if (lastS && raw) {
            sum.last = lastS.value;
            sum.lastStep = Math.max(sum.lastStep, Number(lastS.step));
            sum.lastTimeMs = Math.max(sum.lastTimeMs, Number(lastS.timeMs));
            sum.count = Math.max(sum.count, raw.length);
            for (const p of s.samples) {
              if (Number.isFinite(p.value)) {
                if (!(p.value >= sum.min)) sum.min = p.value;
                if (!(p.value <= sum.max)) sum.max = p.value;
              }
            }
          }
        }
        if (newKeys) this.regroup();
        this.bump();
      },
      ended: async () => {
        const res = await runsApi.getRun({ run: id });
        if (res.run) store.upsert(res.run);
        return !isLive(res.run?.status ?? 0);
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

  private regroup() {
    this.groups = groupKeys(this.sums.keys());
    this.lineCache.clear();
  }

  private lines(g: ChartGroup): LineSpec[] {
    const cached = this.lineCache.get(g.id);
    if (cached) return cached;
    const run = this.detail!.run!;
    const start = Number(run.startedMs || run.createdMs);
    const lines = g.keys.map(({ key, label }) => {
      const s = this.sums.get(key)!;
      return {
        id: key,
        label,
        run: run.id,
        key,
        runStart: start,
        count: s.count,
        lastStep: s.lastStep,
        lastTimeMs: s.lastTimeMs,
        raw: this.raw.get(key),
        tail: this.tails.get(key),
      } satisfies LineSpec;
    });
    this.lineCache.set(g.id, lines);
    return lines;
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

  private charts() {
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
                .lines=${this.lines(g)} .axis=${g.section === "Scalars" || g.section === "Event-file scalars" || this.axis !== "step" ? this.axis : "relative"} .smoothing=${this.smoothing} .log=${this.log}
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
