// A run's media from its event files (MediaService): Images, Histograms, Distributions,
// Text, Audio and PR curves, one card per tag. Images, text, audio and PR curves show the
// item at one step, chosen with a slider (newest by default, and following a live run
// while the slider is at its end); histograms draw a tag's steps offset or overlaid, and
// distributions its percentile bands over steps. While the run is live, one WatchMedia
// stream says which tags gained items; their cards read them again (at most twice a
// second). Image and audio bytes come from `/media/` (mediaObjectUrl), text, histograms
// and PR curves from GetMedia; histogram cards read their tag once near the viewport.
//
// <compare-media> shows one tag across several runs side by side (the compare page),
// following live runs the same way.

import { create } from "@bufbuild/protobuf";
import { LitElement, html, nothing, type PropertyValues } from "lit";
import { conn, errorText, keepStreaming, media as mediaApi, mediaObjectUrl } from "../api";
import { MediaKind, MediaTagSchema, type MediaRef, type MediaTag } from "../gen/guild/v1/guild_pb";
import { drawDistribution, drawHistograms, drawPrCurve, drawSoon, type Hist } from "../histogram";
import { renderMarkdown } from "../markdown";

/** Histograms read per tag: spread over its steps, first and last kept. */
export const HISTOGRAMS_PER_TAG = 200;
/** Cards of a live run read their tag again at most this often. */
const REFRESH_MS = 500;
/** The compare page follows at most this many live runs' media at once. */
const FOLLOWED_AT_ONCE = 3;

const SECTIONS: { kind: MediaKind; title: string; id: string }[] = [
  { kind: MediaKind.IMAGE, title: "Images", id: "images" },
  { kind: MediaKind.HISTOGRAM, title: "Histograms", id: "histograms" },
  { kind: MediaKind.HISTOGRAM, title: "Distributions", id: "distributions" },
  { kind: MediaKind.TEXT, title: "Text", id: "text" },
  { kind: MediaKind.AUDIO, title: "Audio", id: "audio" },
  { kind: MediaKind.PR_CURVE, title: "PR curves", id: "pr-curves" },
];

const tagKey = (kind: MediaKind, tag: string) => `${kind}|${tag}`;

/** A tag's histograms (GetMedia), shared by its Histograms and Distributions cards. */
const histCache = new Map<string, Promise<Hist[]>>();

/** Histogram reads in flight at most: each is tens of KB and tens of ms, and sixteen
 * cards at once held all six of the browser's connections to guildd while the image
 * cards' fetches (a slider's next images) waited behind them (one 159 ms fetch seen). */
const HIST_READS_AT_ONCE = 2;
let histReads = 0;
const histWaiting: (() => void)[] = [];

async function limited<T>(read: () => Promise<T>): Promise<T> {
  if (histReads >= HIST_READS_AT_ONCE) await new Promise<void>((go) => histWaiting.push(go));
  histReads++;
  try {
    return await read();
  } finally {
    histReads--;
    histWaiting.shift()?.();
  }
}

function histograms(run: string, tag: string, version: number): Promise<Hist[]> {
  const key = `${run}|${tag}|${version}`;
  let p = histCache.get(key);
  if (!p) {
    p = limited(() => mediaApi.getMedia({ run, kind: MediaKind.HISTOGRAM, tag, maxItems: HISTOGRAMS_PER_TAG }))
      .then((res) =>
        res.items.map((it) => ({
          step: Number(it.ref?.step ?? 0n),
          left: it.histogram?.left ?? [],
          right: it.histogram?.right ?? [],
          counts: it.histogram?.counts ?? [],
        })),
      );
    p.catch(() => histCache.delete(key));
    histCache.set(key, p);
    while (histCache.size > 200) histCache.delete(histCache.keys().next().value as string);
  }
  return p;
}

/** `tags` with WatchMedia's new `items` counted in (a new tag added in order); `gained`
 * is told the key of each tag that gained an item. */
function addItems(tags: MediaTag[], items: MediaRef[], gained: (key: string) => void): MediaTag[] {
  for (const r of items) {
    let t = tags.find((x) => x.kind === r.kind && x.tag === r.tag);
    if (!t) {
      t = create(MediaTagSchema, { kind: r.kind, tag: r.tag, count: 0n, minStep: r.step, maxStep: r.step, lastTimeMs: r.timeMs });
      tags = [...tags, t].sort((a, b) => a.kind - b.kind || a.tag.localeCompare(b.tag));
    }
    t.count += 1n;
    if (r.step > t.maxStep) t.maxStep = r.step;
    if (r.step < t.minStep) t.minStep = r.step;
    gained(tagKey(r.kind, r.tag));
  }
  return tags;
}

