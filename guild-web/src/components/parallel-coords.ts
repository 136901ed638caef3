// Parallel coordinates on a canvas, by hand: one vertical axis per flag (numeric when
// every value reads as a number, else categorical) and the metric last; one polyline
// per run, coloured by the metric. Values that are not finite sit in a band under the
// axis, labelled, instead of bending the scale. Hover names the run; click opens it.

import { LitElement, html } from "lit";
import { navigate } from "../router";

export interface PcAxis {
  name: string;
  /** One value per line, as text ("" when the run lacks it). */
  values: string[];
  metric?: boolean;
}

export interface PcLine {
  id: string;
  label: string;
}

interface Scale {
  /** 0 (bottom) .. 1 (top), or -1 for "not finite / missing" (drawn under the axis). */
  pos: (v: string) => number | null;
  ticks: { pos: number; label: string }[];
  numeric: boolean;
  min: number;
  max: number;
}

function makeScale(values: string[]): Scale {
  const present = values.filter((v) => v !== "");
  const nums = present.map((v) => (v === "NaN" ? NaN : v === "inf" ? Infinity : v === "-inf" ? -Infinity : Number(v)));
  const numeric = present.length > 0 && nums.every((n, i) => !Number.isNaN(n) || present[i] === "NaN");
  if (numeric) {
    const finite = nums.filter(Number.isFinite);
    let min = Math.min(...finite), max = Math.max(...finite);
    if (!finite.length) {
      min = 0;
      max = 1;
    }
    // A log scale when every value is positive and they span more than two decades.
    const log = min > 0 && max / min > 100;
    const f = (x: number) => (log ? Math.log10(x) : x);
    const span = f(max) - f(min) || 1;
    const pos = (v: string) => {
      if (v === "") return null;
      const x = v === "NaN" ? NaN : v === "inf" ? Infinity : v === "-inf" ? -Infinity : Number(v);
      if (!Number.isFinite(x)) return -1;
      return max === min ? 0.5 : (f(x) - f(min)) / span;
    };
    const ticks = [];
    if (finite.length) {
      const n = max === min ? 1 : 5;
      for (let i = 0; i < n; i++) {
        const t = n === 1 ? 0.5 : i / (n - 1);
        const val = log ? Math.pow(10, f(min) + t * span) : min + t * (max - min);
        ticks.push({ pos: t, label: Number(val.toPrecision(3)).toString() });
      }
    }
    return { pos, ticks, numeric, min, max };
  }
  const cats = [...new Set(present)].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  const idx = new Map(cats.map((c, i) => [c, i]));
  const pos = (v: string) => {
    if (v === "") return null;
    return cats.length === 1 ? 0.5 : idx.get(v)! / (cats.length - 1);
  };
  return { pos, ticks: cats.slice(0, 30).map((c) => ({ pos: pos(c)!, label: c })), numeric: false, min: 0, max: 0 };
}

