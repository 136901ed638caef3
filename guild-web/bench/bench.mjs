// Dashboard benchmarks in headless Chromium against a real guildd:
//   1. the runs page with 10,000 runs in the index (bench/fill_index.py): time to the
//      first rows, to interactive (a filter keystroke answered), to all runs loaded;
//   2. an overlay chart of 20 runs x 100,000 steps (make_overlay_runs.py): time to drawn,
//      and zoom refetches (GetSeries buckets for the new range) to redrawn.
//
//   node bench/bench.mjs [--runs 10000] [--overlay 20] [--steps 100000]
// Needs ../target/debug/guildd (or GUILD_BIN_DIR) and /usr/bin/chromium.

import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { cleanup, Daemon, launchBrowser, OUT, requireBinaries, ROOT, screenshot, tempBase, WEB } from "../tests/harness.mjs";

const { values: opt } = parseArgs({
  options: {
    runs: { type: "string", default: "10000" },
    overlay: { type: "string", default: "20" },
    steps: { type: "string", default: "100000" },
  },
});

requireBinaries();
const base = tempBase("bench");
const daemon = new Daemon(base);
const results = {};
let context;
try {
  // An index to fill: start once so guildd creates it, stop, fill, start again.
  await daemon.start();
  await daemon.stop();
  const indexDb = join(daemon.dataDir, "index.db");
  let t = performance.now();
  execFileSync("python3", [join(ROOT, "bench", "fill_index.py"), indexDb, opt.runs], { stdio: "inherit" });
  const ids = execFileSync(
    "python3",
    [join(WEB, "bench", "make_overlay_runs.py"), indexDb, join(base, "overlay-runs"), opt.overlay, opt.steps],
    { encoding: "utf8" },
  ).trim().split("\n");
  console.log(`filled in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  await daemon.start();
  const url = (hash) => `${daemon.origin}/?token=${encodeURIComponent(daemon.token)}${hash}`;

  context = await launchBrowser(base);
  const page = await context.newPage();

  // ---- 1. runs page
  const runsRuns = [];
  for (let i = 0; i < 3; i++) {
    await page.goto("about:blank");
    await page.goto(url("#/runs"));
    await page.waitForSelector(".run-row", { timeout: 60_000 });
    const firstRows = await page.evaluate(() => performance.now());
    // Interactive: a keystroke in the filter is answered while the rest streams in.
    await page.fill("#runs-filter", "bench-000123");
    await page.waitForFunction(() => document.querySelectorAll(".run-row").length === 1, null, { timeout: 60_000 });
    const interactive = await page.evaluate(() => performance.now());
    await page.fill("#runs-filter", "");
    await page.waitForSelector("runs-page[data-complete]", { timeout: 120_000 });
    const complete = await page.evaluate(() => performance.now());
    const total = Number(await page.getAttribute("runs-page", "data-total"));
    // Scroll to the end: rows render at once (only those in view exist).
    const scroll = await page.evaluate(async () => {
      const s = document.querySelector(".vscroll");
      const t0 = performance.now();
      s.scrollTop = s.scrollHeight;
      s.dispatchEvent(new Event("scroll"));
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      return { ms: performance.now() - t0, rowsInDom: document.querySelectorAll(".run-row").length };
    });
    runsRuns.push({ firstRows, interactive, complete, total, scrollMs: scroll.ms, rowsInDom: scroll.rowsInDom });
  }
  await screenshot(page, "bench-runs");
  results.runsPage = runsRuns;

  // ---- 2. overlay chart
  const overlayRuns = [];
  for (let i = 0; i < 3; i++) {
    await page.goto("about:blank");
    await page.goto(url(`#/compare?runs=${ids.join(",")}&key=loss`));
    await page.waitForFunction(() => document.querySelector("#overlay-chart")?.dataset.state === "ready", null, { timeout: 120_000 });
    const drawn = await page.evaluate(() => ({
      sinceNavigation: performance.now(),
      chartLoadToDraw: Number(document.querySelector("#overlay-chart").dataset.drawnMs),
      points: Number(document.querySelector("#overlay-chart").dataset.points),
      samples: Number(document.querySelector("#overlay-chart").dataset.samples),
    }));
    const zooms = [];
    for (const [a, b] of [[20000, 40000], [25000, 26000], [60000, 99000], [1000, 1500]]) {
      zooms.push(await page.evaluate(([a, b]) => document.querySelector("#overlay-chart").zoomTo(a, b), [a, b]));
    }
    const zoomed = await page.evaluate(() => Number(document.querySelector("#overlay-chart").dataset.points));
    overlayRuns.push({ ...drawn, zoomsMs: zooms, pointsAfterZoom: zoomed });
  }
  await page.locator("#overlay-chart").scrollIntoViewIfNeeded();
  await screenshot(page, "bench-overlay");
  results.overlay = overlayRuns;

  const r = (x) => Math.round(x);
  console.log("\nruns page, %d runs (ms since navigation start), 3 loads:", runsRuns[0].total);
  for (const x of runsRuns) {
    console.log(`  first rows ${r(x.firstRows)}  interactive ${r(x.interactive)}  all loaded ${r(x.complete)}  scroll to end ${r(x.scrollMs)} (${x.rowsInDom} rows in DOM)`);
  }
  console.log("overlay, %d runs x %s steps, 3 loads:", ids.length, opt.steps);
  for (const x of overlayRuns) {
    console.log(`  drawn ${r(x.sinceNavigation)} since navigation (${r(x.chartLoadToDraw)} chart fetch to draw), ${x.points} points for ${x.samples} samples; zoom refetch+draw ${x.zoomsMs.map(r).join(", ")}`);
  }
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, "bench.json"), JSON.stringify(results, null, 2));
} finally {
  await context?.close().catch(() => {});
  await daemon.stop();
  cleanup(base);
}