/** How often each card's tag gained items: keys told with `gained` are counted up
 * together at most every REFRESH_MS, then the host renders (its cards read again). */
class Versions {
  private counts = new Map<string, number>();
  private pending = new Set<string>();
  private timer = 0;

  constructor(private host: { requestUpdate(): void }) {}

  of(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  gained(key: string) {
    this.pending.add(key);
    if (this.timer) return;
    this.timer = window.setTimeout(() => {
      this.timer = 0;
      for (const k of this.pending) this.counts.set(k, this.of(k) + 1);
      this.pending.clear();
      this.host.requestUpdate();
    }, REFRESH_MS);
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = 0;
  }
}

export class RunMedia extends LitElement {
  static override properties = {
    runId: {},
    live: { type: Boolean },
    histMode: { state: true },
  };

  runId = "";
  live = false;
  histMode: "offset" | "overlay" = "offset";

  private tags: MediaTag[] = [];
  private versions = new Versions(this);
  private cursor = 0n;
  /** The run's whole id (ListMedia resolves the page's selector), for /media/ URLs. */
  private resolved = "";
  private abort: AbortController | null = null;
  private watching = false;
  private error = "";

  protected override createRenderRoot() {
    return this;
  }

  override connectedCallback() {
    super.connectedCallback();
    this.abort = new AbortController();
    void this.load(this.abort.signal);
  }

  override disconnectedCallback() {
    super.disconnectedCallback();
    this.abort?.abort();
    this.versions.stop();
  }

  protected override updated(changed: PropertyValues) {
    if (changed.has("live") && this.live && this.resolved) this.watch();
  }

