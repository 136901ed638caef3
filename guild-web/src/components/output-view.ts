// A run's output: ReadOutput from the start, following while the run is live. Lines are
// appended once per animation frame whatever the rate, only the lines in view are in the
// DOM, and the filter keeps an index of matching lines updated as lines arrive, so
// thousands of lines a second do not stall the tab.

import { LitElement, html, nothing } from "lit";
import { conn, errorText, keepStreaming, output as outputApi, runs as runsApi } from "../api";
import { Stream, type OutputChunk } from "../gen/guild/v1/guild_pb";
import { fmtTime, isLive } from "../format";
import { store } from "../store";

const LINE_H = 18;
/** Lines kept in the page; older ones are dropped (the run keeps them all). */
const MAX_LINES = 500_000;

export class OutputView extends LitElement {
  static override properties = {
    runId: {},
    live: { type: Boolean },
    filter: { state: true },
    follow: { state: true },
  };

  runId = "";
  live = false;
  filter = "";
  follow = true;

  private seq: number[] = [];
  private time: number[] = [];
  private err: boolean[] = [];
  private text: string[] = [];
  private dropped = 0;
  private lastSeq = 0n;
  /** Indexes (into the arrays above) of the lines that match the filter; null: all. */
  private hits: number[] | null = null;
  private matcher: ((s: string) => boolean) | null = null;
  private pending: OutputChunk[] = [];
  private flushQueued = false;
  private abort: AbortController | null = null;
  private scroller: HTMLElement | null = null;
  private first = 0;
  private viewLines = 30;
  private done = false;
  private error = "";
  private autoScrolling = false;

  protected override createRenderRoot() {
    return this;
  }

  override connectedCallback() {
    super.connectedCallback();
    this.start();
  }

  override disconnectedCallback() {
    super.disconnectedCallback();
    this.abort?.abort();
    this.abort = null;
  }

  private start() {
    this.abort?.abort();
    const abort = new AbortController();
    this.abort = abort;
    const runId = this.runId;
    void keepStreaming({
      signal: abort.signal,
      open: (signal) => outputApi.readOutput({ run: runId, fromSeq: this.lastSeq, follow: this.live }, { signal }),
      onMessage: (chunk) => {
        this.pending.push(chunk);
        const last = chunk.lines[chunk.lines.length - 1];
        if (last) this.lastSeq = last.seq;
        this.queueFlush();
      },
      // A follow that ends while the run is still live is a daemon going away: resume.
      ended: async () => {
        if (!this.live) return this.finish();
        const known = store.runs.get(runId);
        if (known && !isLive(known.status)) return this.finish();
        const res = await runsApi.getRun({ run: runId });
        return isLive(res.run?.status ?? 0) ? false : this.finish();
      },
      onError: (err) => {
        this.error = errorText(err);
        this.requestUpdate();
      },
    });
  }

  private finish(): boolean {
    this.done = true;
    this.dataset.done = "true";
    this.requestUpdate();
    return true;
  }

  private queueFlush() {
    if (this.flushQueued) return;
    this.flushQueued = true;
    requestAnimationFrame(() => this.flush());
  }

  private flush() {
    this.flushQueued = false;
    const chunks = this.pending;
    this.pending = [];
    for (const c of chunks) {
      for (const l of c.lines) {
        const i = this.text.length;
        this.seq.push(Number(l.seq));
        this.time.push(Number(l.timeMs));
        this.err.push(l.stream === Stream.STDERR);
        this.text.push(l.text);
        if (this.hits && this.matcher!(l.text)) this.hits.push(i);
      }
    }
    if (this.text.length > MAX_LINES) this.trim(this.text.length - MAX_LINES + MAX_LINES / 10);
    this.requestUpdate();
    if (this.follow) this.updateComplete.then(() => this.scrollToEnd());
  }

  private trim(n: number) {
    this.seq.splice(0, n);
    this.time.splice(0, n);
    this.err.splice(0, n);
    this.text.splice(0, n);
    this.dropped += n;
    if (this.hits) this.hits = this.hits.filter((i) => i >= n).map((i) => i - n);
  }

