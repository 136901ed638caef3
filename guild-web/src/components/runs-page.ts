// Every run, newest first, live. Only the rows in view are in the DOM (fixed row height,
// a spacer for the rest), so 10,000 runs scroll like 10. Scalar columns come from
// ListSeries for the rows in view, fetched lazily and cached.

import { LitElement, html, nothing } from "lit";
import { repeat } from "lit/directives/repeat.js";
import { compareValues, fmtDuration, fmtNumber, fmtTime, isLive, runDuration, statusName, STATUS_NAMES } from "../format";
import { headline, selection, store, summaries, type RunRow } from "../store";
import { conn } from "../api";
import { navigate } from "../router";
import { queuePositions, trialsBySweep } from "../queue";

const ROW_H = 30;
const OVERSCAN = 8;

interface Column {
  id: string;
  label: string;
  width: string;
  value: (r: RunRow) => string | number | undefined;
  cell?: (r: RunRow) => unknown;
}

const SCALAR_PREFIX = "s:";

export class RunsPage extends LitElement {
  static override properties = {
    filter: { state: true },
    status: { state: true },
    sortBy: { state: true },
    sortDesc: { state: true },
    first: { state: true },
    viewRows: { state: true },
    chosenKeys: { state: true },
    showPicker: { state: true },
    expanded: { state: true },
  };

  /** Sweeps whose trials are shown under them. */
  expanded = new Set<string>();
  private queueMemo: { version: number; positions: Map<string, number>; trials: Map<string, RunRow[]> } = {
    version: -1,
    positions: new Map(),
    trials: new Map(),
  };

  /** Queue positions and sweeps' trials, computed once per store version. */
  private queue() {
    if (this.queueMemo.version !== store.version) {
      const all = [...store.runs.values()];
      this.queueMemo = { version: store.version, positions: queuePositions(all), trials: trialsBySweep(all) };
    }
    return this.queueMemo;
  }

  private toggleSweep(e: Event, id: string) {
    e.stopPropagation();
    const next = new Set(this.expanded);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    this.expanded = next;
  }

  filter = sessionStorage.getItem("guild-runs-filter") ?? "";
  status = sessionStorage.getItem("guild-runs-status") ?? "";
  sortBy = "started";
  sortDesc = true;
  first = 0;
  viewRows = 20;
  chosenKeys: string[] | null = JSON.parse(localStorage.getItem("guild-run-columns") ?? "null") as string[] | null;
  showPicker = false;

  private unsubs: Array<() => void> = [];
  private memo: { key: string; rows: RunRow[] } = { key: "", rows: [] };
  private tick = 0;
  private scroller: HTMLElement | null = null;
  private resize: ResizeObserver | null = null;
  private lastClicked = -1;

  protected override createRenderRoot() {
    return this;
  }

  override connectedCallback() {
    super.connectedCallback();
    if (conn.state !== "unauthenticated") store.start();
    this.unsubs.push(store.on(() => this.requestUpdate()));
    this.unsubs.push(summaries.on(() => this.requestUpdate()));
    this.unsubs.push(selection.on(() => this.requestUpdate()));
    this.unsubs.push(conn.on(() => this.requestUpdate()));
    // Durations of live runs tick.
    this.tick = window.setInterval(() => {
      if (this.visibleRows().some((r) => isLive(r.status))) this.requestUpdate();
    }, 1000);
  }

  override disconnectedCallback() {
    super.disconnectedCallback();
    for (const u of this.unsubs) u();
    this.unsubs = [];
    clearInterval(this.tick);
    this.resize?.disconnect();
  }

  protected override firstUpdated() {
    this.scroller = this.querySelector(".vscroll");
    this.resize = new ResizeObserver(() => {
      const h = this.scroller?.clientHeight ?? 600;
      this.viewRows = Math.ceil(h / ROW_H) + 1;
    });
    if (this.scroller) this.resize.observe(this.scroller);
  }

  protected override updated() {
    const rows = this.visibleRows();
    summaries.want(rows.map((r) => r.id));
    this.dataset.total = String(store.runs.size);
    this.dataset.shown = String(this.rows().length);
    if (store.firstPageLoaded && !this.dataset.ready) {
      this.dataset.ready = "true";
      // When the first rows were drawn, for the benchmark.
      this.dataset.firstRowsMs = String(Math.round(performance.now()));
    }
    if (store.snapshotComplete) this.dataset.complete = "true";
  }

