// TensorBoard for a selection of runs (#/tensorboard?runs=a,b): StartTensorBoard has
// guildd start TensorBoard (or reuse the one that shows the same runs) and answers once
// it is up; TensorBoard itself then shows in an iframe at /tb/ on the dashboard's port.
// The iframe's first request carries the token as ?token=: guildd answers it with a
// redirect to the same URL without the token and a cookie scoped to /tb, which
// authorizes TensorBoard's own requests after it. Without ?runs= the page shows the
// runs ticked on the Runs page, or the TensorBoard already running, or every run.
//
// When TensorBoard is not installed where guildd runs, StartTensorBoard fails with
// FailedPrecondition and a message that names the install command: shown as it is.

import { LitElement, html, nothing } from "lit";
import { Code, ConnectError } from "@connectrpc/connect";
import { keyed } from "lit/directives/keyed.js";
import { conn, daemon, errorText, isConnectionError, tensorboard as tbApi, token } from "../api";
import type { TensorBoard } from "../gen/guild/v1/guild_pb";
import { selection } from "../store";
import { listedRuns } from "../router";

type State = "starting" | "ready" | "stopped" | "not-installed" | "error";

export class TensorBoardPage extends LitElement {
  static override properties = {
    params: {},
  };

  params = "";

  private runs: string[] = [];
  /** Where the runs came from, for the heading. */
  private source: "address" | "selection" | "running" | "all" = "all";
  private state: State = "starting";
  private tb: TensorBoard | null = null;
  private error = "";
  private started = 0;
  private abort: AbortController | null = null;
  /** Bumped to load the iframe afresh (after a restart). */
  private frameKey = 0;

  protected override createRenderRoot() {
    return this;
  }

  override connectedCallback() {
    super.connectedCallback();
    const p = new URLSearchParams(this.params);
    const listed = listedRuns(p);
    if (listed.length) {
      this.runs = listed;
      this.source = "address";
    } else if (selection.ids.size) {
      this.runs = [...selection.ids];
      this.source = "selection";
    } else {
      this.runs = [];
      this.source = "all";
    }
    this.abort = new AbortController();
    void this.start(this.abort.signal, this.source === "all");
  }

  override disconnectedCallback() {
    super.disconnectedCallback();
    this.abort?.abort();
  }

  private setState(s: State) {
    this.state = s;
    this.dataset.state = s;
    this.requestUpdate();
  }

  /** StartTensorBoard for the page's runs (or, with `preferRunning`, the one already
   * running, whatever it shows), retried while guildd is unreachable. */
  private async start(signal: AbortSignal, preferRunning = false) {
    this.setState("starting");
    this.error = "";
    this.started = performance.now();
    for (;;) {
      await conn.up();
      if (signal.aborted) return;
      try {
        if (preferRunning) {
          const cur = await tbApi.getTensorBoard({}, { signal });
          if (cur.running) {
            this.source = "running";
            this.runs = cur.runs.map((r) => r.id);
            this.show(cur);
            return;
          }
        }
        // TensorBoard may take a while to start (it imports TensorFlow when installed).
        const tb = await tbApi.startTensorBoard({ runs: this.runs }, { signal, timeoutMs: 180_000 });
        this.show(tb);
        return;
      } catch (err) {
        if (signal.aborted) return;
        const ce = ConnectError.from(err);
        if (ce.code === Code.Unauthenticated) {
          conn.report(ce);
          this.error = errorText(ce);
          this.setState("error");
          return;
        }
        // Unavailable is also how guildd says that TensorBoard failed to start (and why):
        // only when guildd itself does not answer is it a connection to wait for.
        if (isConnectionError(ce) && !(await daemonAnswers())) {
          if (signal.aborted) return;
          conn.report(ce);
          continue;
        }
        if (signal.aborted) return;
        this.error = ce.code === Code.FailedPrecondition ? ce.rawMessage : errorText(ce);
        this.setState(ce.code === Code.FailedPrecondition ? "not-installed" : "error");
        return;
      }
    }
  }

