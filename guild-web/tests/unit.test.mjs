// The pure parts (chart data, chart grouping, formatting, the output view's lines), bundled from src/ with
// esbuild and run in Node: no browser or daemon needed.

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, before, describe, test } from "node:test";
import { build } from "esbuild";
import { ROOT, WEB } from "./harness.mjs";

let dir, cd, groups, fmt, outl, wire, pb, router, num, view, axes, md, hist, queue;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "guild-web-unit-"));
  for (const name of ["chart-data", "groups", "format", "output-lines", "series-wire", "router", "numeral", "view", "axes", "markdown", "histogram", "queue", "gen/guild/v1/guild_pb"]) {
    await build({
      absWorkingDir: WEB,
      entryPoints: [`src/${name}.ts`],
      outfile: join(dir, `${name.replaceAll("/", "_")}.mjs`),
      bundle: true,
      format: "esm",
      platform: "neutral",
      logLevel: "error",
    });
  }
  cd = await import(pathToFileURL(join(dir, "chart-data.mjs")).href);
  queue = await import(pathToFileURL(join(dir, "queue.mjs")).href);
  groups = await import(pathToFileURL(join(dir, "groups.mjs")).href);
  fmt = await import(pathToFileURL(join(dir, "format.mjs")).href);
  outl = await import(pathToFileURL(join(dir, "output-lines.mjs")).href);
  wire = await import(pathToFileURL(join(dir, "series-wire.mjs")).href);
  router = await import(pathToFileURL(join(dir, "router.mjs")).href);
  num = await import(pathToFileURL(join(dir, "numeral.mjs")).href);
  view = await import(pathToFileURL(join(dir, "view.mjs")).href);
  axes = await import(pathToFileURL(join(dir, "axes.mjs")).href);
  pb = await import(pathToFileURL(join(dir, "gen_guild_v1_guild_pb.mjs")).href);
  md = await import(pathToFileURL(join(dir, "markdown.mjs")).href);
  hist = await import(pathToFileURL(join(dir, "histogram.mjs")).href);
});

after(() => rmSync(dir, { recursive: true, force: true }));

describe("chart data", () => {
  test("raw points sort by x, a later sample at the same x wins, NaN/inf are counted", () => {
    const c = new cd.Columns(2);
    c.push(3, 3000, 0.3);
    c.push(1, 1000, 0.1);
    c.push(2, 2000, NaN);
    c.push(2, 2100, 0.2);
    c.push(4, 4000, Infinity);
    const p = cd.rawPoints(c, "step", 0, 100);
    assert.deepEqual([...p.x], [1, 2, 3, 4]);
    assert.deepEqual([...p.y], [0.1, 0.2, 0.3, Infinity]);
    assert.equal(p.nan, 1);
    assert.equal(p.posInf, 1);
    assert.equal(p.samples, 5);
  });

  test("many raw samples reduce to min/max/last buckets", () => {
    const c = new cd.Columns();
    for (let i = 0; i < 100_000; i++) c.push(i, i, Math.sin(i / 100));
    const p = cd.rawPoints(c, "step", 0, 500);
    assert.ok(p.x.length <= 500, `${p.x.length} points`);
    assert.ok(p.lo && p.hi);
    assert.ok(Math.max(...p.hi) > 0.999 && Math.min(...p.lo) < -0.999);
    // A zoomed range re-reduces to the range (plus one neighbour each side).
    const z = cd.rawPoints(c, "step", 0, 500, 1000, 1100);
    assert.equal(z.x.length, 103);
    assert.equal(z.x[0], 999);
  });

  test("align joins lines on one x array; non-finite and non-positive (log) become gaps with text", () => {
    const a = { x: Float64Array.of(1, 2, 3), y: Float64Array.of(1, NaN, 3), samples: 3, nan: 1, posInf: 0, negInf: 0 };
    const b = { x: Float64Array.of(2, 4), y: Float64Array.of(-Infinity, 0), samples: 2, nan: 0, posInf: 0, negInf: 1 };
    const al = cd.align([a, b], [false, false], false, 0);
    assert.deepEqual([...al.data[0]], [1, 2, 3, 4]);
    assert.deepEqual(al.data[1], [1, null, 3, null]);
    assert.deepEqual(al.data[2], [null, null, null, 0]);
    assert.equal(al.specials.get(1).get(1), "NaN");
    assert.equal(al.specials.get(2).get(1), "-inf");
    assert.equal(al.points, 3);
    const log = cd.align([b], [false], true, 0);
    assert.deepEqual(log.data[1], [null, null]);
    assert.match(log.specials.get(1).get(1), /not on log scale/);
  });

  test("smoothing is a debiased EMA that steps over non-finite values", () => {
    const s = cd.smoothed(Float64Array.of(1, 1, NaN, 1), 0.9);
    assert.ok(Math.abs(s[0] - 1) < 1e-12 && Math.abs(s[3] - 1) < 1e-12);
    assert.ok(Number.isNaN(s[2]));
    const t = cd.smoothed(Float64Array.of(0, 10), 0.5);
    assert.ok(Math.abs(t[1] - 10 * 0.5 / 0.75) < 1e-9);
  });
});