  private onScroll = () => {
    const top = this.scroller?.scrollTop ?? 0;
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    if (first !== this.first) this.first = first;
  };

  private scalarKeys(): string[] {
    if (this.chosenKeys) return this.chosenKeys;
    // Until the user picks: the headline keys of the runs in view.
    // (From the rows computed last: the sort may depend on these columns.)
    const seen = new Set<string>();
    for (const r of this.memo.rows.slice(this.first, this.first + this.viewRows + 2 * OVERSCAN)) {
      const s = summaries.get(r.id);
      if (s) for (const k of s.keys()) seen.add(k);
    }
    const h = headline(seen);
    const keys = [h.loss, h.acc].filter((k): k is string => !!k);
    for (const k of ["val_acc", "val_loss", "test_acc"]) if (seen.has(k) && !keys.includes(k) && keys.length < 3) keys.push(k);
    return keys;
  }

  private columns(): Column[] {
    const cols: Column[] = [
      {
        id: "status",
        label: "status",
        width: "170px",
        value: (r) => statusName(r.status),
        cell: (r) => {
          const position = this.queue().positions.get(r.id);
          return html`<span class="status status-${statusName(r.status)}" title=${r.reason}>${statusName(r.status)}${r.exitStatus !== undefined && r.exitStatus !== 0 ? ` (${r.exitStatus})` : ""}${position ? html` <span class="queue-pos" title="position in guildd's queue">#${position}</span>` : nothing}</span>${r.gpus.length && isLive(r.status) ? html` <span class="gpus" title="GPUs given">gpu ${r.gpus.join(",")}</span>` : position && r.gpusRequested ? html` <span class="gpus" title="GPUs asked for">${r.gpusRequested} gpu</span>` : nothing}`;
        },
      },
      {
        id: "id",
        label: "run",
        width: "minmax(180px, 2fr)",
        value: (r) => r.id,
        cell: (r) =>
          r.op === "sweep"
            ? html`<a href="#/sweeps/${encodeURIComponent(r.id)}" class="runid">${r.id}</a>`
            : html`${r.trial ? html`<span class="trial-mark">└ </span>` : nothing}<a href="#/runs/${encodeURIComponent(r.id)}" class="runid">${r.id}</a>`,
      },
      { id: "model", label: "model", width: "minmax(70px, 1fr)", value: (r) => r.model },
      {
        id: "op",
        label: "op",
        width: "110px",
        value: (r) => r.op,
        cell: (r) => {
          if (r.op === "sweep") {
            const n = this.queue().trials.get(r.id)?.length ?? 0;
            const open = this.expanded.has(r.id);
            return html`<button class="link small sweep-toggle" data-sweep=${r.id} title="show or hide its trials" @click=${(e: Event) => this.toggleSweep(e, r.id)}>${open ? "▾" : "▸"} sweep (${n})</button>`;
          }
          return r.trial ? `${r.op} #${r.trial}` : r.op;
        },
      },
      { id: "started", label: "started", width: "150px", value: (r) => r.startedMs || r.createdMs, cell: (r) => fmtTime(r.startedMs || r.createdMs) },
      { id: "duration", label: "time", width: "70px", value: (r) => runDuration(r), cell: (r) => fmtDuration(runDuration(r)) },
      {
        id: "label",
        label: "label",
        width: "minmax(60px, 1fr)",
        value: (r) => r.label,
        cell: (r) => html`${r.label}${r.tags.map((t) => html` <span class="tag">${t}</span>`)}`,
      },
    ];
    for (const k of this.scalarKeys()) {
      cols.push({
        id: SCALAR_PREFIX + k,
        label: k,
        width: "minmax(70px, 1fr)",
        value: (r) => summaries.get(r.id)?.get(k)?.last,
        cell: (r) => {
          const s = summaries.get(r.id);
          if (!s) return html`<span class="muted">…</span>`;
          const v = s.get(k);
          return v === undefined ? "" : html`<span class="num" title="min ${fmtNumber(v.min)}, max ${fmtNumber(v.max)}">${fmtNumber(v.last)}</span>`;
        },
      });
    }
    return cols;
  }

