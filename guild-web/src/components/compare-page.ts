// Runs side by side: a table of runs x flags x last/min/max of scalars (CompareRuns gives
// the flags and the series summaries), sortable, filterable, with the columns the user
// picks and a CSV download; an overlay chart of one key across the runs; and parallel
// coordinates of flags against a metric; and one media tag (images, histograms, text,
// audio, PR curves) across the runs side by side at one step (run-media.ts). When the runs' Guild files have views with
// compare columns, the table shows the run and those columns (as the file formats them)
// until the user asks for all columns.

import { LitElement, html, nothing } from "lit";
import { compareRuns, conn, errorText } from "../api";
import type { AxisMode } from "../chart-data";
import { compareValues, csvCell, fmtNumber, fmtTime, numericValue, statusName } from "../format";
import type { FieldValue, ViewField } from "../gen/guild/v1/guild_pb";
import { headline, selection, store, toRow, toSummary, type RunRow, type Summary } from "../store";
import { listedRuns } from "../router";
import type { LineSpec } from "./time-chart";
import "./time-chart";
import "./parallel-coords";
import "./run-media";
import type { PcAxis, PcLine } from "./parallel-coords";

interface Entry {
  id: string;
  row: RunRow;
  flags: Map<string, string>;
  sums: Map<string, Summary>;
  /** Values of the views' compare columns, by column name. */
  view: Map<string, FieldValue>;
}

type Stat = "last" | "min" | "max";

interface Col {
  id: string;
  label: string;
  kind: "run" | "flag" | "scalar" | "view";
  get: (e: Entry) => string | number | undefined;
  text: (e: Entry) => string;
}

const BASE_COLS: Col[] = [
  { id: "run", label: "run", kind: "run", get: (e) => e.id, text: (e) => e.id },
  { id: "model", label: "model", kind: "run", get: (e) => e.row.model, text: (e) => e.row.model },
  { id: "op", label: "op", kind: "run", get: (e) => e.row.op, text: (e) => e.row.op },
  { id: "status", label: "status", kind: "run", get: (e) => statusName(e.row.status), text: (e) => statusName(e.row.status) },
  { id: "started", label: "started", kind: "run", get: (e) => e.row.startedMs || e.row.createdMs, text: (e) => fmtTime(e.row.startedMs || e.row.createdMs) },
  { id: "label", label: "label", kind: "run", get: (e) => e.row.label, text: (e) => e.row.label },
];

export class ComparePage extends LitElement {
  static override properties = {
    params: {},
    filter: { state: true },
    sortBy: { state: true },
    sortDesc: { state: true },
    overlayKey: { state: true },
    metric: { state: true },
    axis: { state: true },
    smoothing: { state: true },
    log: { state: true },
    picking: { state: true },
    mode: { state: true },
  };

  params = "";
  filter = "";
  sortBy = "started";
  sortDesc = true;
  overlayKey = "";
  metric = "";
  axis: AxisMode = "step";
  smoothing = 0;
  log = false;
  picking = false;
  /** The views' compare columns, or every column. */
  mode: "view" | "all" = "view";

  private ids: string[] = [];
  private entries: Entry[] = [];
  private loaded = 0;
  private errors: string[] = [];
  /** Chosen columns: "f:<flag>" and "s:<stat>:<key>"; null: the default set. */
  private chosen: string[] | null = null;
  private viewColumns: ViewField[] = [];
  private overlayLines: LineSpec[] = [];
  private overlayFor = "";
  private abort: AbortController | null = null;

  protected override createRenderRoot() {
    return this;
  }

  override connectedCallback() {
    super.connectedCallback();
    const p = new URLSearchParams(this.params);
    const listed = listedRuns(p);
    this.ids = listed.length ? listed : [...selection.ids];
    this.overlayKey = p.get("key") ?? "";
    this.chosen = JSON.parse(localStorage.getItem("guild-compare-columns") ?? "null") as string[] | null;
    this.abort = new AbortController();
    void this.load(this.abort.signal);
  }