describe("chart groups", () => {
  test("event-file scalars overlay train and validation per tag; stats group by what they measure", () => {
    const g = groups.groupKeys([
      "tf/validation/loss", "tf/train/loss", "tf/train/acc", "loss", "val_loss", "acc",
      "sys/cpu/util", "sys/cpu0/util", "sys/mem/util", "sys/mem/used", "sys/mem/total",
      "sys/gpu0/gpu/util", "sys/gpu0/mem/util", "sys/gpu0/mem/used", "sys/gpu0/temp", "op/cpu/util", "op/mem/rss",
    ]);
    const by = Object.fromEntries(g.map((x) => [x.id, x.keys.map((k) => k.key)]));
    assert.deepEqual(by["tf:loss"], ["tf/train/loss", "tf/validation/loss"]);
    assert.deepEqual(by["s:loss"], ["loss", "val_loss"]);
    assert.deepEqual(by["sys:cpu"], ["sys/cpu/util", "sys/cpu0/util"]);
    assert.deepEqual(by["gpu0:util"], ["sys/gpu0/gpu/util", "sys/gpu0/mem/util"]);
    assert.deepEqual(by["op:mem"], ["op/mem/rss"]);
    assert.equal(g.find((x) => x.id === "sys:mem").unit, "bytes");
    assert.equal(g[0].section, "Scalars");
  });
});

describe("format", () => {
  test("numbers that are not finite read as text", () => {
    assert.equal(fmt.fmtNumber(NaN), "NaN");
    assert.equal(fmt.fmtNumber(Infinity), "inf");
    assert.equal(fmt.fmtNumber(-Infinity), "-inf");
    assert.equal(fmt.fmtNumber(0.123456789), "0.123457");
    assert.equal(fmt.fmtNumber(42), "42");
  });

  test("sorting puts NaN after numbers and compares text naturally", () => {
    const v = [3, NaN, 1, 2].sort(fmt.compareValues);
    assert.deepEqual(v.slice(0, 3), [1, 2, 3]);
    assert.ok(Number.isNaN(v[3]));
    assert.deepEqual(["run10", "run9"].sort(fmt.compareValues), ["run9", "run10"]);
  });

  test("CSV cells are quoted when needed", () => {
    assert.equal(fmt.csvCell('a,"b"'), '"a,""b"""');
    assert.equal(fmt.csvCell("plain"), "plain");
  });
});