  /** The filtered, sorted rows (memoized on the store's version and the settings). */
  private rows(): RunRow[] {
    const scalarSort = this.sortBy.startsWith(SCALAR_PREFIX);
    const key = [store.version, this.filter, this.status, this.sortBy, this.sortDesc, scalarSort ? summaries.version : 0, [...this.expanded].join(",")].join("|");
    if (this.memo.key === key) return this.memo.rows;
    const words = this.filter.toLowerCase().split(/\s+/).filter(Boolean);
    const status = this.status;
    const out: RunRow[] = [];
    for (const r of store.runs.values()) {
      // A sweep's trials are shown under it (when it is expanded), not on their own.
      if (r.sweep && store.runs.has(r.sweep)) continue;
      if (status && statusName(r.status) !== status) continue;
      if (words.length && !words.every((w) => r.haystack.includes(w))) continue;
      out.push(r);
    }
    const cols = this.columns();
    const col = cols.find((c) => c.id === this.sortBy) ?? cols[4];
    const dir = this.sortDesc ? -1 : 1;
    // Decorate, sort, undecorate: each value computed once; numbers compared directly.
    const dec = out.map((r) => ({ r, v: col.value(r) }));
    const missing = (v: unknown) => v === undefined || v === "" || (typeof v === "number" && Number.isNaN(v));
    dec.sort((a, b) => {
      const ma = missing(a.v), mb = missing(b.v);
      if (ma || mb) return ma === mb ? b.r.createdMs - a.r.createdMs : ma ? 1 : -1;
      const c =
        typeof a.v === "number" && typeof b.v === "number" ? a.v - b.v : compareValues(a.v, b.v);
      return dir * c || b.r.createdMs - a.r.createdMs || (a.r.id < b.r.id ? 1 : -1);
    });
    for (let i = 0; i < dec.length; i++) out[i] = dec[i].r;
    const grouped = this.expanded.size ? out.flatMap((r) => (this.expanded.has(r.id) ? [r, ...(this.queue().trials.get(r.id) ?? [])] : [r])) : out;
    this.memo = { key, rows: grouped };
    return grouped;
  }

  private visibleRows(): RunRow[] {
    return this.rows().slice(this.first, this.first + this.viewRows + 2 * OVERSCAN);
  }

  private sort(id: string) {
    if (this.sortBy === id) this.sortDesc = !this.sortDesc;
    else {
      this.sortBy = id;
      this.sortDesc = id === "started" || id === "duration";
    }
  }

  private setFilter(v: string) {
    this.filter = v;
    sessionStorage.setItem("guild-runs-filter", v);
    this.first = 0;
    if (this.scroller) this.scroller.scrollTop = 0;
  }

  private setStatus(v: string) {
    this.status = v;
    sessionStorage.setItem("guild-runs-status", v);
    this.first = 0;
    if (this.scroller) this.scroller.scrollTop = 0;
  }

  private setKeys(keys: string[] | null) {
    this.chosenKeys = keys;
    if (keys) localStorage.setItem("guild-run-columns", JSON.stringify(keys));
    else localStorage.removeItem("guild-run-columns");
  }

  private clickCheck(e: MouseEvent, index: number, r: RunRow) {
    e.stopPropagation();
    const on = !selection.ids.has(r.id);
    if (e.shiftKey && this.lastClicked >= 0) {
      const rows = this.rows();
      const [a, b] = [Math.min(this.lastClicked, index), Math.max(this.lastClicked, index)];
      selection.setAll(rows.slice(a, b + 1).map((x) => x.id), on);
    } else selection.toggle(r.id, on);
    this.lastClicked = index;
  }

  private compare(ids: string[]) {
    navigate(`#/compare?runs=${ids.map(encodeURIComponent).join(",")}`);
  }

  private picker() {
    const current = this.scalarKeys();
    const known = [...summaries.knownKeys].sort();
    return html`<div class="picker" id="column-picker">
      <div class="picker-head">Scalar columns (last value)
        <button class="link small" @click=${() => this.setKeys(null)}>automatic</button>
        <button class="link small" @click=${() => (this.showPicker = false)}>close</button>
      </div>
      <div class="picker-list">
        ${known.length === 0 ? html`<span class="muted">no keys seen yet</span>` : nothing}
        ${known.map(
          (k) => html`<label><input type="checkbox" .checked=${current.includes(k)} @change=${(e: Event) => {
            const on = (e.target as HTMLInputElement).checked;
            this.setKeys(on ? [...current, k] : current.filter((x) => x !== k));
          }}> ${k}</label>`,
        )}
      </div>
    </div>`;
  }