  override disconnectedCallback() {
    super.disconnectedCallback();
    this.abort?.abort();
  }

  private async load(signal: AbortSignal) {
    for (;;) {
      await conn.up();
      if (signal.aborted) return;
      try {
        // One CompareRuns stream: each run's flags and series summaries from the index.
        const compared = await compareRuns(this.ids, { view: true, signal });
        const got = compared.entries;
        this.viewColumns = compared.viewColumns;
        const byId = new Map(got.map((e) => [e.run.id, e]));
        this.entries = [];
        for (const id of this.ids) {
          const e = byId.get(id) ?? got.find((g) => g.run.id.startsWith(id));
          if (!e) {
            this.errors.push(`${id}: not found`);
            continue;
          }
          if (this.entries.some((x) => x.id === e.run.id)) continue;
          this.entries.push({
            id: e.run.id,
            row: store.runs.get(e.run.id) ?? toRow(e.run),
            flags: e.flags,
            sums: new Map(
              [...e.scalars].map(([key, v]) => [key, { key, ...v, count: NaN, lastStep: NaN, lastTimeMs: NaN }]),
            ),
            view: e.view,
          });
        }
        break;
      } catch (err) {
        if (signal.aborted) return;
        conn.report(err);
        if (conn.state === "up" || conn.state === "connecting") {
          this.errors.push(errorText(err));
          break;
        }
      }
    }
    this.loaded = this.entries.length;
    if (!this.overlayKey) this.overlayKey = headline(this.allKeys()).loss ?? this.allKeys()[0] ?? "";
    if (!this.metric) {
      const h = headline(this.allKeys());
      this.metric = h.acc ? `last:${h.acc}` : h.loss ? `last:${h.loss}` : "";
    }
    this.dataset.loaded = "true";
    this.requestUpdate();
  }

  private allKeys(): string[] {
    const keys = new Set<string>();
    for (const e of this.entries) for (const k of e.sums.keys()) keys.add(k);
    return [...keys].sort();
  }

  private allFlags(): string[] {
    const names = new Set<string>();
    for (const e of this.entries) for (const k of e.flags.keys()) names.add(k);
    return [...names];
  }

  private defaultChosen(): string[] {
    const flags = this.allFlags().map((f) => `f:${f}`);
    const keys = this.allKeys()
      .filter((k) => !k.startsWith("sys/") && !k.startsWith("op/"))
      .slice(0, 12)
      .map((k) => `s:last:${k}`);
    return [...flags, ...keys];
  }

  /** Whether the table shows the views' compare columns. */
  private viewMode(): boolean {
    return this.mode === "view" && this.viewColumns.length > 0;
  }

  private columns(): Col[] {
    return this.viewMode() ? this.viewCols() : this.allColumns();
  }

  /** The run's own columns, then the views' compare columns: headed by their labels,
   * written as the files format them, sorted by their numbers. */
  private viewCols(): Col[] {
    const cols = [...BASE_COLS];
    for (const f of this.viewColumns) {
      const value = (e: Entry) => {
        const v = e.view.get(f.name);
        return v?.present ? v : undefined;
      };
      cols.push({
        id: `v:${f.name}`,
        label: f.label || f.name,
        kind: "view",
        get: (e) => {
          const v = value(e);
          if (!v) return undefined;
          return Number.isNaN(v.value) ? v.text : v.value;
        },
        text: (e) => value(e)?.text ?? "",
      });
    }
    return cols;
  }