describe("output lines", () => {
  test("past the cap the oldest lines go, counted, and the filter's hits follow", () => {
    const o = new outl.OutputLines(1000);
    o.setFilter("/7$/");
    for (let i = 0; i < 2500; i++) {
      o.push(i + 1, i, i % 10 === 3, `line ${i}`);
      o.trim();
    }
    assert.ok(o.length <= 1000 && o.length >= 900, `${o.length} kept`);
    assert.equal(o.received, 2500);
    assert.equal(o.dropped, 2500 - o.length);
    // The kept lines are the last ones, in order.
    assert.equal(o.text[o.length - 1], "line 2499");
    assert.equal(o.seq[0], o.dropped + 1);
    // Every hit is a kept line that matches, and every kept line that matches is a hit.
    const want = o.text.map((t, i) => (/7$/.test(t) ? i : -1)).filter((i) => i >= 0);
    assert.deepEqual(o.hits, want);
    assert.equal(o.shown, want.length);
    assert.equal(o.text[o.at(0)], `line ${o.dropped + ((7 - (o.dropped % 10) + 10) % 10)}`);
    // The filter searches what is kept; clearing it shows every kept line.
    o.setFilter("line 5");
    assert.equal(o.shown, 0, "line 5.. were dropped");
    o.setFilter("LINE 2499");
    assert.equal(o.shown, 1);
    o.setFilter("");
    assert.equal(o.hits, null);
    assert.equal(o.shown, o.length);
  });

  test("filters are text (case-insensitive) or /regex/flags", () => {
    const m = outl.makeMatcher("Loss");
    assert.ok(m("val_loss: 1") && !m("acc: 1"));
    const r = outl.makeMatcher("/^val_/");
    assert.ok(r("val_loss: 1") && !r("loss: 1"));
    const bad = outl.makeMatcher("/(/");
    assert.ok(bad("a /(/ b"), "an invalid expression is searched as text");
    assert.equal(outl.makeMatcher(""), null);
  });
});

describe("GetSeries wire decoding", () => {
  test("columns match protobuf-es on the same bytes (buckets, samples, big and odd values)", async () => {
    const { create, toBinary, fromBinary } = await import("@bufbuild/protobuf");
    const buckets = [];
    for (let i = 0; i < 300; i++) {
      buckets.push({
        xStart: i * 10,
        xEnd: i * 10 + 10,
        min: i === 7 ? NaN : -i / 3,
        max: i === 8 ? Infinity : i * 1.5,
        last: i === 9 ? -Infinity : Math.sin(i),
        lastStep: BigInt(i * 10 + 9),
        lastTimeMs: 1_764_000_000_000n + BigInt(i) * 1000n,
        count: BigInt(i + 1),
      });
    }
    // A step past 2^49 and a negative one take the exact 64-bit path.
    buckets.push({ xStart: 0, xEnd: 0, min: 0, max: 0, last: 1, lastStep: 2n ** 52n + 3n, lastTimeMs: -5n, count: 0n });
    const samples = [
      { timeMs: 1_764_000_000_123n, step: 0n, value: 0.5 },
      { timeMs: 1_764_000_000_124n, step: 1n, value: NaN },
      { timeMs: 0n, step: -1n, value: 0 },
    ];
    const msg = create(pb.GetSeriesResponseSchema, {
      series: [
        { key: "loss", buckets, count: 123_456n },
        { key: "sys/gpu0/mem/used ✓", samples, count: 3n },
        { key: "empty" },
      ],
    });
    const bytes = toBinary(pb.GetSeriesResponseSchema, msg);
    const ref = fromBinary(pb.GetSeriesResponseSchema, bytes);
    const got = wire.decodeGetSeries(bytes);
    assert.equal(got.length, ref.series.length);
    ref.series.forEach((s, k) => {
      const g = got[k];
      assert.equal(g.key, s.key);
      assert.equal(g.count, Number(s.count));
      assert.equal(g.buckets.length, s.buckets.length);
      assert.equal(g.samples.length, s.samples.length);
      s.buckets.forEach((b, i) => {
        for (const f of ["xStart", "xEnd", "min", "max", "last"]) assert.ok(Object.is(g.buckets[f][i], b[f]), `${f} ${i}`);
        for (const f of ["lastStep", "lastTimeMs", "count"]) assert.equal(g.buckets[f][i], Number(b[f]), `${f} ${i}`);
      });
      s.samples.forEach((p, i) => {
        assert.equal(g.samples.step[i], Number(p.step));
        assert.equal(g.samples.time[i], Number(p.timeMs));
        assert.ok(Object.is(g.samples.value[i], p.value));
      });
    });
    // Truncated input is an error, not a wrong answer.
    assert.throws(() => wire.decodeGetSeries(bytes.subarray(0, bytes.length - 3)), /truncated/);
  });
});

