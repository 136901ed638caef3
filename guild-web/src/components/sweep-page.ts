// A sweep: its settings, the objective of each trial by trial number with the best so
// far, the parallel coordinates of its swept flags coloured by the objective, and the
// trials table. Read with GetSweep, and read again (at most once a second) while the
// store says the sweep or one of its trials changed.

import { LitElement, html, nothing, svg } from "lit";
import { sweeps } from "../api";
import { fmtNumber, isLive, statusName } from "../format";
import type { Sweep, Trial } from "../gen/guild/v1/guild_pb";
import { bestSoFar } from "../queue";
import { store } from "../store";
import type { PcAxis, PcLine } from "./parallel-coords";
import "./parallel-coords";

const W = 640;
const H = 240;
const PAD = { left: 56, right: 16, top: 12, bottom: 32 };

/** The flags a sweep varies: their values are sweeps (`[..]`, `uniform[..]`, ...). */
export function sweptFlags(sweep: Sweep): string[] {
  return sweep.space.filter((f) => f.value.includes("[")).map((f) => f.name);
}

function flagOf(trial: Trial, name: string): string {
  return trial.flags.find((f) => f.name === name)?.value ?? "";
}

/** At most about 10 whole trial numbers from 1 to `max`. */
function xTicks(max: number): number[] {
  const step = Math.max(1, Math.ceil(max / 10));
  const out = [];
  for (let n = 1; n <= max; n += step) out.push(n);
  return out;
}

export class SweepPage extends LitElement {
  static override properties = {
    sweepId: { type: String },
    sweep: { state: true },
    error: { state: true },
  };

  sweepId = "";
  sweep: Sweep | null = null;
  error = "";
  private unsub: (() => void) | null = null;
  private timer = 0;
  private fetching = false;
  private again = false;

  protected override createRenderRoot() {
    return this;
  }

  override connectedCallback() {
    super.connectedCallback();
    store.start();
    void this.load();
    // A change to any run may be one of the trials: read again, at most once a second.
    this.unsub = store.on(() => {
      if (this.timer || !this.sweep || !isLive(this.sweep.run?.status ?? 0)) return;
      this.timer = window.setTimeout(() => {
        this.timer = 0;
        void this.load();
      }, 1000);
    });
  }

  override disconnectedCallback() {
    super.disconnectedCallback();
    this.unsub?.();
    clearTimeout(this.timer);
  }

  private async load() {
    if (this.fetching) {
      this.again = true;
      return;
    }
    this.fetching = true;
    try {
      this.sweep = await sweeps.getSweep({ sweep: this.sweepId });
      this.error = "";
    } catch (err) {
      this.error = String(err);
    } finally {
      this.fetching = false;
    }
    if (this.again) {
      this.again = false;
      void this.load();
    }
  }

  protected override updated() {
    const s = this.sweep;
    if (!s) return;
    this.dataset.trials = String(s.trials.length);
    this.dataset.status = statusName(s.run?.status ?? 0);
    this.dataset.best = String(s.bestTrial);
  }

  private chart(s: Sweep) {
    const points = s.trials
      .filter((t) => t.objective !== undefined && Number.isFinite(t.objective))
      .map((t) => ({ n: t.number, v: t.objective as number, done: statusName(t.run?.status ?? 0) === "completed" }));
    if (points.length === 0) return html`<div class="muted" id="sweep-chart-empty">No trial has ${s.objective} yet.</div>`;
    const best = bestSoFar(points.filter((p) => p.done), s.maximize);
    const maxN = Math.max(s.maxTrials, ...s.trials.map((t) => t.number), 2);
    const vs = points.map((p) => p.v);
    let lo = Math.min(...vs), hi = Math.max(...vs);
    if (lo === hi) {
      lo -= 1;
      hi += 1;
    }
    const x = (n: number) => PAD.left + ((n - 1) / (maxN - 1)) * (W - PAD.left - PAD.right);
    const y = (v: number) => PAD.top + (1 - (v - lo) / (hi - lo)) * (H - PAD.top - PAD.bottom);
    const steps = best.map((p, i) => (i === 0 ? `M${x(p.n)},${y(p.v)}` : `H${x(p.n)}V${y(p.v)}`)).join("");
    const ticks = [0, 0.25, 0.5, 0.75, 1].map((t) => lo + t * (hi - lo));
    return html`<svg id="sweep-chart" viewBox="0 0 ${W} ${H}" width="100%" style="max-width:${W}px" role="img"
      aria-label="${s.objective} by trial, with the best so far">
      ${ticks.map((v) => svg`<line x1=${PAD.left} x2=${W - PAD.right} y1=${y(v)} y2=${y(v)} class="grid"></line>
        <text x=${PAD.left - 6} y=${y(v) + 4} text-anchor="end" class="tick">${Number(v.toPrecision(3))}</text>`)}
      ${xTicks(maxN).map((n) => svg`<text x=${x(n)} y=${H - PAD.bottom + 14} text-anchor="middle" class="tick">${n}</text>`)}
      <text x=${(W + PAD.left) / 2} y=${H - 2} text-anchor="middle" class="tick">trial</text>
      ${best.length ? svg`<path d=${steps} class="best-line" fill="none"></path>` : nothing}
      ${points.map((p) => svg`<circle cx=${x(p.n)} cy=${y(p.v)} r="4" class=${p.done ? "trial-dot" : "trial-dot failed"}><title>trial ${p.n}: ${fmtNumber(p.v)}</title></circle>`)}
    </svg>`;
  }