  private allColumns(): Col[] {
    const chosen = this.chosen ?? this.defaultChosen();
    const cols = [...BASE_COLS];
    for (const c of chosen) {
      if (c.startsWith("f:")) {
        const name = c.slice(2);
        cols.push({
          id: c,
          label: name,
          kind: "flag",
          get: (e) => {
            const v = e.flags.get(name);
            if (v === undefined) return undefined;
            return numericValue(v) ?? v;
          },
          text: (e) => e.flags.get(name) ?? "",
        });
      } else if (c.startsWith("s:")) {
        const [, stat, ...rest] = c.split(":");
        const key = rest.join(":");
        cols.push({
          id: c,
          label: stat === "last" ? key : `${key} (${stat})`,
          kind: "scalar",
          get: (e) => e.sums.get(key)?.[stat as Stat],
          text: (e) => {
            const s = e.sums.get(key);
            return s ? fmtNumber(s[stat as Stat]) : "";
          },
        });
      }
    }
    return cols;
  }

  private setChosen(c: string[] | null) {
    this.chosen = c;
    if (c) localStorage.setItem("guild-compare-columns", JSON.stringify(c));
    else localStorage.removeItem("guild-compare-columns");
    this.requestUpdate();
  }

  private toggleCol(id: string, on: boolean) {
    const cur = this.chosen ?? this.defaultChosen();
    this.setChosen(on ? [...cur.filter((c) => c !== id), id] : cur.filter((c) => c !== id));
  }

  private visible(cols: Col[]): Entry[] {
    const words = this.filter.toLowerCase().split(/\s+/).filter(Boolean);
    const rows = this.entries.filter((e) => {
      if (!words.length) return true;
      const text = cols.map((c) => `${c.label}=${c.text(e)}`).join("\u0000").toLowerCase() + "\u0000" + cols.map((c) => c.text(e)).join("\u0000").toLowerCase();
      return words.every((w) => text.includes(w));
    });
    const col = cols.find((c) => c.id === this.sortBy);
    if (col) {
      const dir = this.sortDesc ? -1 : 1;
      rows.sort((a, b) => {
        const va = col.get(a), vb = col.get(b);
        const ma = va === undefined || va === "", mb = vb === undefined || vb === "";
        if (ma || mb) return ma === mb ? 0 : ma ? 1 : -1;
        return dir * compareValues(va, vb);
      });
    }
    return rows;
  }

  private sort(id: string) {
    if (this.sortBy === id) this.sortDesc = !this.sortDesc;
    else {
      this.sortBy = id;
      this.sortDesc = false;
    }
  }