describe("routes", () => {
  test("hashes name pages, ids and parameters", () => {
    assert.equal(router.parseRoute("#/runs").page, "runs");
    assert.deepEqual({ ...router.parseRoute("#/runs/abc%2Fd"), params: undefined }, { page: "run", id: "abc/d", params: undefined });
    const tb = router.parseRoute("#/tensorboard?runs=a,b");
    assert.equal(tb.page, "tensorboard");
    assert.equal(tb.params.get("runs"), "a,b");
    assert.equal(router.parseRoute("#/tensorboard").page, "tensorboard");
    assert.equal(router.parseRoute("#/compare?runs=a&key=loss").params.get("key"), "loss");
    assert.equal(router.parseRoute("").page, "runs");
    assert.deepEqual(router.listedRuns(router.parseRoute("#/compare?runs=a,%20b,,c&key=loss").params), ["a", "b", "c"]);
    assert.deepEqual(router.listedRuns(router.parseRoute("#/tensorboard").params), []);
  });
});

describe("Numeral formats", () => {
  // The cases the daemon's formatter (guildd/src/project/view/format.rs) is tested on.
  const cases = JSON.parse(readFileSync(join(ROOT, "tests", "fixtures", "formats.json"), "utf8"));
  const valueOf = (v) => (v === "NaN" ? NaN : v === "inf" ? Infinity : v === "-inf" ? -Infinity : v);

  test("every shared case of tests/fixtures/formats.json", () => {
    assert.ok(cases.length >= 40, `only ${cases.length} cases`);
    const wrong = cases
      .map((c) => ({ ...c, got: num.numeral(valueOf(c.value), c.format) }))
      .filter((c) => c.got !== c.text);
    assert.deepEqual(wrong, []);
  });

  test("as the daemon writes them: exact ties to even in exponents, huge and tiny numbers", () => {
    // Each expected text is what format.rs gives for the same value and pattern.
    const more = [
      [1.25, "0.0e", "1.2e+0"],
      [0.125, "0.0e", "1.2e-1"],
      [1.35, "0.0e", "1.4e+0"],
      [9.5, "0e", "1e+1"],
      [-1234, "0.0e", "-1.2e+3"],
      [-0, "0.0e", "-0.0e+0"],
      [1e21, "0,0", "1,000,000,000,000,000,000,000"],
      [123456789012345680000, "0", "123456789012345683968"],
      [1e16, "", "1e16"],
      [0.30000000000000004, "", "0.30000000000000004"],
      [1.5e-7, "", "1.5e-7"],
      [-0, "", "0"],
      [-0.4, "0.0", "-0.4"],
      [1536, "0.0 ib", "1.5 KiB"],
      [-2048, "0 b", "-2 KB"],
      [3725.4, "00:00:00", "1:02:05"],
      [-65, "00:00:00", "-0:01:05"],
      [111, "0o", "111th"],
      [1.5, "0.00$", "1.50$"],
      [0.256, "0.0 %", "25.6 %"],
      [2500000000, "0.0a", "2.5b"],
    ];
    for (const [v, p, want] of more) assert.equal(num.numeral(v, p), want, `${v} in ${JSON.stringify(p)}`);
  });

  test("more decimals for ticks closer than a pattern tells apart", () => {
    assert.equal(num.moreDecimals("%", 1), "0.0%");
    assert.equal(num.moreDecimals("0.00%", 2), "0.0000%");
    assert.equal(num.moreDecimals("0,0", 1), "0,0.0");
    assert.equal(num.moreDecimals("0.0 b", 1), "0.00 b");
    assert.equal(num.moreDecimals("0.0e", 1), "0.00e");
    assert.equal(num.moreDecimals("$0", 2), "$0.00");
    assert.equal(num.moreDecimals("00:00:00", 2), "00:00:00");
    assert.equal(num.numeral(0.4567, num.moreDecimals("%", 1)), "45.7%");
  });
});

