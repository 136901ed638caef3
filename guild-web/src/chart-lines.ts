// What a chart's lines are made of, and reading them: a short line is read whole from
// GetSeries (and zoomed locally), a long one as min/max/last buckets for the visible
// range, read again, finer, for each zoom. A line of a live run has `until` (the run's
// series cursor when the page read it: its history is read up to there) and `tail` (every
// sample committed after it, fed by the page from WatchSeries), drawn after the history.

import { getSeriesColumns } from "./api";
import { Columns, emptyPoints, rawPoints, type AxisMode, type Points } from "./chart-data";
import { Axis } from "./gen/guild/v1/guild_pb";

export interface LineSpec {
  /** Unique within the chart. */
  id: string;
  label: string;
  run: string;
  key: string;
  /** The run's start (ms), the origin of the relative-time axis. */
  runStart: number;
  /** Samples stored, from the series summary (decides whole fetch or buckets). */
  count: number;
  lastStep: number;
  lastTimeMs: number;
  /** A live run's series cursor when the page read the run: history is read up to it. */
  until?: number;
  /** A live run's samples committed after `until`, kept current by the page. */
  tail?: Columns;
}

/** Lines with at most this many samples are fetched whole and zoomed locally. */
export const RAW_FETCH_MAX = 4000;

/** A line fetched whole: its samples up to `until` (every one when undefined), and with
 * the tail's samples appended as they come (`merged`, `tailSeen` of them). */
interface Whole {
  history: Columns;
  until: number | undefined;
  merged: Columns | null;
  tailSeen: number;
}

interface Fetched {
  /** Display range the buckets cover. */
  from: number;
  to: number;
  points: Points;
  /** Highest x read (display units); tail samples beyond it are drawn after. */
  maxX: number;
}

/** Whole lines are kept by run and key: the compare page's lines are runs, whose key
 * changes with the overlay's. */
function wholeKey(l: LineSpec): string {
  return `${l.run}\u0000${l.key}`;
}

/** One chart's lines as read so far. */
export class ChartLines {
  private fetched = new Map<string, Fetched>();
  private whole = new Map<string, Whole>();

  /** Fetched as buckets: long lines, and lines whose length is not known (a bucket
   * of a short series holds one sample, so nothing is lost). */
  bucketed(l: LineSpec): boolean {
    return !(l.count <= RAW_FETCH_MAX);
  }

  /** Forgets the buckets (a new axis or new lines); whole lines stay, as read. */
  clearBuckets() {
    this.fetched.clear();
  }

  /** The display range that covers every line, from the summaries. */
  fullRange(lines: LineSpec[], axis: AxisMode): [number, number] {
    let lo = Infinity, hi = -Infinity;
    for (const l of lines) {
      let a: number, b: number;
      if (axis === "step") {
        a = Math.min(0, l.lastStep);
        b = l.lastStep;
      } else if (axis === "wall") {
        a = l.runStart / 1000;
        b = l.lastTimeMs / 1000;
      } else {
        a = 0;
        b = (l.lastTimeMs - l.runStart) / 1000;
      }
      lo = Math.min(lo, a);
      hi = Math.max(hi, b);
    }
    if (!(hi >= lo)) return [NaN, NaN];
    return [lo, hi];
  }

