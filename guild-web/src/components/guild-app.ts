// The page's frame: header, the connection banner, and the hash router
// (#/runs, #/runs/<id>, #/compare?runs=a,b&key=loss, #/tensorboard?runs=a,b), so the
// daemon only serves "/" (and TensorBoard under /tb/).

import { LitElement, html, nothing } from "lit";
import { keyed } from "lit/directives/keyed.js";
import { conn } from "../api";
import { parseRoute, type Route } from "../router";
import "./runs-page";
import "./run-page";
import "./sweep-page";
import "./compare-page";
import "./tensorboard-page";

export class GuildApp extends LitElement {
  static override properties = {
    route: { state: true },
    connState: { state: true },
  };

  route: Route = parseRoute(window.location.hash);
  connState = conn.state;

  protected override createRenderRoot() {
    return this;
  }

  override connectedCallback() {
    super.connectedCallback();
    window.addEventListener("hashchange", () => {
      this.route = parseRoute(window.location.hash);
    });
    conn.on(() => {
      this.connState = conn.state;
      this.requestUpdate();
    });
    // The runs list (WatchRuns) starts with the pages that show runs, not the compare
    // page, which reads what it needs with CompareRuns.
    void conn.start();
  }

  private banner() {
    const s = this.connState;
    if (s === "unauthenticated") {
      return html`<div class="banner error" id="auth-banner" role="alert">
        <strong>Not authorized.</strong> This page needs the daemon's token: run <code>guild view</code>
        and open the URL it prints (its <code>?code=…</code> opens the page once, within 5 minutes).
        ${conn.lastError && conn.lastError !== "no token" ? html`<span class="muted">(${conn.lastError})</span>` : nothing}
      </div>`;
    }
    if (s === "reconnecting") {
      return html`<div class="banner warn" id="reconnect-banner" role="status">
        Reconnecting to guildd…
        ${conn.attempt ? html`<span class="muted">attempt ${conn.attempt}${conn.lastError ? `: ${conn.lastError}` : ""}</span>` : nothing}
      </div>`;
    }
    return nothing;
  }

  override render() {
    const r = this.route;
    const st = conn.status;
    return html`
      <header class="top">
        <a class="brand" href="#/runs">Guild</a>
        <nav>
          <a href="#/runs" class=${r.page === "runs" || r.page === "run" || r.page === "sweep" ? "active" : ""}>Runs</a>
          <a href="#/compare" class=${r.page === "compare" ? "active" : ""}>Compare</a>
          <a href="#/tensorboard" id="nav-tensorboard" class=${r.page === "tensorboard" ? "active" : ""}>TensorBoard</a>
        </nav>
        <span class="spacer"></span>
        <span class="conn conn-${this.connState}" title=${st ? `${st.dataDir}` : ""}>
          ${this.connState === "up" ? html`guildd ${st?.version ?? ""}` : this.connState}
        </span>
      </header>
      ${this.banner()}
      <main>
        ${r.page === "runs"
          ? html`<runs-page></runs-page>`
          : r.page === "run"
            ? keyed(r.id, html`<run-page .runId=${r.id!}></run-page>`)
            : r.page === "sweep"
            ? keyed(r.id, html`<sweep-page .sweepId=${r.id!}></sweep-page>`)
            : r.page === "tensorboard"
              ? keyed(r.params.toString(), html`<tensorboard-page .params=${r.params.toString()}></tensorboard-page>`)
              : keyed(r.params.toString(), html`<compare-page .params=${r.params.toString()}></compare-page>`)}
      </main>
    `;
  }
}

customElements.define("guild-app", GuildApp);