describe("views", () => {
  test("Material palette names and the neutral colour for others", () => {
    assert.equal(view.materialColor("green-700"), "#388E3C");
    assert.equal(view.materialColor("teal-400"), "#26A69A");
    assert.equal(view.materialColor("red-700"), "#D32F2F");
    assert.equal(view.materialColor("blue-700"), "#1976D2");
    assert.equal(view.materialColor("yellow-700"), "#FBC02D");
    assert.equal(view.materialColor("grey"), "#9E9E9E");
    assert.equal(view.materialColor("Blue-Grey-800"), "#37474F");
    assert.equal(view.materialColor("light-blue-a200"), "#40C4FF");
    assert.equal(view.materialColor("gray-300"), "#E0E0E0");
    assert.equal(view.materialColor("brown-a200"), null, "brown has no accents");
    assert.equal(view.materialColor("chartreuse-500"), null);
    assert.deepEqual(view.cardColors("no-such-colour"), { background: view.NEUTRAL, color: "#FFFFFF" });
    assert.equal(view.cardColors("green-700").color, "#FFFFFF");
    assert.equal(view.cardColors("yellow-300").color, "rgba(0,0,0,0.87)", "dark text on a light card");
  });

  test("icon aliases and the generic glyph", () => {
    assert.deepEqual(["accuracy", "steps", "time", "loss", "rocket", ""].map(view.iconGlyph), ["bullseye", "repeat", "clock", "shuffle", "chart", "chart"]);
  });

  test("a chart's lines are the keys its pattern matches whole, in natural order", async () => {
    const { create } = await import("@bufbuild/protobuf");
    const v = create(pb.ViewSchema, {
      rows: [
        { name: "series-a", series: [{ name: "accuracy", title: "Accuracy", format: "0.00%", pattern: "tf/[^/]+/accuracy" }] },
        {
          name: "series-b",
          series: [
            { name: "loss", title: "Cross Entropy", pattern: "tf/.+/loss" },
            { name: "op-cpu-percent", title: "Process CPU %", pattern: "op/cpu/util" },
            { name: "gpu", title: "GPU %", pattern: "sys/gpu[^/]*/gpu/util" },
            { name: "bad", title: "Bad", pattern: "tf/(" },
            { name: "none", title: "None", pattern: "" },
          ],
        },
      ],
    });
    const keys = ["tf/validation/accuracy", "tf/train/accuracy", "tf/train/accuracy_top5", "x/tf/train/loss", "tf/train/loss", "tf/eval/10/loss", "tf/eval/9/loss", "op/cpu/util", "op/cpu/util2"];
    const rows = view.viewCharts(v, keys);
    assert.deepEqual(rows.map((r) => r.name), ["series-a", "series-b"]);
    assert.deepEqual(rows[0].charts[0].keys, ["tf/train/accuracy", "tf/validation/accuracy"]);
    const b = rows[1].charts;
    assert.deepEqual(b[0].keys, ["tf/eval/9/loss", "tf/eval/10/loss", "tf/train/loss"]);
    assert.equal(b[0].stats, false);
    assert.deepEqual(b[1].keys, ["op/cpu/util"]);
    assert.equal(b[1].stats, true);
    assert.deepEqual(b[2].keys, []);
    assert.equal(b[2].error, undefined);
    assert.deepEqual(b[3].keys, []);
    assert.match(b[3].error, /^pattern tf\/\(: /);
    assert.deepEqual(b[4].keys, [], "the empty pattern matches nothing");
    assert.ok(view.keyRegex("(?i)TF/Train/Loss").test("tf/train/loss"));
  });
});

describe("chart axes", () => {
  /** The ticks an axis over [min, max] shows: the first step that leaves `space` between
   * ticks on a `px` long axis (as uPlot chooses), the splits, and their labels. */
  const axis = (f, min, max, px = 160, space = 30) => {
    const incrs = axes.yIncrs(f)(min, max);
    const step = incrs.find((i) => (i / (max - min)) * px >= space);
    const splits = axes.splitsFor(min, max, step);
    return { step, splits, labels: axes.yTicks(f, splits, step) };
  };
  const UNITS = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 };
  const bytesBack = (label) => {
    const [n, unit] = label.split(" ");
    return Number(n) * UNITS[unit];
  };

  test("bytes read in one binary unit per axis, at round steps of it, in order", () => {
    // A process of 19.3 MB RSS and 35 MB VMS; the machine's memory (25 GB, 1.2 GB used).
    for (const [min, max, unit] of [[18e6, 36e6, "MiB"], [0, 26e9, "GiB"], [0, 1, "B"], [1000, 900_000, "KiB"]]) {
      const { splits, labels } = axis({ unit: "bytes" }, min, max);
      assert.ok(splits.length >= 2, `${min}..${max}: ${labels}`);
      assert.ok(labels.every((l) => l.endsWith(` ${unit}`)), `${min}..${max}: ${labels}`);
      const back = labels.map(bytesBack);
      back.forEach((b, i) => assert.ok(Math.abs(b - splits[i]) <= 0.5 * (splits[1] - splits[0]), `${labels[i]} for ${splits[i]}`));
      for (let i = 1; i < back.length; i++) assert.ok(back[i] > back[i - 1], `${labels} in order`);
      assert.ok(splits[0] >= min && splits.at(-1) <= max);
    }
    assert.deepEqual(axis({ unit: "bytes" }, 18e6, 36e6).labels, ["20 MiB", "25 MiB", "30 MiB"]);
    assert.deepEqual(axis({ unit: "bytes" }, 18e6, 36e6, 400).labels, ["18 MiB", "20 MiB", "22 MiB", "24 MiB", "26 MiB", "28 MiB", "30 MiB", "32 MiB", "34 MiB"]);
  });

  test("fractions read as percents with the decimals their step needs", () => {
    assert.deepEqual(axis({ unit: "fraction" }, 0.9944, 1.0006).labels, ["99.6%", "99.8%", "100.0%"]);
    assert.deepEqual(axis({ unit: "fraction" }, 0.9944, 1.0006, 200).labels, ["99.5%", "99.6%", "99.7%", "99.8%", "99.9%", "100.0%"]);
    assert.deepEqual(axis({ unit: "fraction" }, 0, 1).labels, ["0%", "20%", "40%", "60%", "80%", "100%"]);
  });

  test("a Guild file's format, with decimals added while two ticks read alike", () => {
    assert.deepEqual(axis({ pattern: "0.00%" }, 0.5, 0.9).labels, ["50.00%", "60.00%", "70.00%", "80.00%", "90.00%"]);
    const fine = axis({ pattern: "%" }, 0.501, 0.504);
    assert.equal(new Set(fine.labels).size, fine.labels.length, fine.labels.join(" "));
    assert.deepEqual(axis({ pattern: "0.0 b" }, 18e6, 36e6).labels.slice(0, 2), ["20.0 MB", "25.0 MB"]);
    assert.deepEqual(axis({ pattern: "0.0 ib" }, 18e6, 36e6).labels, ["20.0 MiB", "25.0 MiB", "30.0 MiB"]);
    assert.ok(axes.yIncrs({ pattern: "00:00:00" })(0, 10).every((s) => s >= 1), "no tick between seconds");
  });

  test("plain numbers, durations and steps stay distinct and in order", () => {
    assert.deepEqual(axes.plainTicks([0, 0.5, 1, 1.5], 0.5), ["0.0", "0.5", "1.0", "1.5"]);
    assert.deepEqual(axes.plainTicks([12000000, 14000000], 2000000), ["1.2e+7", "1.4e+7"]);
    assert.deepEqual(axes.plainTicks([-0.0000001, 0, 0.0000001], 0.0000001), ["-1e-7", "0", "1e-7"]);
    assert.deepEqual(axes.durationTicks([0, 30, 60, 90], 30), ["0:00", "0:30", "1:00", "1:30"]);
    assert.deepEqual(axes.durationTicks([0.5, 1, 1.5], 0.5), ["0:00.5", "0:01.0", "0:01.5"]);
    assert.deepEqual(axes.durationTicks([-1, 0, 1], 1), ["-0:01", "0:00", "0:01"]);
    assert.deepEqual(axes.splitsFor(0.1, 0.35, 0.1), [0.1, 0.2, 0.3]);
    assert.deepEqual(axes.splitsFor(1, 1, 1e-30), [], "a step too small for the range");
  });
});