  private async load(signal: AbortSignal) {
    for (;;) {
      await conn.up();
      if (signal.aborted) return;
      try {
        const res = await mediaApi.listMedia({ run: this.runId }, { signal });
        this.tags = res.tags;
        this.cursor = res.cursor;
        this.resolved = res.runId;
        this.dataset.tags = String(this.tags.length);
        this.dataset.loaded = "true";
        this.requestUpdate();
        if (this.live) this.watch();
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

  private watch() {
    if (this.watching || !this.resolved) return;
    this.watching = true;
    const id = this.resolved;
    void keepStreaming({
      signal: this.abort!.signal,
      open: (signal) => mediaApi.watchMedia({ run: id, afterCursor: this.cursor }, { signal }),
      onMessage: (u) => {
        this.cursor = u.cursor;
        this.tags = addItems(this.tags, u.items, (key) => this.versions.gained(key));
        this.dataset.cursor = String(this.cursor);
        this.dataset.tags = String(this.tags.length);
      },
      ended: () => true,
      onError: (err) => {
        this.error = errorText(err);
        this.requestUpdate();
      },
    }).finally(() => {
      this.watching = false;
    });
  }

  private section(s: (typeof SECTIONS)[number]) {
    const tags = this.tags.filter((t) => t.kind === s.kind);
    if (!tags.length) return nothing;
    const version = (t: MediaTag) => this.versions.of(tagKey(t.kind, t.tag));
    const cards = tags.map((t) => {
      if (s.id === "histograms" || s.id === "distributions") {
        return html`<media-histogram class="media-card" .run=${this.resolved} .tag=${t.tag} .version=${version(t)}
          .mode=${s.id === "distributions" ? "distribution" : this.histMode} data-tag=${t.tag}></media-histogram>`;
      }
      return html`<media-card class="media-card" .run=${this.resolved} .kind=${t.kind} .tag=${t.tag} .version=${version(t)}
        .last=${t.last} data-tag=${t.tag}></media-card>`;
    });
    return html`<details class="section media-section" open data-section=${s.id}>
      <summary>${s.title} <span class="muted">(${tags.length})</span>
        ${s.id === "histograms"
          ? html`<select class="hist-mode" @click=${(e: Event) => e.stopPropagation()}
              @change=${(e: Event) => (this.histMode = (e.target as HTMLSelectElement).value as "offset" | "overlay")}>
              <option value="offset" ?selected=${this.histMode === "offset"}>offset</option>
              <option value="overlay" ?selected=${this.histMode === "overlay"}>overlay</option>
            </select>`
          : nothing}
      </summary>
      <div class="media-grid">${cards}</div>
    </details>`;
  }

  override render() {
    if (this.error) return html`<div class="error" id="media-error">${this.error}</div>`;
    if (!this.tags.length) return nothing;
    return html`<h2>Media</h2>${SECTIONS.map((s) => this.section(s))}`;
  }
}

/** One tag of images, text, audio or PR curves: the items at one step. With `step` set
 * from outside (the compare page), the newest step at or before it, and no slider. */
export class MediaCard extends LitElement {
  static override properties = {
    run: {},
    kind: { type: Number },
    tag: {},
    version: { type: Number },
    step: { type: Number },
    last: { attribute: false },
    pos: { state: true },
  };

  run = "";
  kind: MediaKind = MediaKind.IMAGE;
  tag = "";
  version = 0;
  /** Chosen outside (compare page); undefined: this card's own slider. */
  step: number | undefined = undefined;
  /** The tag's newest item (ListMedia), shown before its steps are read. */
  last: MediaRef | undefined = undefined;
  pos = -1;

  private steps: number[] = [];
  private byStep = new Map<number, MediaRef[]>();
  private urls = new Map<bigint, string>();
  private texts = new Map<bigint, string>();
  private prs = new Map<bigint, { precision: number[]; recall: number[] }>();
  private loaded = -1;
  private error = "";
  private shownMarkdown = new WeakMap<Element, string>();

  protected override createRenderRoot() {
    return this;
  }

  protected override willUpdate(changed: PropertyValues) {
    if (changed.has("last") && this.last && !this.steps.length && this.step === undefined) {
      // The newest item at once; the slider's steps follow with GetMediaSteps.
      const step = Number(this.last.step);
      this.byStep.set(step, [this.last]);
      this.steps = [step];
      this.pos = 0;
    }
    if ((changed.has("run") || changed.has("tag") || changed.has("version")) && this.run && this.tag && this.loaded !== this.version) {
      this.loaded = this.version;
      void this.loadRefs();
    }
  }

  private async loadRefs() {
    try {
      const res = await mediaApi.getMediaSteps({ run: this.run, kind: this.kind, tag: this.tag });
      const follow = this.pos < 0 || this.pos >= this.steps.length - 1;
      this.byStep.clear();
      for (const r of res.items) {
        const s = Number(r.step);
        const list = this.byStep.get(s);
        if (list) list.push(r);
        else this.byStep.set(s, [r]);
      }
      this.steps = [...this.byStep.keys()].sort((a, b) => a - b);
      if (follow) this.pos = this.steps.length - 1;
      this.dataset.count = String(res.items.length);
      this.error = "";
      this.requestUpdate();
    } catch (err) {
      conn.report(err);
      this.error = errorText(err);
      this.requestUpdate();
    }
  }

  /** The step shown: the slider's, or the newest at or before the one chosen outside. */
  private current(): number | undefined {
    if (this.step === undefined) return this.steps[this.pos];
    let best: number | undefined;
    for (const s of this.steps) if (s <= this.step) best = s;
    return best;
  }

  /** Fetches what the items at `step` need, then draws them. */
  private want(step: number | undefined, prefetch = true) {
    if (step === undefined) return;
    const items = this.byStep.get(step) ?? [];
    for (const r of items) void this.fetchItem(r);
    // The neighbours once the step's own images are here (they wait behind them).
    const here = items.every((r) => this.urls.has(r.seq));
    if (prefetch && here && this.step === undefined && this.kind === MediaKind.IMAGE) {
      const i = this.steps.indexOf(step);
      for (const j of [i + 1, i - 1, i + 2, i - 2]) {
        if (j >= 0 && j < this.steps.length) for (const r of this.byStep.get(this.steps[j]) ?? []) void this.fetchItem(r, true);
      }
    }
  }

  private async fetchItem(r: MediaRef, quiet = false) {
    try {
      if (this.kind === MediaKind.IMAGE || this.kind === MediaKind.AUDIO) {
        if (this.urls.has(r.seq)) return;
        const url = await mediaObjectUrl(this.run, this.kind === MediaKind.IMAGE ? "image" : "audio", r.seq);
        this.urls.set(r.seq, url);
      } else if (this.kind === MediaKind.TEXT) {
        if (this.texts.has(r.seq)) return;
        const res = await mediaApi.getMedia({ run: this.run, kind: this.kind, tag: this.tag, seq: r.seq });
        this.texts.set(r.seq, res.items[0]?.text ?? "");
      } else if (this.kind === MediaKind.PR_CURVE) {
        if (this.prs.has(r.seq)) return;
        const res = await mediaApi.getMedia({ run: this.run, kind: this.kind, tag: this.tag, seq: r.seq });
        const pr = res.items[0]?.prCurve;
        this.prs.set(r.seq, { precision: pr?.precision ?? [], recall: pr?.recall ?? [] });
      }
      if (!quiet) this.requestUpdate();
    } catch (err) {
      if (!quiet) {
        this.error = errorText(err);
        this.requestUpdate();
      }
    }
  }

  private onSlide(e: Event) {
    this.pos = Number((e.target as HTMLInputElement).value);
  }

  private onImageLoad(e: Event) {
    const img = e.target as HTMLImageElement;
    this.dataset.shownStep = img.dataset.step ?? "";
    this.dataset.shownAt = String(performance.now());
  }

  protected override updated() {
    // Markdown and PR curves are drawn into their containers once their data is here.
    for (const box of this.querySelectorAll<HTMLElement>(".md[data-seq]")) {
      const text = this.texts.get(BigInt(box.dataset.seq!));
      if (text !== undefined && this.shownMarkdown.get(box) !== text) {
        box.replaceChildren(renderMarkdown(text));
        this.shownMarkdown.set(box, text);
        this.dataset.shownStep = box.dataset.step ?? "";
      }
    }
    for (const canvas of this.querySelectorAll<HTMLCanvasElement>("canvas.pr[data-seq]")) {
      const pr = this.prs.get(BigInt(canvas.dataset.seq!));
      if (pr && canvas.dataset.queued !== canvas.dataset.seq) {
        canvas.dataset.queued = canvas.dataset.seq;
        drawSoon(canvas, (width) => {
          drawPrCurve(canvas, pr.precision, pr.recall, width);
          canvas.dataset.drawn = canvas.dataset.seq;
          this.dataset.shownStep = canvas.dataset.step ?? "";
        });
      }
    }
  }

  private item(r: MediaRef) {
    const step = String(r.step);
    switch (this.kind) {
      case MediaKind.IMAGE: {
        const url = this.urls.get(r.seq);
        return url
          ? html`<img class="media-image" src=${url} data-step=${step} data-seq=${String(r.seq)}
              width=${r.width || nothing} height=${r.height || nothing} alt=${`${this.tag} at step ${step}`}
              @load=${this.onImageLoad}>`
          : html`<div class="media-wait" style="width:${r.width || 64}px;height:${r.height || 64}px"></div>`;
      }
      case MediaKind.AUDIO: {
        const url = this.urls.get(r.seq);
        return url ? html`<audio controls preload="metadata" src=${url} data-step=${step}></audio>` : html`<div class="muted">loading…</div>`;
      }
      case MediaKind.TEXT:
        return html`<div class="md" data-seq=${String(r.seq)} data-step=${step}></div>`;
      case MediaKind.PR_CURVE:
        return html`<canvas class="pr" data-seq=${String(r.seq)} data-step=${step}></canvas>`;
      default:
        return nothing;
    }
  }

  override render() {
    const step = this.current();
    this.want(step);
    const items = step === undefined ? [] : (this.byStep.get(step) ?? []);
    this.dataset.step = step === undefined ? "" : String(step);
    return html`<div class="chart-head"><span class="chart-title">${this.tag}</span>
        <span class="spacer"></span>
        <span class="muted media-step">${step === undefined ? "no items" : `step ${step}`}${this.step === undefined && this.steps.length > 1
          ? ` (${this.pos + 1} of ${this.steps.length})`
          : ""}</span></div>
      ${this.error ? html`<div class="error">${this.error}</div>` : nothing}
      <div class="media-items">${items.map((r) => this.item(r))}</div>
      ${this.step === undefined && this.steps.length > 1
        ? html`<input class="media-slider" type="range" min="0" max=${this.steps.length - 1} .value=${String(this.pos)}
            @input=${this.onSlide} aria-label=${`${this.tag} step`}>`
        : nothing}`;
  }
}

/** One histogram tag: its steps offset or overlaid, or its distribution over steps. */
export class MediaHistogram extends LitElement {
  static override properties = {
    run: {},
    tag: {},
    version: { type: Number },
    mode: {},
  };

  run = "";
  tag = "";
  version = 0;
  mode: "offset" | "overlay" | "distribution" = "offset";
  private hists: Hist[] | null = null;
  private loadedVersion = -1;
  private error = "";
  /** Read only once near the viewport: twenty tags below the fold wait until scrolled to. */
  private near = false;
  private observer: IntersectionObserver | null = null;

  protected override createRenderRoot() {
    return this;
  }

  override connectedCallback() {
    super.connectedCallback();
    this.observer = new IntersectionObserver(
      (entries) => {
        if (entries.some((e) => e.isIntersecting) && !this.near) {
          this.near = true;
          this.requestUpdate();
        }
      },
      { rootMargin: "300px" },
    );
    this.observer.observe(this);
  }

  override disconnectedCallback() {
    super.disconnectedCallback();
    this.observer?.disconnect();
  }

  protected override willUpdate(changed: PropertyValues) {
    if (this.near && this.run && this.tag && this.loadedVersion !== this.version) {
      this.loadedVersion = this.version;
      const version = this.version;
      histograms(this.run, this.tag, version).then(
        (h) => {
          if (version !== this.version) return;
          this.hists = h;
          this.requestUpdate();
        },
        (err) => {
          conn.report(err);
          this.error = errorText(err);
          this.requestUpdate();
        },
      );
    }
  }

  protected override updated() {
    const canvas = this.querySelector("canvas");
    const hists = this.hists;
    if (!canvas || !hists) return;
    const mode = this.mode;
    drawSoon(canvas, (width) => {
      const drawn = mode === "distribution" ? drawDistribution(canvas, hists, width) : drawHistograms(canvas, hists, mode, width);
      this.dataset.drawn = String(drawn);
      this.dataset.drawnAt = String(performance.now());
    });
  }

  override render() {
    return html`<div class="chart-head"><span class="chart-title">${this.tag}</span>
        <span class="spacer"></span>
        <span class="muted">${this.hists ? `${this.hists.length} steps` : "loading…"}</span></div>
      ${this.error ? html`<div class="error">${this.error}</div>` : nothing}
      <canvas class="histogram" data-mode=${this.mode}></canvas>`;
  }
}

/** One media tag across runs, side by side, at one step (the compare page). Live runs
 * are followed: a WatchMedia stream per run (a finished run's ends at once; at most
 * FOLLOWED_AT_ONCE open), and the cards of a tag that gained items read it again (at
 * most every REFRESH_MS). The step follows the newest until the slider is moved off its
 * end. */
export class CompareMedia extends LitElement {
  static override properties = {
    runs: { attribute: false },
    chosen: { state: true },
    step: { state: true },
  };

  runs: string[] = [];
  chosen = "";
  step = Number.POSITIVE_INFINITY;
  private perRun = new Map<string, { id: string; tags: MediaTag[] }>();
  private loadedFor = "";
  private abort: AbortController | null = null;
  /** Keyed `run|kind|tag`. */
  private versions = new Versions(this);

  protected override createRenderRoot() {
    return this;
  }

  override disconnectedCallback() {
    super.disconnectedCallback();
    this.abort?.abort();
    this.loadedFor = "";
    this.versions.stop();
  }

  override connectedCallback() {
    super.connectedCallback();
    if (this.runs.length && !this.loadedFor) this.requestUpdate("runs");
  }

  protected override willUpdate(changed: PropertyValues) {
    const sig = this.runs.join(",");
    if (changed.has("runs") && sig !== this.loadedFor && this.isConnected) {
      this.loadedFor = sig;
      this.abort?.abort();
      this.abort = new AbortController();
      void this.load(this.runs.slice(0, 20), this.abort.signal);
    }
  }

  private async load(runs: string[], signal: AbortSignal) {
    const answers = await Promise.all(
      runs.map((r) => mediaApi.listMedia({ run: r }, { signal }).then((res) => [r, res] as const, () => null)),
    );
    if (signal.aborted) return;
    this.perRun.clear();
    for (const a of answers) if (a) this.perRun.set(a[0], { id: a[1].runId, tags: a[1].tags });
    const keys = this.allTags();
    if (!keys.some((k) => k.key === this.chosen)) this.chosen = keys[0]?.key ?? "";
    this.dataset.loaded = "true";
    this.requestUpdate();
    // A finished run's stream ends at once; at most FOLLOWED_AT_ONCE stay open (each
    // holds one of the browser's 6 connections to guildd), the next run's opening as one
    // ends.
    const waiting = answers.filter((a) => a !== null);
    const next = (): void => {
      const a = waiting.shift();
      if (a && !signal.aborted) void this.follow(a[0], a[1].runId, a[1].cursor, signal).finally(next);
    };
    for (let i = 0; i < FOLLOWED_AT_ONCE; i++) next();
  }

  private follow(selector: string, id: string, after: bigint, signal: AbortSignal): Promise<void> {
    let cursor = after;
    return keepStreaming({
      signal,
      open: (s) => mediaApi.watchMedia({ run: id, afterCursor: cursor }, { signal: s }),
      onMessage: (u) => {
        cursor = u.cursor;
        const entry = this.perRun.get(selector);
        if (!entry) return;
        entry.tags = addItems(entry.tags, u.items, (key) => this.versions.gained(`${id}|${key}`));
      },
      ended: () => true,
    });
  }

  private allTags(): { key: string; kind: MediaKind; tag: string }[] {
    const seen = new Map<string, { key: string; kind: MediaKind; tag: string }>();
    for (const { tags } of this.perRun.values()) {
      for (const t of tags) seen.set(tagKey(t.kind, t.tag), { key: tagKey(t.kind, t.tag), kind: t.kind, tag: t.tag });
    }
    return [...seen.values()].sort((a, b) => a.kind - b.kind || a.tag.localeCompare(b.tag));
  }

  private onStep(e: Event, hi: number) {
    const v = Number((e.target as HTMLInputElement).value);
    // At the end: follow the newest step as it grows.
    this.step = v >= hi ? Number.POSITIVE_INFINITY : v;
  }

  override render() {
    const keys = this.allTags();
    if (!keys.length) return nothing;
    const pick = keys.find((k) => k.key === this.chosen) ?? keys[0];
    const having = [...this.perRun.values()].filter((r) => r.tags.some((t) => t.kind === pick.kind && t.tag === pick.tag));
    let lo = Infinity;
    let hi = -Infinity;
    for (const r of having) {
      const t = r.tags.find((x) => x.kind === pick.kind && x.tag === pick.tag)!;
      lo = Math.min(lo, Number(t.minStep));
      hi = Math.max(hi, Number(t.maxStep));
    }
    const step = Math.min(this.step, hi);
    const kindName = SECTIONS.find((s) => s.kind === pick.kind)?.title ?? "";
    const version = (id: string) => this.versions.of(`${id}|${pick.key}`);
    return html`<h2>Media</h2>
      <div class="toolbar chart-tools">
        <label>tag <select id="compare-media-tag" @change=${(e: Event) => (this.chosen = (e.target as HTMLSelectElement).value)}>
          ${keys.map((k) => html`<option value=${k.key} ?selected=${k.key === pick.key}>${SECTIONS.find((s) => s.kind === k.kind)?.title}: ${k.tag}</option>`)}
        </select></label>
        ${pick.kind !== MediaKind.HISTOGRAM && hi > lo
          ? html`<label>step <input id="compare-media-step" type="range" min=${lo} max=${hi} .value=${String(step)}
              @input=${(e: Event) => this.onStep(e, hi)}> <span class="num">${step}</span></label>`
          : nothing}
        <span class="muted">${kindName}</span>
      </div>
      <div class="media-grid" id="compare-media">${having.map(
        (r) => html`<div class="media-run" data-run=${r.id}><div class="muted media-run-id">${r.id}</div>
          ${pick.kind === MediaKind.HISTOGRAM
            ? html`<media-histogram class="media-card" .run=${r.id} .tag=${pick.tag} .mode=${"offset"}
                .version=${version(r.id)}></media-histogram>`
            : html`<media-card class="media-card" .run=${r.id} .kind=${pick.kind} .tag=${pick.tag} .step=${step}
                .version=${version(r.id)}></media-card>`}
        </div>`,
      )}</div>`;
  }
}

customElements.define("run-media", RunMedia);
customElements.define("media-card", MediaCard);
customElements.define("media-histogram", MediaHistogram);
customElements.define("compare-media", CompareMedia);
