// Dashboard benchmarks in headless Chromium against a real guildd:
//   1. the runs page with 10,000 runs in the index (bench/fill_index.py): time to the
//      first rows, to interactive (a filter keystroke answered), to all runs loaded;
//   2. an overlay chart of 20 runs x 100,000 steps (real runs of bench/overlay_op.py):
//      time to drawn, and zoom refetches (GetSeries buckets for the new range) to redrawn;
//   3. output floods: runs that print 100,000 (--flood) lines at once, one finished
//      before the page opens (read back at once) and one that starts printing while the
//      page is open and following it: time until the page shows them all, and the gaps
//      between animation frames meanwhile (a hung tab has long gaps).
//
//   node bench/bench.mjs [--runs 10000] [--overlay 20] [--steps 100000] [--flood 100000]
//                        [--only runs|overlay|output] [--dist DIR]
// Needs ../target/debug/guildd (or GUILD_BIN_DIR) and /usr/bin/chromium. --dist serves
// the page's files (index.html, assets/) from DIR instead of those built into guildd, so
// two bundles can be compared against one guildd (`--dist dist` for the working tree's,
// or a folder with an older dist/).

import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { loadavg } from "node:os";
import { BIN, cleanup, Daemon, launchBrowser, liveProject, OUT, requireBinaries, ROOT, screenshot, tempBase, WEB } from "../tests/harness.mjs";

const { values: opt } = parseArgs({
  options: {
    runs: { type: "string", default: "10000" },
    overlay: { type: "string", default: "20" },
    steps: { type: "string", default: "100000" },
    flood: { type: "string", default: "100000" },
    only: { type: "string", default: "" },
    dist: { type: "string", default: "" },
  },
});

/** Starts `count` runs of bench/overlay_op.py (`steps` steps each, four at a time) and
 * resolves with their ids once each has ended (`guild watch` follows a run to its end). */
async function overlayRuns(daemon, count, steps) {
  const dir = join(base, "overlay");
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(WEB, "bench", "overlay_op.py"), join(dir, "overlay_op.py"));
  writeFileSync(join(dir, "Guild"), `[project]\nname = Overlay\n\n[model "overlay"]\ntrain = overlay_op\n\n[flags]\nsteps = ${steps}\nlearning_rate = 0.01\nbatch_size = 64\nseed = 0\n`);
  const ids = [];
  const queue = Array.from({ length: count }, (_, i) => i);
  const worker = async () => {
    for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
      const lr = [0.1, 0.03, 0.01, 0.003][i % 4];
      const batch = [32, 64, 128][i % 3];
      const out = await daemon.guild(["-C", dir, "train", "--background", "--label", `lr=${lr}`, `learning_rate=${lr}`, `batch_size=${batch}`, `seed=${i}`]);
      const id = out.stdout.trim();
      await new Promise((resolve, reject) => {
        const p = spawn(join(BIN, "guild"), ["watch", id], { env: daemon.env, stdio: "ignore" });
        p.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`guild watch ${id} exited ${code}`))));
      });
      ids[i] = id;
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  return ids;
}