/** Blue (low) to yellow (high), a viridis-like ramp. */
function ramp(t: number): string {
  const stops = [
    [68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37],
  ];
  const x = Math.max(0, Math.min(1, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const c = stops[i].map((a, k) => Math.round(a + (stops[i + 1][k] - a) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

export class ParallelCoords extends LitElement {
  static override properties = {
    axes: { attribute: false },
    lines: { attribute: false },
  };

  axes: PcAxis[] = [];
  lines: PcLine[] = [];
  private canvas: HTMLCanvasElement | null = null;
  private hover = -1;
  private paths: Array<Array<[number, number] | null>> = [];
  private ro: ResizeObserver | null = null;
  private tip = "";

  protected override createRenderRoot() {
    return this;
  }

  override disconnectedCallback() {
    super.disconnectedCallback();
    this.ro?.disconnect();
  }

  protected override firstUpdated() {
    this.canvas = this.querySelector("canvas");
    this.ro = new ResizeObserver(() => this.draw());
    this.ro.observe(this);
  }

  protected override updated() {
    this.draw();
  }

  override render() {
    return html`<div class="pc-wrap">
      <canvas height="320" @mousemove=${this.onMove} @mouseleave=${() => this.setHover(-1)} @click=${this.onClick}></canvas>
      <div class="pc-tip" ?hidden=${!this.tip}>${this.tip}</div>
    </div>`;
  }

  private setHover(i: number) {
    if (i === this.hover) return;
    this.hover = i;
    this.tip = i >= 0 ? this.lines[i].label : "";
    this.requestUpdate();
  }

  private onMove = (e: MouseEvent) => {
    const r = this.canvas!.getBoundingClientRect();
    const x = e.clientX - r.left, y = e.clientY - r.top;
    let best = -1, bestD = 8;
    this.paths.forEach((p, i) => {
      for (let k = 1; k < p.length; k++) {
        const a = p[k - 1], b = p[k];
        if (!a || !b) continue;
        const d = segDist(x, y, a, b);
        if (d < bestD) {
          bestD = d;
          best = i;
        }
      }
    });
    this.setHover(best);
  };

  private onClick = () => {
    if (this.hover >= 0) navigate(`#/runs/${encodeURIComponent(this.lines[this.hover].id)}`);
  };

  private draw() {
    const c = this.canvas;
    if (!c) return;
    const w = Math.max(200, this.clientWidth);
    const h = 320;
    const dpr = window.devicePixelRatio || 1;
    if (c.width !== w * dpr || c.height !== h * dpr) {
      c.width = w * dpr;
      c.height = h * dpr;
      c.style.width = `${w}px`;
      c.style.height = `${h}px`;
    }
    const ctx = c.getContext("2d")!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.font = "12px system-ui, sans-serif";
    const axes = this.axes;
    this.dataset.axes = String(axes.length);
    this.dataset.lines = String(this.lines.length);
    if (axes.length < 2 || this.lines.length === 0) {
      ctx.fillStyle = "#777";
      ctx.fillText(axes.length < 2 ? "Needs a metric and at least one flag that differs between the runs." : "No runs.", 16, 40);
      this.paths = [];
      return;
    }
    const top = 36, bottom = h - 40, left = 60, right = w - 60;
    const xs = axes.map((_, i) => left + (i * (right - left)) / (axes.length - 1));
    const scales = axes.map((a) => makeScale(a.values));
    const yOf = (p: number) => (p < 0 ? bottom + 22 : bottom - p * (bottom - top));
    const metricIdx = axes.findIndex((a) => a.metric);
    const ms = metricIdx >= 0 ? scales[metricIdx] : null;
    this.paths = this.lines.map((_, li) =>
      axes.map((a, ai) => {
        const p = scales[ai].pos(a.values[li]);
        return p === null ? null : ([xs[ai], yOf(p)] as [number, number]);
      }),
    );
    const colorOf = (li: number) => {
      if (!ms || !ms.numeric) return "rgba(31,119,180,0.6)";
      const p = ms.pos(axes[metricIdx].values[li]);
      return p === null || p < 0 ? "rgba(150,150,150,0.6)" : ramp(p);
    };
    const stroke = (li: number, width: number, color: string) => {
      const p = this.paths[li];
      ctx.beginPath();
      ctx.strokeStyle = color;
      ctx.lineWidth = width;
      let pen = false;
      for (const pt of p) {
        if (!pt) {
          pen = false;
          continue;
        }
        if (pen) ctx.lineTo(pt[0], pt[1]);
        else ctx.moveTo(pt[0], pt[1]);
        pen = true;
      }
      ctx.stroke();
    };
    ctx.globalAlpha = this.hover >= 0 ? 0.25 : 0.85;
    for (let li = 0; li < this.lines.length; li++) stroke(li, 1.2, colorOf(li));
    ctx.globalAlpha = 1;
    if (this.hover >= 0) stroke(this.hover, 3, "#d62728");
    // Axes, names, ticks.
    axes.forEach((a, ai) => {
      const x = xs[ai];
      ctx.strokeStyle = "#333";
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, bottom);
      ctx.stroke();
      ctx.fillStyle = a.metric ? "#d62728" : "#222";
      ctx.textAlign = "center";
      ctx.font = "bold 12px system-ui, sans-serif";
      ctx.fillText(a.name.length > 24 ? a.name.slice(0, 23) + "…" : a.name, x, top - 14);
      ctx.font = "11px system-ui, sans-serif";
      ctx.fillStyle = "#555";
      ctx.textAlign = ai === axes.length - 1 ? "right" : "left";
      for (const t of scales[ai].ticks) {
        const y = yOf(t.pos);
        ctx.fillRect(x - 3, y, 6, 1);
        ctx.fillText(t.label, ai === axes.length - 1 ? x - 6 : x + 6, y + 4);
      }
      if (a.values.some((v) => scales[ai].pos(v) === -1)) {
        ctx.fillText("NaN/inf", ai === axes.length - 1 ? x - 6 : x + 6, bottom + 26);
      }
    });
  }
}

function segDist(x: number, y: number, a: [number, number], b: [number, number]): number {
  const dx = b[0] - a[0], dy = b[1] - a[1];
  const len = dx * dx + dy * dy;
  const t = len ? Math.max(0, Math.min(1, ((x - a[0]) * dx + (y - a[1]) * dy) / len)) : 0;
  const px = a[0] + t * dx, py = a[1] + t * dy;
  return Math.hypot(x - px, y - py);
}

customElements.define("parallel-coords", ParallelCoords);