  /**
   * GetSeries for the lines that need it: whole (small) or as `width` buckets over
   * `range` (null: everything, a live run's up to its cursor). One request per run and
   * kind; `current()` says whether the answer is still wanted, `onRun()` is called as
   * each run's lines arrive.
   */
  async fetch(opts: {
    lines: LineSpec[];
    axis: AxisMode;
    width: number;
    range: [number, number] | null;
    signal: AbortSignal;
    current: () => boolean;
    onRun: () => void;
  }): Promise<void> {
    const { lines: all, axis, range, signal, current } = opts;
    const [from, to] = range ?? this.fullRange(all, axis);
    const byRun = new Map<string, LineSpec[]>();
    for (const l of all) {
      if (range === null && l.until === 0) {
        // A live run read before its first sample: no history, everything is in the tail.
        if (this.bucketed(l)) this.fetched.set(l.id, { from, to, points: emptyPoints(), maxX: -Infinity });
        else this.whole.set(wholeKey(l), { history: new Columns(16), until: 0, merged: null, tailSeen: 0 });
        continue;
      }
      if (!this.bucketed(l)) {
        // Whole lines zoom locally; their history is read once (again only while a
        // finished run's summary says there is more).
        if (range !== null) continue;
        const w = this.whole.get(wholeKey(l));
        if (w && w.until === l.until && (l.until !== undefined || w.history.length >= l.count)) continue;
      }
      const list = byRun.get(l.run) ?? [];
      list.push(l);
      byRun.set(l.run, list);
    }
    const nb = Math.max(16, Math.min(4000, Math.round(opts.width)));
    await Promise.all(
      [...byRun.entries()].map(async ([run, lines]) => {
        const bucketed = lines.filter((l) => this.bucketed(l));
        const whole = lines.filter((l) => !this.bucketed(l));
        const runStart = lines[0].runStart;
        // A live run's history: what was committed up to the cursor the page read (the
        // page has every sample after it). A zoom reads everything in its range.
        const until = range === null ? lines[0].until : undefined;
        const untilCursor = until === undefined ? undefined : BigInt(until);
        if (whole.length) {
          const got = await getSeriesColumns(
            { run, keys: whole.map((l) => l.key), axis: Axis.STEP, buckets: 0, untilCursor },
            { signal },
          );
          if (!current()) return;
          for (const s of got) {
            const c = Columns.of(s.samples.step, s.samples.time, s.samples.value, s.samples.length);
            for (const l of whole) {
              if (l.key === s.key) this.whole.set(wholeKey(l), { history: c, until: l.until, merged: null, tailSeen: 0 });
            }
          }
        }
        if (bucketed.length) {
          // Unknown extents (no summaries, or a live run's, which the cursor may pass):
          // each run's own, as the daemon finds them.
          const toAxis = (v: number) =>
            Number.isNaN(v) || (range === null && until !== undefined)
              ? undefined
              : axis === "step" ? v : axis === "wall" ? v * 1000 : runStart + v * 1000;
          const got = await getSeriesColumns({
            run,
            keys: bucketed.map((l) => l.key),
            axis: axis === "step" ? Axis.STEP : Axis.TIME,
            min: toAxis(from),
            max: toAxis(to),
            buckets: nb,
            untilCursor,
          }, { signal });
          if (!current()) return;
          for (const s of got) {
            const b = s.buckets;
            const n = b.length;
            const p: Points = {
              x: new Float64Array(n),
              y: new Float64Array(n),
              lo: new Float64Array(n),
              hi: new Float64Array(n),
              samples: s.count,
              nan: 0,
              posInf: 0,
              negInf: 0,
            };
            let maxX = -Infinity;
            let k = 0;
            for (let i = 0; i < n; i++) {
              const x =
                axis === "step"
                  ? b.lastStep[i]
                  : axis === "wall"
                    ? b.lastTimeMs[i] / 1000
                    : (b.lastTimeMs[i] - runStart) / 1000;
              if (k > 0 && x <= p.x[k - 1]) continue;
              const last = b.last[i];
              p.x[k] = x;
              p.y[k] = last;
              p.lo![k] = b.min[i];
              p.hi![k] = b.max[i];
              if (Number.isNaN(last)) p.nan++;
              else if (last === Infinity) p.posInf++;
              else if (last === -Infinity) p.negInf++;
              maxX = Math.max(maxX, x);
              k++;
            }
            if (k < n) {
              p.x = p.x.slice(0, k);
              p.y = p.y.slice(0, k);
              p.lo = p.lo!.slice(0, k);
              p.hi = p.hi!.slice(0, k);
            }
            for (const l of bucketed) {
              if (l.key === s.key) this.fetched.set(l.id, { from, to, points: p, maxX: range ? Infinity : maxX });
            }
          }
        }
        opts.onRun();
      }),
    );
  }

  /** A whole line's history with the tail's new samples after it. */
  private merged(l: LineSpec, w: Whole): Columns {
    if (!l.tail || l.tail.length === 0) return w.history;
    if (!w.merged) {
      w.merged = Columns.of(w.history.step.slice(), w.history.time.slice(), w.history.value.slice(), w.history.length);
      w.tailSeen = 0;
    }
    const t = l.tail;
    for (; w.tailSeen < t.length; w.tailSeen++) w.merged.push(t.step[w.tailSeen], t.time[w.tailSeen], t.value[w.tailSeen]);
    return w.merged;
  }

  /** A line's points to draw on `axis`, at most about `width` of them per line (more
   * are reduced to buckets), within `zoom` when zoomed. */
  points(l: LineSpec, axis: AxisMode, width: number, zoom: [number, number] | null): Points {
    const nb = Math.max(16, Math.round(width));
    const [from, to] = zoom ?? [-Infinity, Infinity];
    const w = this.whole.get(wholeKey(l));
    if (w && !this.bucketed(l)) return rawPoints(this.merged(l, w), axis, l.runStart, nb, from, to);
    const f = this.fetched.get(l.id);
    if (!f) return emptyPoints();
    if (!l.tail || l.tail.length === 0 || zoom) return f.points;
    // Live samples after the buckets, reduced like the rest when there are many.
    const t = rawPoints(l.tail, axis, l.runStart, nb, f.maxX, Infinity);
    let start = 0;
    while (start < t.x.length && t.x[start] <= f.maxX) start++;
    if (start === t.x.length) return f.points;
    const a = f.points;
    const cat = (head: Float64Array, rest: Float64Array) => {
      const out = new Float64Array(head.length + rest.length - start);
      out.set(head);
      out.set(rest.subarray(start), head.length);
      return out;
    };
    return {
      x: cat(a.x, t.x),
      y: cat(a.y, t.y),
      lo: cat(a.lo ?? a.y, t.lo ?? t.y),
      hi: cat(a.hi ?? a.y, t.hi ?? t.y),
      samples: a.samples + t.samples,
      nan: a.nan + t.nan,
      posInf: a.posInf + t.posInf,
      negInf: a.negInf + t.negInf,
    };
  }
}