describe("queue and sweeps", () => {
  const QUEUED = 7;
  const row = (id, status, priority, createdMs, sweep = "", trial = 0) => ({ id, status, priority, createdMs, sweep, trial });

  test("queued runs are ranked by priority, then by when they asked, as guildd ranks them", () => {
    const runs = [row("a", QUEUED, 0, 10), row("b", 2, 0, 5), row("c", QUEUED, 5, 30), row("d", QUEUED, 0, 20)];
    assert.deepEqual([...queue.queuePositions(runs)], [["c", 1], ["a", 2], ["d", 3]]);
  });

  test("a sweep's trials in trial order", () => {
    const runs = [row("t2", 3, 0, 2, "s", 2), row("x", 3, 0, 1), row("t1", 3, 0, 1, "s", 1)];
    assert.deepEqual(queue.trialsBySweep(runs).get("s").map((r) => r.id), ["t1", "t2"]);
  });

  test("the best so far follows the sweep's direction", () => {
    const points = [{ n: 2, v: 3 }, { n: 1, v: 5 }, { n: 3, v: 4 }, { n: 4, v: 1 }];
    assert.deepEqual(queue.bestSoFar(points, false).map((p) => p.v), [5, 3, 3, 1]);
    assert.deepEqual(queue.bestSoFar(points, true).map((p) => p.v), [5, 5, 5, 5]);
  });
});