  private coords(s: Sweep) {
    const names = sweptFlags(s);
    const trials = s.trials.filter((t) => t.run);
    const axes: PcAxis[] = names.map((name) => ({ name, values: trials.map((t) => flagOf(t, name)) }));
    axes.push({
      name: s.objective,
      metric: true,
      values: trials.map((t) => (t.objective === undefined ? "" : fmtNumber(t.objective))),
    });
    const lines: PcLine[] = trials.map((t) => ({ id: t.run!.id, label: `trial ${t.number}` }));
    return html`<parallel-coords id="sweep-coords" .axes=${axes} .lines=${lines}></parallel-coords>`;
  }

  override render() {
    if (this.error) return html`<div class="error" id="sweep-error">${this.error}</div>`;
    const s = this.sweep;
    if (!s) return html`<div class="muted">Loading sweep…</div>`;
    const run = s.run!;
    const names = sweptFlags(s);
    const done = s.trials.filter((t) => !isLive(t.run?.status ?? 0)).length;
    return html`
      <section class="sweep-head">
        <h2>Sweep <span class="runid">${run.id}</span>
          <span class="status status-${statusName(run.status)}" id="sweep-status">${statusName(run.status)}</span></h2>
        <div class="muted" id="sweep-summary">
          ${s.optimizer} over ${names.join(", ")}; ${s.maximize ? "maximize" : "minimize"} <code>${s.objective}</code>;
          ${done} of ${s.trials.length} trials done (at most ${s.maxTrials}, ${s.parallel} at once); seed ${String(s.seed)}
          ${s.bestTrial ? html`; best: trial <strong id="sweep-best">${s.bestTrial}</strong>` : nothing}
          ${run.reason ? html`<div class="reason">${run.reason}</div>` : nothing}
        </div>
      </section>
      <section class="sweep-charts">
        <div><h3>${s.objective} by trial</h3>${this.chart(s)}</div>
        <div><h3>Flags against ${s.objective}</h3>${this.coords(s)}</div>
      </section>
      <table class="trials" id="sweep-trials">
        <thead><tr><th>trial</th><th>run</th><th>status</th><th>${s.objective}</th>${names.map((n) => html`<th>${n}</th>`)}</tr></thead>
        <tbody>
          ${s.trials.map(
            (t) => html`<tr class=${t.number === s.bestTrial ? "best" : ""} data-trial=${t.number}>
              <td>${t.number}${t.number === s.bestTrial ? " ★" : ""}</td>
              <td><a href="#/runs/${encodeURIComponent(t.run?.id ?? "")}" class="runid">${t.run?.id}</a></td>
              <td><span class="status status-${statusName(t.run?.status ?? 0)}">${statusName(t.run?.status ?? 0)}</span></td>
              <td class="num">${t.objective === undefined ? "" : fmtNumber(t.objective)}</td>
              ${names.map((n) => html`<td class="num">${flagOf(t, n)}</td>`)}
            </tr>`,
          )}
        </tbody>
      </table>
    `;
  }
}

customElements.define("sweep-page", SweepPage);
