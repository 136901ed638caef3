// The lines an output view keeps: the last `maxLines` of a run's output in columns, and
// the indexes of the lines that match the filter, kept current as lines arrive (so a
// filter costs nothing per frame however fast the run prints) and as old lines are
// dropped. Pure data, tested in Node.

/** Lines kept in the page by default; older ones are dropped (the run keeps them all). */
export const MAX_LINES = 500_000;

export class OutputLines {
  readonly seq: number[] = [];
  readonly time: number[] = [];
  readonly err: boolean[] = [];
  readonly text: string[] = [];
  /** Lines dropped from the front to stay within maxLines. */
  dropped = 0;
  /** Indexes of the kept lines that match the filter; null: no filter, all lines. */
  hits: number[] | null = null;
  private matcher: ((s: string) => boolean) | null = null;

  constructor(readonly maxLines = MAX_LINES) {}

  /** Lines kept. */
  get length(): number {
    return this.text.length;
  }

  /** Lines the filter lets through (all kept lines when there is none). */
  get shown(): number {
    return this.hits ? this.hits.length : this.text.length;
  }

  /** Every line the run printed that reached the page, kept or dropped. */
  get received(): number {
    return this.text.length + this.dropped;
  }

  /** Index (into the columns) of the k-th shown line. */
  at(k: number): number {
    return this.hits ? this.hits[k] : k;
  }

  push(seq: number, timeMs: number, err: boolean, text: string) {
    const i = this.text.length;
    this.seq.push(seq);
    this.time.push(timeMs);
    this.err.push(err);
    this.text.push(text);
    if (this.hits && this.matcher!(text)) this.hits.push(i);
  }

  /** Drops the oldest lines when there are more than maxLines: a tenth more than needed,
   * so dropping (which moves every kept line) happens once per maxLines/10 lines. */
  trim(): number {
    if (this.text.length <= this.maxLines) return 0;
    const n = Math.min(this.text.length, this.text.length - this.maxLines + Math.floor(this.maxLines / 10));
    this.seq.splice(0, n);
    this.time.splice(0, n);
    this.err.splice(0, n);
    this.text.splice(0, n);
    this.dropped += n;
    if (this.hits) {
      let k = 0;
      while (k < this.hits.length && this.hits[k] < n) k++;
      const kept = this.hits.slice(k);
      for (let j = 0; j < kept.length; j++) kept[j] -= n;
      this.hits = kept;
    }
    return n;
  }

  /** Sets the filter (text, or /regex/flags; empty: none) and finds the kept lines that
   * match it. */
  setFilter(v: string) {
    this.matcher = makeMatcher(v);
    if (!this.matcher) {
      this.hits = null;
      return;
    }
    const m: number[] = [];
    const f = this.matcher;
    for (let i = 0; i < this.text.length; i++) if (f(this.text[i])) m.push(i);
    this.hits = m;
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
