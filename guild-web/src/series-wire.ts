// GetSeries answers decoded straight into typed arrays. A chart's zoom refetch reads one
// GetSeries per run (20 runs x ~1,300 buckets for the compare overlay); decoding those
// into protobuf-es messages (an object per bucket, 64-bit fields as bigint) then copying
// them into columns was a third of the page's work per zoom. This reads the wire format
// of guild.v1.GetSeriesResponse directly (field numbers from proto/guild/v1/guild.proto;
// unknown fields are skipped, so fields added later do no harm). tests/unit.test.mjs
// checks it against protobuf-es on the same bytes.

/** One key's answer: its samples (buckets: 0) or its buckets, as columns. */
export interface SeriesColumns {
  key: string;
  /** Samples of the key in the range. */
  count: number;
  samples: { step: Float64Array; time: Float64Array; value: Float64Array; length: number };
  buckets: {
    xStart: Float64Array;
    xEnd: Float64Array;
    min: Float64Array;
    max: Float64Array;
    last: Float64Array;
    lastStep: Float64Array;
    lastTimeMs: Float64Array;
    count: Float64Array;
    length: number;
  };
}

const utf8 = new TextDecoder();

class Reader {
  pos: number;
  private view: DataView;
  constructor(
    private buf: Uint8Array,
    start = 0,
    public end = buf.length,
  ) {
    this.pos = start;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  /** A varint as a number: exact below 2^53 (steps, times and counts are); a negative
   * int64 (ten bytes on the wire) comes out negative. */
  varint(): number {
    const b = this.buf;
    const start = this.pos;
    let x = 0;
    let mul = 1;
    // Up to seven bytes (49 bits) in plain arithmetic: every realistic step, time in ms
    // and count.
    for (let i = 0; i < 7; i++) {
      if (this.pos >= this.end) throw new Error("GetSeries answer: truncated varint");
      const byte = b[this.pos++];
      x += (byte & 0x7f) * mul;
      if (byte < 0x80) return x;
      mul *= 128;
    }
    // Longer: exactly, as a signed 64-bit value.
    this.pos = start;
    let v = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error("GetSeries answer: truncated varint");
      const byte = b[this.pos++];
      v |= BigInt(byte & 0x7f) << BigInt(7 * i);
      if (byte < 0x80) return Number(BigInt.asIntN(64, v));
    }
    throw new Error("GetSeries answer: varint too long");
  }

  double(): number {
    if (this.pos + 8 > this.end) throw new Error("GetSeries answer: truncated double");
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** The end of a length-delimited field that starts here. */
  sub(): number {
    const len = this.varint();
    const end = this.pos + len;
    if (end > this.end) throw new Error("GetSeries answer: truncated field");
    return end;
  }

  string(): string {
    const end = this.sub();
    const s = utf8.decode(this.buf.subarray(this.pos, end));
    this.pos = end;
    return s;
  }

  skip(wire: number) {
    switch (wire) {
      case 0:
        this.varint();
        break;
      case 1:
        this.pos += 8;
        break;
      case 2:
        this.pos = this.sub();
        break;
      case 5:
        this.pos += 4;
        break;
      default:
        throw new Error(`GetSeries answer: unsupported wire type ${wire}`);
    }
    if (this.pos > this.end) throw new Error("GetSeries answer: truncated field");
  }
}

/** How many samples (field 2) and buckets (field 3) a Series holds, by skipping
 * through it once, so the columns are allocated once at their size. */
function countEntries(r: Reader, end: number): [number, number] {
  const start = r.pos;
  let samples = 0;
  let buckets = 0;
  while (r.pos < end) {
    const tag = r.varint();
    const no = Math.floor(tag / 8);
    if (no === 2 && (tag & 7) === 2) samples++;
    else if (no === 3 && (tag & 7) === 2) buckets++;
    r.skip(tag & 7);
  }
  r.pos = start;
  return [samples, buckets];
}

function readSeries(r: Reader, end: number): SeriesColumns {
  const saved = r.end;
  r.end = end;
  const [ns, nb] = countEntries(r, end);
  const f64 = (n: number) => new Float64Array(n);
  const s: SeriesColumns = {
    key: "",
    count: 0,
    samples: { step: f64(ns), time: f64(ns), value: f64(ns), length: 0 },
    buckets: {
      xStart: f64(nb),
      xEnd: f64(nb),
      min: f64(nb),
      max: f64(nb),
      last: f64(nb),
      lastStep: f64(nb),
      lastTimeMs: f64(nb),
      count: f64(nb),
      length: 0,
    },
  };
  while (r.pos < end) {
    const tag = r.varint();
    const no = Math.floor(tag / 8);
    const wire = tag & 7;
    if (no === 1 && wire === 2) s.key = r.string();
    else if (no === 4 && wire === 0) s.count = r.varint();
    else if (no === 2 && wire === 2) {
      // Sample: time_ms = 1, step = 2, value = 3 (double).
      const e = r.sub();
      const i = s.samples.length;
      let time = 0, step = 0, value = 0;
      const outer = r.end;
      r.end = e;
      while (r.pos < e) {
        const t = r.varint();
        const f = Math.floor(t / 8);
        if (f === 1 && (t & 7) === 0) time = r.varint();
        else if (f === 2 && (t & 7) === 0) step = r.varint();
        else if (f === 3 && (t & 7) === 1) value = r.double();
        else r.skip(t & 7);
      }
      r.end = outer;
      s.samples.step[i] = step;
      s.samples.time[i] = time;
      s.samples.value[i] = value;
      s.samples.length = i + 1;
    } else if (no === 3 && wire === 2) {
      // Bucket: x_start 1, x_end 2, min 3, max 4, last 5 (doubles); last_step 6,
      // last_time_ms 7 (int64), count 8 (uint64).
      const e = r.sub();
      const i = s.buckets.length;
      const b = s.buckets;
      const outer = r.end;
      r.end = e;
      while (r.pos < e) {
        const t = r.varint();
        const f = Math.floor(t / 8);
        const w = t & 7;
        if (w === 1 && f >= 1 && f <= 5) {
          const v = r.double();
          if (f === 1) b.xStart[i] = v;
          else if (f === 2) b.xEnd[i] = v;
          else if (f === 3) b.min[i] = v;
          else if (f === 4) b.max[i] = v;
          else b.last[i] = v;
        } else if (w === 0 && f >= 6 && f <= 8) {
          const v = r.varint();
          if (f === 6) b.lastStep[i] = v;
          else if (f === 7) b.lastTimeMs[i] = v;
          else b.count[i] = v;
        } else r.skip(w);
      }
      r.end = outer;
      b.length = i + 1;
    } else r.skip(wire);
  }
  r.end = saved;
  return s;
}

/** Decodes a guild.v1.GetSeriesResponse (repeated Series series = 1). */
export function decodeGetSeries(bytes: Uint8Array): SeriesColumns[] {
  const r = new Reader(bytes);
  const out: SeriesColumns[] = [];
  while (r.pos < r.end) {
    const tag = r.varint();
    if (Math.floor(tag / 8) === 1 && (tag & 7) === 2) {
      const end = r.sub();
      out.push(readSeries(r, end));
      r.pos = end;
    } else r.skip(tag & 7);
  }
  return out;
}
