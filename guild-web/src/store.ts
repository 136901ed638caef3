// Every run the daemon knows, kept live: the first page of ListRuns for a quick first
// paint, then WatchRuns (every run's state, then each change) for the rest and for
// updates. After a daemon restart the stream is reopened and ListRuns is paged once to
// drop runs that were deleted meanwhile.

import { compareRuns, conn, keepStreaming, runs as runsApi } from "./api";
import type { Run, SeriesKey } from "./gen/guild/v1/guild_pb";
import { isLive, statusName } from "./format";

export interface RunRow {
  id: string;
  projectDir: string;
  projectName: string;
  model: string;
  op: string;
  status: number;
  createdMs: number;
  startedMs: number;
  stoppedMs: number;
  exitStatus: number | undefined;
  runDir: string;
  label: string;
  reason: string;
  sourceRun: string;
  tags: string[];
  /** The queue: priority while queued, GPUs asked for and given (`queue.ts` ranks). */
  priority: number;
  gpusRequested: number | undefined;
  gpus: string[];
  /** A sweep's trial: the sweep's run id and the trial's number (0: not a trial). */
  sweep: string;
  trial: number;
  /** Lower-case text the runs filter searches. */
  haystack: string;
}

export function toRow(r: Run): RunRow {
  const row: RunRow = {
    id: r.id,
    projectDir: r.projectDir,
    projectName: r.projectName,
    model: r.model,
    op: r.op,
    status: r.status,
    createdMs: Number(r.createdMs),
    startedMs: Number(r.startedMs),
    stoppedMs: Number(r.stoppedMs),
    exitStatus: r.exitStatus,
    runDir: r.runDir,
    label: r.label,
    reason: r.reason,
    sourceRun: r.sourceRun,
    tags: [...r.tags],
    priority: r.queue?.priority ?? 0,
    gpusRequested: r.queue?.gpusRequested,
    gpus: [...(r.queue?.gpus ?? [])],
    sweep: r.sweep,
    trial: r.trial,
    haystack: "",
  };
  row.haystack = [r.id, r.model, r.op, r.label, r.projectName, statusName(r.status), `${r.model}:${r.op}`, ...r.tags]
    .join("\u0000")
    .toLowerCase();
  return row;
}

export interface Summary {
  key: string;
  last: number;
  min: number;
  max: number;
  count: number;
  lastStep: number;
  lastTimeMs: number;
}

export function toSummary(s: SeriesKey): Summary {
  return {
    key: s.key,
    last: s.last,
    min: s.min,
    max: s.max,
    count: Number(s.count),
    lastStep: Number(s.lastStep),
    lastTimeMs: Number(s.lastTimeMs),
  };
}

type Listener = () => void;

class RunStore {
  readonly runs = new Map<string, RunRow>();
  /** Bumped on every change: views memoize on it. */
  version = 0;
  /** The daemon's count from ListRuns; the snapshot is complete once `runs` holds it. */
  total = -1;
  firstPageLoaded = false;
  error = "";
  private listeners = new Set<Listener>();
  private scheduled = false;
  private started = false;

