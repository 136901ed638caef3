// A run's serves (`guild serve RUN`): address, state, worker pid, requests, errors and
// restarts, from ServeService.ListServes. There is no watch RPC for serves, so the list
// is polled every few seconds while the page is open and visible (a poll is one small
// unary call; the daemon answers it from memory). Nothing is shown while the run has no
// serve.

import { LitElement, html, nothing } from "lit";
import { Code, ConnectError } from "@connectrpc/connect";
import { conn, errorText, isConnectionError, serves as servesApi } from "../api";
import { ServeState, type Serve } from "../gen/guild/v1/guild_pb";
import { fmtDuration, fmtNumber, fmtTime } from "../format";

/** How often ListServes is asked while the page is visible. */
export const SERVE_POLL_MS = 3000;

export const SERVE_STATE_NAMES: Record<number, string> = {
  [ServeState.UNSPECIFIED]: "unknown",
  [ServeState.STARTING]: "starting",
  [ServeState.READY]: "ready",
  [ServeState.RESTARTING]: "restarting",
  [ServeState.NO_MODEL]: "no model",
  [ServeState.STOPPED]: "stopped",
};

export class RunServes extends LitElement {
  static override properties = {
    runId: {},
  };

  runId = "";

  private list: Serve[] = [];
  private error = "";
  private timer = 0;
  private abort: AbortController | null = null;
  private polls = 0;

  protected override createRenderRoot() {
    return this;
  }

  override connectedCallback() {
    super.connectedCallback();
    this.abort = new AbortController();
    document.addEventListener("visibilitychange", this.onVisibility);
    void this.poll();
  }

  override disconnectedCallback() {
    super.disconnectedCallback();
    this.abort?.abort();
    this.abort = null;
    clearTimeout(this.timer);
    document.removeEventListener("visibilitychange", this.onVisibility);
  }

  private onVisibility = () => {
    if (document.visibilityState === "visible" && this.abort) {
      clearTimeout(this.timer);
      void this.poll();
    }
  };

  private async poll() {
    const abort = this.abort;
    if (!abort) return;
    clearTimeout(this.timer);
    this.timer = 0;
    await conn.up();
    if (abort.signal.aborted) return;
    try {
      const res = await servesApi.listServes({ run: this.runId }, { signal: abort.signal, timeoutMs: 10_000 });
      this.list = res.serves;
      this.error = "";
    } catch (err) {
      if (abort.signal.aborted) return;
      const ce = ConnectError.from(err);
      if (ce.code === Code.Unauthenticated || isConnectionError(ce)) conn.report(ce);
      else this.error = errorText(ce);
    }
    this.polls++;
    this.dataset.polls = String(this.polls);
    this.dataset.serves = String(this.list.length);
    this.requestUpdate();
    // Hidden tabs do not poll; becoming visible polls at once.
    if (document.visibilityState === "visible") {
      this.timer = window.setTimeout(() => void this.poll(), SERVE_POLL_MS);
    }
  }

  override render() {
    if (!this.list.length && !this.error) return nothing;
    return html`
      <h2>Serving</h2>
      ${this.error ? html`<div class="error">${this.error}</div>` : nothing}
      ${this.list.length
        ? html`<table class="grid" id="run-serves">
            <thead><tr><th>URL</th><th>state</th><th>worker</th><th>requests</th><th>errors</th><th>restarts</th><th>since</th><th>limits</th></tr></thead>
            <tbody>${this.list.map((s) => this.row(s))}</tbody>
          </table>
          <div class="muted small-note">POST <code>/run</code> with a JSON list of instances; <code>/stats</code> has latency and throughput. Stop with <code>guild serve --stop ${this.runId}</code>. Refreshed every ${SERVE_POLL_MS / 1000} s.</div>`
        : nothing}
    `;
  }

  private row(s: Serve) {
    const state = SERVE_STATE_NAMES[s.state] ?? "unknown";
    const started = Number(s.startedMs);
    return html`<tr class="serve-row" data-url=${s.url} data-state=${state} data-address=${s.address}>
      <td><a href=${s.url} target="_blank" rel="noopener" class="serve-url">${s.url}</a>
        <a href=${`${s.url}/stats`} target="_blank" rel="noopener" class="muted small">stats</a></td>
      <td><span class="serve-state serve-${state.replace(" ", "-")}">${state}</span>${s.reason ? html`<div class="muted serve-reason">${s.reason}</div>` : nothing}</td>
      <td class="num" title=${s.argv.join(" ")}>${s.pid ? `pid ${s.pid}` : "none"}</td>
      <td class="num serve-requests">${fmtNumber(Number(s.requests))}</td>
      <td class="num">${fmtNumber(Number(s.errors))}</td>
      <td class="num">${s.restarts}</td>
      <td title=${started ? fmtTime(started) : ""}>${started ? `${fmtDuration(Date.now() - started)} ago` : "—"}</td>
      <td class="muted">${s.timeoutMs / 1000} s timeout, queue ${s.maxQueue}</td>
    </tr>`;
  }
}

customElements.define("run-serves", RunServes);