  private setFilter(v: string) {
    this.filter = v;
    this.matcher = makeMatcher(v);
    if (!this.matcher) this.hits = null;
    else {
      const m: number[] = [];
      const f = this.matcher;
      for (let i = 0; i < this.text.length; i++) if (f(this.text[i])) m.push(i);
      this.hits = m;
    }
    this.first = 0;
    this.updateComplete.then(() => {
      if (this.follow) this.scrollToEnd();
      else if (this.scroller) this.scroller.scrollTop = 0;
    });
  }

  private scrollToEnd() {
    if (!this.scroller) return;
    this.autoScrolling = true;
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.onScroll();
  }

  protected override firstUpdated() {
    this.scroller = this.querySelector(".out-scroll");
    const ro = new ResizeObserver(() => {
      this.viewLines = Math.ceil((this.scroller?.clientHeight ?? 400) / LINE_H) + 1;
      this.requestUpdate();
    });
    if (this.scroller) ro.observe(this.scroller);
  }

  private onScroll = () => {
    const s = this.scroller;
    if (!s) return;
    const first = Math.max(0, Math.floor(s.scrollTop / LINE_H) - 10);
    if (!this.autoScrolling) {
      const atEnd = s.scrollTop + s.clientHeight >= s.scrollHeight - LINE_H;
      if (atEnd !== this.follow) this.follow = atEnd;
    }
    this.autoScrolling = false;
    if (first !== this.first) {
      this.first = first;
      this.requestUpdate();
    }
  };

  protected override updated() {
    const shown = this.hits ? this.hits.length : this.text.length;
    this.dataset.lines = String(this.text.length + this.dropped);
    this.dataset.shown = String(shown);
  }

  override render() {
    const total = this.hits ? this.hits.length : this.text.length;
    const end = Math.min(total, this.first + this.viewLines + 20);
    const rows = [];
    for (let k = this.first; k < end; k++) {
      const i = this.hits ? this.hits[k] : k;
      rows.push(html`<div class="out-line ${this.err[i] ? "stderr" : ""}" style="top:${k * LINE_H}px" title=${fmtTime(this.time[i])}><span class="seq">${this.seq[i]}</span>${this.text[i]}</div>`);
    }
    return html`
      <div class="toolbar">
        <input id="output-filter" type="search" placeholder="Filter output (text, or /regex/)" .value=${this.filter}
          @input=${(e: Event) => this.setFilter((e.target as HTMLInputElement).value)}>
        <label><input type="checkbox" id="output-follow" .checked=${this.follow}
          @change=${(e: Event) => {
            this.follow = (e.target as HTMLInputElement).checked;
            if (this.follow) this.scrollToEnd();
          }}> follow</label>
        <span class="spacer"></span>
        <span class="muted" id="output-count">${this.hits ? `${total} of ${this.text.length} lines` : `${total} lines`}${this.dropped ? ` (${this.dropped} earlier lines not kept here)` : ""}${this.live && !this.done ? " · live" : ""}</span>
      </div>
      ${this.error ? html`<div class="error">${this.error}</div>` : nothing}
      <div class="out-scroll" @scroll=${this.onScroll}>
        <div class="out-space" style="height:${total * LINE_H}px">${rows}</div>
        ${total === 0 ? html`<div class="empty">${this.text.length ? "No line matches the filter." : conn.state === "up" ? "No output." : "…"}</div>` : nothing}
      </div>
    `;
  }
}

/** Case-insensitive substring, or a regular expression written as /re/flags. */
export function makeMatcher(v: string): ((s: string) => boolean) | null {
  if (!v) return null;
  const re = /^\/(.+)\/([a-z]*)$/.exec(v);
  if (re) {
    try {
      const r = new RegExp(re[1], re[2].replace("g", ""));
      return (s) => r.test(s);
    } catch {
      // Not a valid expression: search for the text itself.
    }
  }
  const needle = v.toLowerCase();
  return (s) => s.toLowerCase().includes(needle);
}

customElements.define("output-view", OutputView);