  override render() {
    const rows = this.rows();
    const cols = this.columns();
    const template = `34px ${cols.map((c) => c.width).join(" ")}`;
    const vis = rows.slice(this.first, this.first + this.viewRows + 2 * OVERSCAN);
    const sel = selection.ids.size;
    const allVisSelected = rows.length > 0 && rows.length <= 5000 && rows.every((r) => selection.ids.has(r.id));
    const statuses = Object.values(STATUS_NAMES).filter((s) => s !== "unknown");
    const loading = !store.firstPageLoaded && conn.state !== "unauthenticated";
    return html`
      <div class="toolbar">
        <input id="runs-filter" type="search" placeholder="Filter runs (id, model, op, label, tag, status)" .value=${this.filter}
          @input=${(e: Event) => this.setFilter((e.target as HTMLInputElement).value)}>
        <select id="runs-status" .value=${this.status} @change=${(e: Event) => this.setStatus((e.target as HTMLSelectElement).value)}>
          <option value="">any status</option>
          ${statuses.map((s) => html`<option value=${s} ?selected=${this.status === s}>${s}</option>`)}
        </select>
        <button @click=${() => (this.showPicker = !this.showPicker)}>Columns…</button>
        <span class="spacer"></span>
        <span class="count" id="runs-count">${rows.length === store.runs.size ? `${rows.length} runs` : `${rows.length} of ${store.runs.size} runs`}${store.snapshotComplete || !store.firstPageLoaded ? "" : html` <span class="muted">(loading…)</span>`}</span>
        <button id="compare-selected" ?disabled=${sel === 0} @click=${() => this.compare([...selection.ids])}>Compare ${sel} selected</button>
        <button id="compare-filtered" ?disabled=${rows.length === 0} title="at most the first 500" @click=${() => this.compare(rows.slice(0, 500).map((r) => r.id))}>Compare ${Math.min(rows.length, 500)} shown</button>
        <button id="tensorboard-selected" ?disabled=${sel === 0} title="TensorBoard of the ticked runs" @click=${() => navigate(`#/tensorboard?runs=${[...selection.ids].map(encodeURIComponent).join(",")}`)}>TensorBoard</button>
        ${sel ? html`<button class="link" @click=${() => selection.clear()}>clear</button>` : nothing}
      </div>
      ${this.showPicker ? this.picker() : nothing}
      <div class="vtable" role="table">
        <div class="vrow vhead" role="row" style="grid-template-columns:${template}">
          <span><input type="checkbox" title="select all shown" .checked=${allVisSelected} ?disabled=${rows.length > 5000}
            @change=${(e: Event) => selection.setAll(rows.map((r) => r.id), (e.target as HTMLInputElement).checked)}></span>
          ${cols.map(
            (c) => html`<span class="sortable ${this.sortBy === c.id ? "sorted" : ""}" data-col=${c.id} role="columnheader"
              @click=${() => this.sort(c.id)}>${c.label}${this.sortBy === c.id ? (this.sortDesc ? " ▾" : " ▴") : ""}</span>`,
          )}
        </div>
        <div class="vscroll" @scroll=${this.onScroll}>
          ${rows.length === 0
            ? html`<div class="empty" id="runs-empty">${conn.state === "unauthenticated" ? "Not authorized: see above." : loading ? "Loading runs…" : store.runs.size === 0 ? html`No runs yet. Start one with <code>guild train</code> in a project folder.` : "No run matches the filter."}</div>`
            : nothing}
          <div class="vspace" style="height:${rows.length * ROW_H}px">
            ${repeat(
              vis,
              (r) => r.id,
              (r, i) => {
                const index = this.first + i;
                return html`<div class="vrow run-row ${selection.ids.has(r.id) ? "selected" : ""}" role="row"
                  data-run-id=${r.id} data-status=${statusName(r.status)} data-trial=${r.trial || nothing}
                  style="grid-template-columns:${template};transform:translateY(${index * ROW_H}px)"
                  @click=${() => navigate(r.op === "sweep" ? `#/sweeps/${encodeURIComponent(r.id)}` : `#/runs/${encodeURIComponent(r.id)}`)}>
                  <span><input type="checkbox" .checked=${selection.ids.has(r.id)} @click=${(e: MouseEvent) => this.clickCheck(e, index, r)}></span>
                  ${cols.map((c) => html`<span class="cell" data-col=${c.id}>${c.cell ? c.cell(r) : c.value(r)}</span>`)}
                </div>`;
              },
            )}
          </div>
        </div>
      </div>
    `;
  }
}

customElements.define("runs-page", RunsPage);
