// A run's output: ReadOutput from the start, following while the run is live. Chunks
// are decoded as they come (the stream yields to the page every 25 ms of decoding) and
// appended once per animation frame whatever the rate; only the lines in view are in the
// DOM; the page keeps the last 500,000 lines (saying how many earlier ones it dropped)
// and the filter keeps an index of matching lines updated as lines arrive. So a run
// printing thousands of lines a second, or a finished run's 100,000 lines read at once,
// never stalls the tab (tests/dashboard.test.mjs floods it and measures frame gaps).

import { LitElement, html, nothing } from "lit";
import { conn, errorText, keepStreaming, output as outputApi, runs as runsApi } from "../api";
import { Stream, type OutputChunk } from "../gen/guild/v1/guild_pb";
import { fmtTime, isLive } from "../format";
import { OutputLines } from "../output-lines";
import { store } from "../store";

const LINE_H = 18;

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

  private lines = new OutputLines();
  private lastSeq = 0n;
  private pending: OutputChunk[] = [];
  private flushQueued = false;
  private abort: AbortController | null = null;
  private scroller: HTMLElement | null = null;
  private first = 0;
  private viewLines = 30;
  /** The scroller's inner height (px), from a ResizeObserver: never read during a flush. */
  private viewH = 420;
  /** Where the next render scrolls to (null: nowhere), and the scrollTop we last set. */
  private scrollTarget: number | null = null;
  private setTop = -1;
  private done = false;
  private error = "";

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
    const lines = this.lines;
    for (const c of chunks) {
      for (const l of c.lines) lines.push(Number(l.seq), Number(l.timeMs), l.stream === Stream.STDERR, l.text);
    }
    lines.trim();
    if (this.follow) this.jumpToEnd();
    this.requestUpdate();
  }

  private setFilter(v: string) {
    this.filter = v;
    this.lines.setFilter(v);
    if (this.follow) this.jumpToEnd();
    else {
      this.first = 0;
      this.scrollTarget = 0;
    }
  }

  /** Makes the coming render show the last lines and scroll to them: one render and one
   * layout per frame however many lines arrived (the scroll position is computed from
   * the line count, not read back from the DOM). */
  private jumpToEnd() {
    const top = Math.max(0, this.lines.shown * LINE_H - this.viewH);
    this.first = Math.max(0, Math.floor(top / LINE_H) - 10);
    this.scrollTarget = top;
    this.requestUpdate();
  }

  protected override firstUpdated() {
    this.scroller = this.querySelector(".out-scroll");
    const ro = new ResizeObserver(() => {
      this.viewH = this.scroller?.clientHeight ?? 420;
      this.viewLines = Math.ceil(this.viewH / LINE_H) + 1;
      if (this.follow) this.jumpToEnd();
      this.requestUpdate();
    });
    if (this.scroller) ro.observe(this.scroller);
  }

  private onScroll = () => {
    const s = this.scroller;
    if (!s) return;
    const top = s.scrollTop;
    const first = Math.max(0, Math.floor(top / LINE_H) - 10);
    // A scroll we made (following) leaves follow as it is; one the user made turns it
    // off above the end and on at the end.
    if (Math.abs(top - this.setTop) >= 1) {
      this.setTop = -1;
      const atEnd = top + s.clientHeight >= s.scrollHeight - LINE_H;
      if (atEnd !== this.follow) this.follow = atEnd;
    }
    if (first !== this.first) {
      this.first = first;
      this.requestUpdate();
    }
  };

  protected override updated() {
    if (this.scrollTarget !== null && this.scroller) {
      // The browser clamps to the end; remember what it made of it.
      this.scroller.scrollTop = this.scrollTarget;
      this.setTop = this.scroller.scrollTop;
      this.scrollTarget = null;
    }
    this.dataset.lines = String(this.lines.received);
    this.dataset.kept = String(this.lines.length);
    this.dataset.shown = String(this.lines.shown);
  }

  override render() {
    const L = this.lines;
    const total = L.shown;
    const end = Math.min(total, this.first + this.viewLines + 20);
    const rows = [];
    for (let k = this.first; k < end; k++) {
      const i = L.at(k);
      rows.push(html`<div class="out-line ${L.err[i] ? "stderr" : ""}" style="top:${k * LINE_H}px" title=${fmtTime(L.time[i])}><span class="seq">${L.seq[i]}</span>${L.text[i]}</div>`);
    }
    return html`
      <div class="toolbar">
        <input id="output-filter" type="search" placeholder="Filter output (text, or /regex/)" .value=${this.filter}
          @input=${(e: Event) => this.setFilter((e.target as HTMLInputElement).value)}>
        <label><input type="checkbox" id="output-follow" .checked=${this.follow}
          @change=${(e: Event) => {
            this.follow = (e.target as HTMLInputElement).checked;
            if (this.follow) this.jumpToEnd();
          }}> follow</label>
        <span class="spacer"></span>
        <span class="muted" id="output-count">${L.hits ? `${total} of ${L.length} lines` : `${total} lines`}${this.live && !this.done ? " · live" : ""}</span>
      </div>
      ${this.error ? html`<div class="error">${this.error}</div>` : nothing}
      ${L.dropped
        ? html`<div class="out-dropped muted" id="output-dropped">The first ${L.dropped.toLocaleString()} lines are not kept here (the page keeps the last ${L.maxLines.toLocaleString()}; the filter searches those). Every line is in the run: <code>guild watch</code> or <code>sqlite3 guild.d/run.db 'select * from output'</code>.</div>`
        : nothing}
      <div class="out-scroll" @scroll=${this.onScroll}>
        <div class="out-space" style="height:${total * LINE_H}px">${rows}</div>
        ${total === 0 ? html`<div class="empty">${L.length ? "No line matches the filter." : conn.state === "up" ? "No output." : "…"}</div>` : nothing}
      </div>
    `;
  }
}

customElements.define("output-view", OutputView);