  private show(tb: TensorBoard) {
    this.tb = tb;
    this.frameKey++;
    this.dataset.startMs = String(Math.round(performance.now() - this.started));
    this.setState(tb.running ? "ready" : "stopped");
  }

  private async stop() {
    try {
      const tb = await tbApi.stopTensorBoard({});
      this.tb = tb;
      this.setState("stopped");
    } catch (err) {
      conn.report(err);
      this.error = errorText(err);
      this.setState("error");
    }
  }

  private restart() {
    this.abort?.abort();
    this.abort = new AbortController();
    void this.start(this.abort.signal);
  }

  private frameSrc(): string {
    const path = this.tb?.path || "/tb/";
    const t = token();
    return t ? `${path}?token=${encodeURIComponent(t)}` : path;
  }

  private heading() {
    const shown = this.tb?.runs.length ? this.tb.runs.map((r) => r.name) : this.runs;
    const what =
      this.source === "all" && !this.tb?.runs.length
        ? "every run"
        : shown.length === 1
          ? html`run <a href="#/runs/${encodeURIComponent(this.tb?.runs[0]?.id ?? shown[0])}">${shown[0]}</a>`
          : html`<span title=${shown.join("\n")}>${shown.length} runs</span>`;
    const from =
      this.source === "selection" ? " (ticked on the Runs page)" : this.source === "running" ? " (the TensorBoard already running)" : "";
    return html`<span id="tb-runs">TensorBoard of ${what}${from}</span>`;
  }

  override render() {
    const s = this.state;
    return html`
      <div class="run-head">
        <h1>${this.heading()}</h1>
        <span class="spacer"></span>
        ${s === "ready"
          ? html`<span class="muted" id="tb-info">pid ${this.tb!.pid}${this.tb!.reused ? " · reused" : ""} · stops after ${Math.round(this.tb!.idleSeconds / 60)} min unused</span>
              <a href=${this.tb!.path || "/tb/"} target="_blank" rel="noopener" id="tb-open">Open in a new tab</a>
              <button id="tb-stop" @click=${this.stop}>Stop TensorBoard</button>`
          : nothing}
        ${s === "stopped" || s === "error" || s === "not-installed"
          ? html`<button id="tb-start" @click=${this.restart}>${s === "stopped" ? "Start TensorBoard" : "Try again"}</button>`
          : nothing}
      </div>
      ${s === "starting" ? html`<div class="empty" id="tb-starting">Starting TensorBoard…</div>` : nothing}
      ${s === "not-installed"
        ? html`<div class="banner error tb-error" id="tb-error" role="alert">
            <strong>TensorBoard is not available.</strong> ${codeSpans(this.error)}
            <div class="muted">Install it for the Python that guildd runs, then press “Try again”.</div>
          </div>`
        : nothing}
      ${s === "error" ? html`<div class="banner error tb-error" id="tb-error" role="alert">${codeSpans(this.error)}</div>` : nothing}
      ${s === "stopped" ? html`<div class="empty" id="tb-stopped">TensorBoard is stopped.</div>` : nothing}
      ${s === "ready"
        ? keyed(this.frameKey, html`<iframe id="tb-frame" class="tb-frame" title="TensorBoard" src=${this.frameSrc()}></iframe>`)
        : nothing}
    `;
  }
}

async function daemonAnswers(): Promise<boolean> {
  try {
    await daemon.getStatus({}, { timeoutMs: 3000 });
    return true;
  } catch {
    return false;
  }
}

/** Text with `backquoted` parts as <code>, as guildd writes commands in its messages. */
function codeSpans(text: string) {
  return text.split(/`([^`]*)`/).map((part, i) => (i % 2 ? html`<code>${part}</code>` : part));
}

customElements.define("tensorboard-page", TensorBoardPage);