describe("markdown (the Text panel)", () => {
  test("blocks: headings, tables, lists, code, quotes, paragraphs", () => {
    const blocks = md.parseMarkdown("# Step 1\n\n| a | b |\n|---|---|\n| 1 | **2** |\n\n- x\n- *y*\n\n```\n<b>code</b>\n```\n\n> said\n\none\ntwo");
    assert.deepEqual(
      blocks.map((b) => b.t),
      ["h", "table", "ul", "pre", "quote", "p"],
    );
    assert.deepEqual(blocks[1].rows[0][1], [{ t: "strong", children: [{ t: "text", text: "2" }] }]);
    assert.equal(blocks[3].text, "<b>code</b>");
    assert.deepEqual(blocks[5].children, [{ t: "text", text: "one" }, { t: "text", text: " " }, { t: "text", text: "two" }]);
  });

  test("raw HTML is text; links keep http(s) and mailto only; images never load", () => {
    assert.deepEqual(md.inline("<script>alert(1)</script>"), [{ t: "text", text: "<script>alert(1)</script>" }]);
    assert.deepEqual(md.inline("[x](javascript:alert(1))"), [{ t: "text", text: "x" }]);
    assert.deepEqual(md.inline("[x](https://example.com/a)"), [{ t: "link", href: "https://example.com/a", children: [{ t: "text", text: "x" }] }]);
    assert.deepEqual(md.inline("![cat](https://example.com/cat.png)"), [{ t: "text", text: "[image: cat]" }]);
    assert.deepEqual(md.inline("`a*b*` \\*c\\*"), [{ t: "code", text: "a*b*" }, { t: "text", text: " *c*" }]);
    assert.equal(md.safeHref("data:text/html,x"), null);
  });
});

describe("histogram percentiles (Distributions)", () => {
  test("linear within buckets, TensorBoard's basis points", () => {
    const h = { step: 0, left: [0, 1, 2], right: [1, 2, 3], counts: [1, 2, 1] };
    const p = hist.percentiles(h, [0, 0.25, 0.5, 0.75, 1]);
    assert.deepEqual(p, [0, 1, 1.5, 2, 3]);
    assert.equal(hist.BASIS_POINTS.length, 9);
    assert.ok(hist.percentiles({ step: 0, left: [], right: [], counts: [] }).every(Number.isNaN));
  });
});

describe("statuses", () => {
  test("a queued run (a Slurm job Slurm holds pending) is named and live", () => {
    assert.equal(fmt.statusName(pb.RunStatus.QUEUED), "queued");
    assert.equal(fmt.isLive(pb.RunStatus.QUEUED), true);
    assert.equal(fmt.isLive(pb.RunStatus.FAILED), false);
    assert.ok(Object.values(fmt.STATUS_NAMES).includes("queued"), "the runs page's status filter offers it");
  });
});