requireBinaries();
const base = tempBase("bench");
const daemon = new Daemon(base);
const results = {};
let context;
try {
  // An index to fill: start once so guildd creates it (and records the overlay's runs),
  // stop, fill, start again.
  let t = performance.now();
  const indexDb = join(daemon.dataDir, "index.db");
  const overlayWanted = !opt.only || opt.only === "overlay";
  await daemon.start();
  // The overlay's runs are real runs of a real op, recorded by guildd as any run is.
  const ids = overlayWanted ? await overlayRuns(daemon, Number(opt.overlay), Number(opt.steps)) : [];
  await daemon.stop();
  execFileSync("python3", [join(ROOT, "bench", "fill_index.py"), indexDb, opt.runs], { stdio: "inherit" });
  console.log(`runs made and index filled in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  await daemon.start();
  const url = (hash) => `${daemon.origin}/?token=${encodeURIComponent(daemon.token)}${hash}`;

  context = await launchBrowser(base);
  const page = await context.newPage();
  if (opt.dist) {
    const dist = resolve(opt.dist);
    const types = { html: "text/html", js: "text/javascript", css: "text/css" };
    await page.route(/^http:\/\/127\.0\.0\.1:\d+\/(assets\/app\.(js|css))?(\?.*)?$/, (route) => {
      const path = new URL(route.request().url()).pathname;
      const file = join(dist, path === "/" ? "index.html" : path.slice(1));
      route.fulfill({ body: readFileSync(file), contentType: types[file.split(".").pop()] });
    });
    console.log(`page files from ${dist} (--dist)`);
  }

  // ---- 1. runs page
  const runsRuns = [];
  for (let i = 0; i < (opt.only && opt.only !== "runs" ? 0 : 3); i++) {
    await page.goto("about:blank");
    await page.goto(url("#/runs"));
    await page.waitForSelector(".run-row", { timeout: 60_000 });
    const firstRows = Number(await page.getAttribute("runs-page", "data-first-rows-ms"));
    const timing = await page.evaluate(() =>
      performance.getEntriesByType("resource").map((e) => `${e.name.split("/").pop().split("?")[0]} ${Math.round(e.startTime)}-${Math.round(e.responseEnd)}`).join(", "),
    );
    if (process.env.BENCH_VERBOSE) console.log(`  resources: ${timing}`);
    // Interactive: a filter typed right after the first rows is answered (in the page's
    // own clock: the moment the main thread took the input, and the moment it answered).
    const wanted = `bench-${String(Math.min(123, Number(opt.runs) - 1)).padStart(6, "0")}`;
    const { inputAt, interactive } = await page.evaluate(async (wanted) => {
      const input = document.querySelector("#runs-filter");
      const inputAt = performance.now();
      input.value = wanted;
      input.dispatchEvent(new Event("input", { bubbles: true }));
      while (performance.now() - inputAt < 60_000) {
        await new Promise((r) => requestAnimationFrame(r));
        if (document.querySelectorAll(".run-row").length === 1) return { inputAt, interactive: performance.now() };
      }
      return { inputAt, interactive: NaN };
    }, wanted);
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
    runsRuns.push({ firstRows, inputAt, interactive, complete, total, scrollMs: scroll.ms, rowsInDom: scroll.rowsInDom });
  }
  if (runsRuns.length) await screenshot(page, "bench-runs");
  results.runsPage = runsRuns;

  // ---- 2. overlay chart
  const overlayResults = [];
  for (let i = 0; i < (ids.length ? 3 : 0); i++) {
    await page.goto("about:blank");
    await page.goto(url(`#/compare?runs=${ids.join(",")}&key=loss`));
    await page.waitForFunction(() => document.querySelector("#overlay-chart")?.dataset.state === "ready", null, { timeout: 120_000 });
    const drawn = await page.evaluate(() => ({
      sinceNavigation: Number(document.querySelector("#overlay-chart").dataset.drawnAt),
      chartLoadToDraw: Number(document.querySelector("#overlay-chart").dataset.drawnMs),
      net: Number(document.querySelector("#overlay-chart").dataset.netMs),
      points: Number(document.querySelector("#overlay-chart").dataset.points),
      samples: Number(document.querySelector("#overlay-chart").dataset.samples),
    }));
    if (process.env.BENCH_VERBOSE) {
      console.log(
        "  resources: " +
          (await page.evaluate(() =>
            performance.getEntriesByType("resource").map((e) => `${e.name.split("/").pop().split("?")[0]} ${Math.round(e.startTime)}-${Math.round(e.responseEnd)}`).join(", "),
          )),
      );
    }
    const zooms = [];
    for (const [a, b] of [[20000, 40000], [25000, 26000], [60000, 99000], [1000, 1500]]) {
      zooms.push(
        await page.evaluate(async ([a, b]) => {
          const el = document.querySelector("#overlay-chart");
          performance.clearResourceTimings();
          const t0 = performance.now();
          const ms = await el.zoomTo(a, b);
          // Where the time went: per GetSeries request, waiting for a connection (queue),
          // the daemon's answer (server) and the transfer; the rest is the page's own work.
          const rs = performance.getEntriesByType("resource").filter((e) => e.name.endsWith("/GetSeries") && e.startTime >= t0);
          const max = (f) => Math.round(Math.max(0, ...rs.map(f)));
          return {
            ms,
            net: Number(el.dataset.netMs),
            requests: rs.length,
            queue: max((e) => e.requestStart - e.startTime),
            server: max((e) => e.responseStart - e.requestStart),
            lastEnd: max((e) => e.responseEnd - t0),
          };
        }, [a, b]),
      );
    }
    const zoomed = await page.evaluate(() => Number(document.querySelector("#overlay-chart").dataset.points));
    overlayResults.push({ ...drawn, zoomsMs: zooms, pointsAfterZoom: zoomed });
  }
  if (overlayResults.length) {
    await page.locator("#overlay-chart").scrollIntoViewIfNeeded();
    await screenshot(page, "bench-overlay");
  }
  results.overlay = overlayResults;

  // ---- 3. output floods: N lines printed at once, read back after the run ended, and
  // streamed live into an open page that follows them.
  const floods = [];
  if (!opt.only || opt.only === "output") {
    const live = liveProject(base);
    const n = Number(opt.flood);
    // Every gap between animation frames from the moment the page starts.
    await page.addInitScript(() => {
      window.__frameGaps = [];
      let last = performance.now();
      const tick = (now) => {
        window.__frameGaps.push(now - last);
        last = now;
        requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });
    for (const mode of ["finished", "live"]) {
      const args = ["-C", live, "train", "--background", `burst=${n}`, "seconds=1", "delay=0.1"];
      // Live: the run waits until the page is open, then prints.
      if (mode === "live") args.push("pause=3");
      const runId = (await daemon.guild(args)).stdout.trim();
      if (mode === "finished") {
        await new Promise((resolve) => spawn(join(BIN, "guild"), ["watch", runId], { env: daemon.env, stdio: "ignore" }).on("exit", resolve));
      }
      await page.goto("about:blank");
      let cdp = null;
      if (process.env.BENCH_PROFILE) {
        cdp = await page.context().newCDPSession(page);
        await cdp.send("Profiler.enable");
        await cdp.send("Profiler.start");
      }
      await page.goto(url(`#/runs/${runId}`));
      await page.waitForSelector("output-view", { timeout: 60_000 });
      const flood = await page.evaluate(async (want) => {
        for (;;) {
          await new Promise((r) => requestAnimationFrame(r));
          const now = performance.now();
          const out = document.querySelector("output-view").dataset;
          const n = Number(out.lines ?? 0);
          if (n >= want || now > 300_000) {
            const gaps = [...window.__frameGaps].sort((a, b) => b - a);
            return {
              ms: n >= want ? now : NaN,
              worstFrameGap: gaps[0],
              p99FrameGap: gaps[Math.floor(gaps.length / 100)],
              framesOver100: gaps.filter((g) => g > 100).length,
              frames: gaps.length,
              lines: n,
              kept: Number(out.kept),
              inDom: document.querySelectorAll(".out-line").length,
            };
          }
        }
      }, n);
      floods.push({ mode, ...flood });
      if (cdp) {
        const { profile } = await cdp.send("Profiler.stop");
        const self = new Map();
        const dt = profile.timeDeltas;
        const byId = new Map(profile.nodes.map((n) => [n.id, n]));
        profile.samples.forEach((id, i) => {
          const n = byId.get(id);
          const k = `${n.callFrame.functionName || "(anon)"} ${n.callFrame.url.split("/").pop().split("?")[0]}:${n.callFrame.lineNumber}:${n.callFrame.columnNumber}`;
          self.set(k, (self.get(k) ?? 0) + (dt[i] ?? 0) / 1000);
        });
        console.log([...self].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([k, v]) => `  ${Math.round(v)} ms ${k}`).join("\n"));
      }
    }
    results.outputFlood = floods;
  }

  const r = (x) => Math.round(x);
  console.log(`\nguildd: ${BIN}; load average ${loadavg().map((x) => x.toFixed(1)).join(" ")}`);
  if (runsRuns.length) console.log("runs page, %d runs (ms since navigation start), 3 loads:", runsRuns[0].total);
  for (const x of runsRuns) {
    console.log(`  first rows ${r(x.firstRows)}  filter typed at ${r(x.inputAt)} answered at ${r(x.interactive)}  all loaded ${r(x.complete)}  scroll to end ${r(x.scrollMs)} (${x.rowsInDom} rows in DOM)`);
  }
  if (overlayResults.length) console.log("overlay, %d runs x %s steps, 3 loads:", ids.length, opt.steps);
  for (const x of overlayResults) {
    console.log(
      `  drawn ${r(x.sinceNavigation)} ms since navigation; chart: ${r(x.chartLoadToDraw)} ms from its first request to drawn, of which ${r(x.net)} ms waiting for GetSeries; ${x.points} points for ${x.samples} samples`,
    );
    console.log(`  zoom refetch+redraw (of which waiting for GetSeries): ${x.zoomsMs.map((z) => `${r(z.ms)} (${r(z.net)})`).join(", ")}`);
    if (process.env.BENCH_VERBOSE) {
      for (const z of x.zoomsMs) {
        console.log(`    ${z.requests} GetSeries; longest queue ${z.queue} ms, longest answer ${z.server} ms, last byte at ${z.lastEnd} ms, drawn at ${r(z.ms)} ms`);
      }
    }
  }
  for (const f of floods) {
    console.log(
      `output flood (${f.mode === "live" ? "printed while the page follows" : "run finished, read back"}): ${f.lines} lines shown ${r(f.ms)} ms after navigation; frame gaps: longest ${r(f.worstFrameGap)} ms, p99 ${r(f.p99FrameGap)} ms, ${f.framesOver100} of ${f.frames} over 100 ms; ${f.kept} lines kept, ${f.inDom} in the DOM`,
    );
  }
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, "bench.json"), JSON.stringify(results, null, 2));
} finally {
  await context?.close().catch(() => {});
  await daemon.stop();
  cleanup(base);
}