  private downloadCsv() {
    const cols = this.columns();
    const rows = this.visible(cols);
    const lines = [cols.map((c) => csvCell(c.label)).join(",")];
    for (const e of rows) lines.push(cols.map((c) => csvCell(c.text(e))).join(","));
    const blob = new Blob([lines.join("\n") + "\n"], { type: "text/csv" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "guild-compare.csv";
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  }

  private overlay(rows: Entry[]): LineSpec[] {
    const key = this.overlayKey;
    const sig = key + "|" + rows.map((e) => e.id).join(",");
    if (sig === this.overlayFor) return this.overlayLines;
    this.overlayFor = sig;
    const lines = rows
      .filter((e) => e.sums.has(key))
      .slice(0, 50)
      .map((e) => {
        const s = e.sums.get(key)!;
        return {
          id: e.id,
          label: e.row.label ? `${e.id} (${e.row.label})` : e.id,
          run: e.id,
          key,
          runStart: e.row.startedMs || e.row.createdMs,
          count: s.count,
          lastStep: s.lastStep,
          lastTimeMs: s.lastTimeMs,
        };
      });
    // Same runs as drawn from the address: keep their order, so the chart keeps its data.
    const early = this.overlayLines;
    const same = early.length === lines.length && early.every((l) => l.key === key && lines.some((x) => x.id === l.id));
    this.overlayLines = same ? early.map((l) => ({ ...lines.find((x) => x.id === l.id)! })) : lines;
    return this.overlayLines;
  }

  private parallel(rows: Entry[]): { axes: PcAxis[]; lines: PcLine[] } {
    const cols = this.allColumns().filter((c) => c.kind === "flag");
    // Flags with different values between the runs that have them (a constant flag, or
    // one only some runs have, says nothing).
    const varying = cols.filter((c) => new Set(rows.map((e) => c.text(e)).filter((v) => v !== "")).size > 1).slice(0, 10);
    const axes: PcAxis[] = varying.map((c) => ({ name: c.label, values: rows.map((e) => c.text(e)) }));
    const [stat, ...rest] = this.metric.split(":");
    const key = rest.join(":");
    if (key) {
      axes.push({
        name: stat === "last" ? key : `${key} (${stat})`,
        values: rows.map((e) => {
          const s = e.sums.get(key);
          return s ? fmtNumber(s[stat as Stat]) : "";
        }),
        metric: true,
      });
    }
    return { axes, lines: rows.map((e) => ({ id: e.id, label: e.id })) };
  }

  private picker() {
    const chosen = new Set(this.chosen ?? this.defaultChosen());
    const keys = this.allKeys();
    return html`<div class="picker" id="compare-picker">
      <div class="picker-head">Columns
        <button class="link small" @click=${() => this.setChosen(null)}>default</button>
        <button class="link small" @click=${() => this.setChosen([])}>none</button>
        <button class="link small" @click=${() => (this.picking = false)}>close</button>
      </div>
      <div class="picker-cols">
        <div><h3>Flags</h3>${this.allFlags().map(
          (f) => html`<label><input type="checkbox" data-col=${`f:${f}`} .checked=${chosen.has(`f:${f}`)} @change=${(e: Event) => this.toggleCol(`f:${f}`, (e.target as HTMLInputElement).checked)}> ${f}</label>`,
        )}</div>
        <div><h3>Scalars <span class="muted">last · min · max</span></h3>${keys.map(
          (k) => html`<div class="stat-pick">${(["last", "min", "max"] as Stat[]).map(
            (st) => html`<input type="checkbox" title=${st} data-col=${`s:${st}:${k}`} .checked=${chosen.has(`s:${st}:${k}`)} @change=${(e: Event) => this.toggleCol(`s:${st}:${k}`, (e.target as HTMLInputElement).checked)}>`,
          )} ${k}</div>`,
        )}</div>
      </div>
    </div>`;
  }

  override render() {
    if (this.ids.length === 0) {
      return html`<div class="empty" id="compare-empty">No runs to compare. Tick runs on the <a href="#/runs">Runs</a> page, then press “Compare”.</div>`;
    }
    const loaded = !!this.dataset.loaded;
    const cols = loaded ? this.columns() : [];
    const rows = loaded ? this.visible(cols) : [];
    const keys = loaded ? this.allKeys() : [this.overlayKey].filter(Boolean);
    // The overlay is in the same place whether the table has loaded or not: a key named
    // in the address starts drawing at once, while CompareRuns is still answering.
    return html`
      ${loaded ? this.tablePart(cols, rows) : html`<div class="empty">Loading ${this.ids.length} runs…</div>`}
      <h2>Overlay</h2>
      <div class="toolbar chart-tools">
        <label>key <select id="overlay-key" @change=${(e: Event) => (this.overlayKey = (e.target as HTMLSelectElement).value)}>
          ${keys.map((k) => html`<option value=${k} ?selected=${k === this.overlayKey}>${k}</option>`)}
        </select></label>
        <label>x axis <select @change=${(e: Event) => (this.axis = (e.target as HTMLSelectElement).value as AxisMode)}>
          <option value="step">step</option><option value="wall">wall time</option><option value="relative">relative time</option>
        </select></label>
        <label>smoothing <input type="range" min="0" max="0.99" step="0.01" .value=${String(this.smoothing)}
          @input=${(e: Event) => (this.smoothing = Number((e.target as HTMLInputElement).value))}></label>
        <label><input type="checkbox" .checked=${this.log} @change=${(e: Event) => (this.log = (e.target as HTMLInputElement).checked)}> log scale</label>
      </div>
      ${this.overlayKey
        ? html`<time-chart id="overlay-chart" class="chart wide" .lines=${loaded ? this.overlay(rows) : this.earlyOverlay()} .axis=${this.axis}
            .smoothing=${this.smoothing} .log=${this.log} .heading=${this.overlayKey} .height=${320}></time-chart>`
        : html`<div class="empty">${loaded ? "These runs have no series." : ""}</div>`}
      ${loaded ? this.parallelPart(rows, keys) : nothing}
      <compare-media .runs=${this.ids}></compare-media>
    `;
  }

  /** Overlay lines before CompareRuns answers: every run in the address. */
  private earlyOverlay(): LineSpec[] {
    const sig = `early|${this.overlayKey}|${this.ids.join(",")}`;
    if (sig === this.overlayFor) return this.overlayLines;
    this.overlayFor = sig;
    this.overlayLines = this.ids.slice(0, 50).map((id) => ({
      id,
      label: id,
      run: id,
      key: this.overlayKey,
      runStart: NaN,
      count: NaN,
      lastStep: NaN,
      lastTimeMs: NaN,
    }));
    return this.overlayLines;
  }

  private tablePart(cols: Col[], rows: Entry[]) {
    return html`
      <div class="toolbar">
        <input id="compare-filter" type="search" placeholder="Filter (any cell, or name=value)" .value=${this.filter}
          @input=${(e: Event) => (this.filter = (e.target as HTMLInputElement).value)}>
        ${this.viewColumns.length
          ? html`<label>columns <select id="compare-mode" @change=${(e: Event) => {
              this.mode = (e.target as HTMLSelectElement).value as "view" | "all";
              this.picking = false;
            }}>
              <option value="view" ?selected=${this.mode === "view"}>the view's</option>
              <option value="all" ?selected=${this.mode === "all"}>all</option>
            </select></label>`
          : nothing}
        ${this.viewMode() ? nothing : html`<button id="compare-columns" @click=${() => (this.picking = !this.picking)}>Columns…</button>`}
        <button id="csv" @click=${this.downloadCsv}>Download CSV</button>
        <span class="spacer"></span>
        <span class="muted" id="compare-count">${rows.length} of ${this.entries.length} runs</span>
      </div>
      ${this.errors.length ? html`<div class="error">${this.errors.join("; ")}</div>` : nothing}
      ${this.picking && !this.viewMode() ? this.picker() : nothing}
      <div class="table-wrap">
        <table class="grid" id="compare-table">
          <thead><tr>${cols.map(
            (c) => html`<th class="sortable ${c.kind} ${this.sortBy === c.id ? "sorted" : ""}" data-col=${c.id} @click=${() => this.sort(c.id)}>${c.label}${this.sortBy === c.id ? (this.sortDesc ? " ▾" : " ▴") : ""}</th>`,
          )}</tr></thead>
          <tbody>${rows.map(
            (e) => html`<tr data-run-id=${e.id}>${cols.map((c) =>
              c.id === "run"
                ? html`<td><a href="#/runs/${encodeURIComponent(e.id)}">${e.id}</a></td>`
                : html`<td class=${c.kind === "run" ? "" : "num"} data-col=${c.id}>${c.text(e)}</td>`,
            )}</tr>`,
          )}</tbody>
        </table>
      </div>`;
  }

  private parallelPart(rows: Entry[], keys: string[]) {
    const pc = this.parallel(rows);
    return html`
      <h2>Parallel coordinates</h2>
      <div class="toolbar">
        <label>metric <select id="pc-metric" @change=${(e: Event) => (this.metric = (e.target as HTMLSelectElement).value)}>
          ${keys.flatMap((k) =>
            (["last", "min", "max"] as Stat[]).map((st) => html`<option value=${`${st}:${k}`} ?selected=${`${st}:${k}` === this.metric}>${k} (${st})</option>`),
          )}
        </select></label>
        <span class="muted">flags that differ between the shown runs, coloured by the metric</span>
      </div>
      <parallel-coords id="parallel" .axes=${pc.axes} .lines=${pc.lines}></parallel-coords>`;
  }
}

customElements.define("compare-page", ComparePage);