  on(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** WatchRuns said its snapshot of every run is over (`snapshotDone`). */
  private snapshotDone = false;

  get snapshotComplete(): boolean {
    return this.snapshotDone || (this.total >= 0 && this.runs.size >= this.total);
  }

  private lastNotify = 0;

  /** Listeners hear of changes once a frame; while the first snapshot streams in, at
   * most every 250 ms, so the page stays responsive to input. */
  private changed() {
    this.version++;
    if (this.scheduled) return;
    this.scheduled = true;
    const wait = this.firstPageLoaded && !this.snapshotComplete ? Math.max(0, 250 - (performance.now() - this.lastNotify)) : 0;
    const fire = () =>
      requestAnimationFrame(() => {
        this.scheduled = false;
        this.lastNotify = performance.now();
        for (const fn of this.listeners) fn();
      });
    if (wait > 0) setTimeout(fire, wait);
    else fire();
  }

  /** A run left the list (deleted). */
  remove(id: string) {
    if (!this.runs.delete(id)) return;
    if (this.total > 0) this.total--;
    summaries.invalidate(id);
    this.changed();
  }

  upsert(r: Run) {
    const row = toRow(r);
    const old = this.runs.get(row.id);
    this.runs.set(row.id, row);
    if (old && old.status !== row.status) summaries.invalidate(row.id);
    this.changed();
  }

  start() {
    if (this.started) return;
    this.started = true;
    const abort = new AbortController();
    void this.firstPage();
    let epoch = conn.epoch;
    void keepStreaming({
      signal: abort.signal,
      open: (signal) => runsApi.watchRuns({}, { signal }),
      onMessage: (ev) => {
        if (ev.snapshotDone) {
          this.snapshotDone = true;
          this.changed();
        } else if (ev.run && ev.removed) this.remove(ev.run.id);
        else if (ev.run) this.upsert(ev.run);
      },
      // WatchRuns never ends while the daemon runs: an end is a break.
      ended: () => false,
      onError: (err) => {
        this.error = err.rawMessage;
        this.changed();
      },
    });
    conn.on(() => {
      if (conn.state === "up" && conn.epoch !== epoch) {
        epoch = conn.epoch;
        void this.resync();
      }
    });
  }

  private async firstPage() {
    for (;;) {
      await conn.up();
      try {
        const res = await runsApi.listRuns({ limit: 200, offset: 0 });
        this.total = res.total;
        for (const r of res.runs) {
          if (!this.runs.has(r.id)) this.upsert(r);
        }
        this.firstPageLoaded = true;
        this.changed();
        return;
      } catch (err) {
        conn.report(err);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /** After a reconnect: page through ListRuns to learn the current set of ids. */
  private async resync() {
    try {
      const ids = new Set<string>();
      const page = 2000;
      let total = 0;
      for (let offset = 0; ; offset += page) {
        const res = await runsApi.listRuns({ limit: page, offset });
        total = res.total;
        for (const r of res.runs) {
          ids.add(r.id);
          this.upsert(r);
        }
        if (res.runs.length < page) break;
      }
      for (const id of [...this.runs.keys()]) if (!ids.has(id)) this.runs.delete(id);
      this.total = total;
      this.changed();
    } catch (err) {
      conn.report(err);
    }
  }
}

export const store = new RunStore();

/**
 * Per-run series summaries (last/min/max of each key), fetched lazily with CompareRuns
 * for the rows a page shows, a window at a time. A live run's entry goes stale
 * after a few seconds so visible rows stay current.
 */
class SummaryCache {
  private cache = new Map<string, { at: number; keys: Map<string, Summary> }>();
  private queue: string[] = [];
  private queued = new Set<string>();
  private inflight = 0;
  private listeners = new Set<Listener>();
  private scheduled = false;
  /** Every key seen in any fetched run, for column pickers. */
  readonly knownKeys = new Set<string>();
  version = 0;

  on(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  get(id: string): Map<string, Summary> | undefined {
    return this.cache.get(id)?.keys;
  }

  set(id: string, list: Summary[]) {
    const keys = new Map(list.map((s) => [s.key, s]));
    for (const k of keys.keys()) this.knownKeys.add(k);
    this.cache.set(id, { at: Date.now(), keys });
    this.changed();
  }

  invalidate(id: string) {
    const e = this.cache.get(id);
    if (e) e.at = 0;
  }

  /** Asks for the summaries of these runs (the visible rows); cheap when cached. */
  want(ids: string[]) {
    const now = Date.now();
    for (const id of ids) {
      const e = this.cache.get(id);
      const row = store.runs.get(id);
      const stale = !e || e.at === 0 || (row !== undefined && isLive(row.status) && now - e.at > 5000);
      if (stale && !this.queued.has(id)) {
        this.queued.add(id);
        this.queue.push(id);
      }
    }
    // Newest wishes first: rows scrolled past are not worth fetching.
    if (this.queue.length > 200) {
      for (const id of this.queue.splice(0, this.queue.length - 200)) this.queued.delete(id);
    }
    this.pump();
  }

  /** One CompareRuns call for up to 100 wanted runs at a time (two at most in flight). */
  private pump() {
    while (this.inflight < 2 && this.queue.length) {
      const ids = this.queue.splice(Math.max(0, this.queue.length - 100));
      this.inflight++;
      void (async () => {
        try {
          await conn.up();
          const got = (await compareRuns(ids)).entries;
          const seen = new Set<string>();
          for (const e of got) {
            seen.add(e.run.id);
            this.set(
              e.run.id,
              [...e.scalars].map(([key, v]) => ({ key, ...v, count: NaN, lastStep: NaN, lastTimeMs: NaN })),
            );
          }
          for (const id of ids) if (!seen.has(id)) this.set(id, []);
        } catch (err) {
          conn.report(err);
          for (const id of ids) this.cache.set(id, { at: Date.now(), keys: this.cache.get(id)?.keys ?? new Map() });
        } finally {
          for (const id of ids) this.queued.delete(id);
          this.inflight--;
          this.pump();
        }
      })();
    }
  }

  private changed() {
    this.version++;
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      for (const fn of this.listeners) fn();
    });
  }
}

export const summaries = new SummaryCache();

/** The runs the user ticked on the runs page, kept for the session. */
class Selection {
  ids = new Set<string>(JSON.parse(sessionStorage.getItem("guild-selection") ?? "[]") as string[]);
  private listeners = new Set<Listener>();
  on(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
  toggle(id: string, on?: boolean) {
    const want = on ?? !this.ids.has(id);
    if (want) this.ids.add(id);
    else this.ids.delete(id);
    this.save();
  }
  setAll(ids: string[], on: boolean) {
    for (const id of ids) {
      if (on) this.ids.add(id);
      else this.ids.delete(id);
    }
    this.save();
  }
  clear() {
    this.ids.clear();
    this.save();
  }
  private save() {
    sessionStorage.setItem("guild-selection", JSON.stringify([...this.ids]));
    for (const fn of this.listeners) fn();
  }
}

export const selection = new Selection();

/** Picks the headline keys of a run's series: loss, accuracy and the step. */
export function headline(keys: Iterable<string>): { loss?: string; acc?: string } {
  const list = [...keys].filter((k) => !k.startsWith("sys/") && !k.startsWith("op/"));
  const pick = (names: string[]) => {
    for (const n of names) {
      const hit = list.find((k) => k === n);
      if (hit) return hit;
    }
    return undefined;
  };
  const loss =
    pick(["loss", "train_loss", "tf/train/loss", "val_loss", "tf/validation/loss"]) ??
    list.find((k) => /(^|[/_])loss$/.test(k));
  const acc =
    pick(["acc", "accuracy", "train_acc", "tf/train/acc", "tf/train/accuracy", "val_acc", "test_acc", "tf/validation/acc"]) ??
    list.find((k) => /(^|[/_])(acc|accuracy)$/.test(k));
  return { loss, acc };
}
