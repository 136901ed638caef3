// The pure parts (chart data, chart grouping, formatting), bundled from src/ with
// esbuild and run in Node: no browser or daemon needed.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, before, describe, test } from "node:test";
import { build } from "esbuild";
import { WEB } from "./harness.mjs";

let dir, cd, groups, fmt;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "guild-web-unit-"));
  for (const name of ["chart-data", "groups", "format"]) {
    await build({
      absWorkingDir: WEB,
      entryPoints: [`src/${name}.ts`],
      outfile: join(dir, `${name}.mjs`),
      bundle: true,
      format: "esm",
      platform: "neutral",
      logLevel: "error",
    });
  }
  cd = await import(pathToFileURL(join(dir, "chart-data.mjs")).href);
  groups = await import(pathToFileURL(join(dir, "groups.mjs")).href);
  fmt = await import(pathToFileURL(join(dir, "format.mjs")).href);
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
