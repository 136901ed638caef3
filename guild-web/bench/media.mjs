// The run page with media in headless Chromium against a real guildd: one run of
// bench/media_op.py (10 image tags x 1,000 steps of 64x64 PNGs and 20 histogram tags x
// 1,000 steps, tensorboardX), then, for each of three page loads:
//   - first paint of the media: from navigation start to the first image shown and to all
//     10 image tags' newest image shown (they fill the first screen); the Histograms and
//     Distributions sections, scrolled to, until every card in view is drawn (cards read
//     their tag when near the viewport);
//   - scrubbing: the first image tag's slider moved one step at a time (60 steps back
//     from the newest), and then to 40 random steps; for each, the time from the slider's
//     input event to the new image decoded and the next frame painted; the three slowest
//     split into until shown / decode / frame, with when their image was asked for and
//     answered (negative: before the input), and the page's long tasks (over 50 ms) from
//     the scrub's start.
//
//   node bench/media.mjs [--steps 1000] [--images 10] [--hists 20] [--loads 3]
// Needs ../target/debug/guildd (or GUILD_BIN_DIR), /usr/bin/chromium, python3 with
// tensorboardX and numpy. Results also go to test-output/bench-media.json.

import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { cleanup, Daemon, launchBrowser, OUT, requireBinaries, tempBase, WEB } from "../tests/harness.mjs";

const { values: opt } = parseArgs({
  options: {
    steps: { type: "string", default: "1000" },
    images: { type: "string", default: "10" },
    hists: { type: "string", default: "20" },
    loads: { type: "string", default: "3" },
  },
});
const [steps, images, hists, loads] = [opt.steps, opt.images, opt.hists, opt.loads].map(Number);

requireBinaries();
const base = tempBase("bench-media");
const daemon = new Daemon(base);
const stats = (v) => {
  const s = [...v].sort((a, b) => a - b);
  const q = (f) => s[Math.min(s.length - 1, Math.floor(f * s.length))];
  return { n: s.length, min: s[0], median: q(0.5), p95: q(0.95), max: s[s.length - 1] };
};
const r1 = (x) => Math.round(x * 10) / 10;

try {
  await daemon.start();
  const dir = join(base, "media");
  mkdirSync(dir);
  copyFileSync(join(WEB, "bench", "media_op.py"), join(dir, "media_op.py"));
  writeFileSync(join(dir, "Guild"), `[project]\nname = MediaBench\nstats_interval = 0\n\n[model "m"]\ntrain = media_op\n\n[flags]\nimages = ${images}\nhists = ${hists}\nsteps = ${steps}\n`);
  let t0 = Date.now();
  const out = await daemon.guild(["-C", dir, "train"], { timeout: 1_800_000 });
  const id = /^Run (\S+)/m.exec(out.stderr)[1];
  console.log(`# run ${id}: ${images} image tags and ${hists} histogram tags x ${steps} steps, written and stored in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const context = await launchBrowser(base);
  const results = [];
  for (let load = 0; load < loads; load++) {
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.addInitScript(() => {
      window.__long = [];
      new PerformanceObserver((l) => window.__long.push(...l.getEntries().map((e) => [e.startTime, e.duration]))).observe({ type: "longtask", buffered: true });
    });
    await page.goto(`${daemon.origin}/?token=${encodeURIComponent(daemon.token)}#/runs/${id}`);
    const last = String(steps - 1);
    const imageSel = 'details[data-section="images"] media-card';
    await page.waitForFunction(
      ([sel, last, n]) => [...document.querySelectorAll(sel)].filter((c) => c.dataset.shownStep === last).length === n,
      [imageSel, last, images],
      { timeout: 120_000, polling: "raf" },
    );
    const paint = await page.evaluate((sel) => {
      const nav = performance.getEntriesByType("navigation")[0]?.startTime ?? 0;
      const shown = [...document.querySelectorAll(sel)].map((c) => Number(c.dataset.shownAt) - nav);

      const res = performance.getEntriesByType("resource");
      const calls = (name) => res.filter((e) => e.name.includes(name));
      const end = (name) => Math.max(0, ...calls(name).map((e) => e.responseEnd - nav));
      return {
        firstImage: Math.min(...shown),
        allImages: Math.max(...shown),

        listMediaAnswered: end("MediaService/ListMedia"),
        getMediaCalls: calls("MediaService/GetMedia").length,
        lastGetMediaAnswered: end("MediaService/GetMedia"),
        longestGetMedia: Math.max(0, ...calls("MediaService/GetMedia").map((e) => e.duration)),
      };
    }, imageSel);
    // Scrub the first image tag: step by step back from the newest, then random jumps.
    const scrub = await page.evaluate(
      async ([sel, steps]) => {
        const card = document.querySelector(sel);
        const slider = card.querySelector("input.media-slider");
        const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
        const times = { sequential: [], random: [], parts: [] };
        const go = async (pos) => {
          const t = performance.now();
          slider.value = String(pos);
          slider.dispatchEvent(new Event("input", { bubbles: true }));
          const want = String(pos);
          while (card.dataset.shownStep !== want) await new Promise((r) => setTimeout(r, 0));
          const shown = performance.now();
          const img = card.querySelector("img.media-image");
          await img.decode().catch(() => {});
          const decoded = performance.now();
          await frame();
          const end = performance.now();
          // The image's own request: when it was asked for and answered, from the input.
          const entry = performance
            .getEntriesByType("resource")
            .findLast((e) => e.name.endsWith(`/image/${img.dataset.seq}`));
          const asked = entry ? entry.startTime - t : NaN;
          const answered = entry ? entry.responseEnd - t : NaN;
          times.parts.push({ pos, ms: end - t, shown: shown - t, decode: decoded - shown, frame: end - decoded, asked, answered });
          return end - t;
        };
        times.scrubStart = performance.now();
        for (let pos = steps - 2; pos >= steps - 61; pos--) times.sequential.push(await go(pos));
        times.long = window.__long.map(([s, d]) => [Math.round(s - times.scrubStart), Math.round(d)]);
        let seed = 7;
        for (let i = 0; i < 40; i++) {
          seed = (seed * 1103515245 + 12345) % 2147483648;
          times.random.push(await go(seed % steps));
        }
        return times;
      },
      [imageSel, steps],
    );
    // The Histograms and the Distributions sections scrolled to: until every card in view
    // is drawn (they read their tags once near the viewport).
    const sections = {};
    for (const id of ["histograms", "distributions"]) {
      sections[id] = await page.evaluate(async (id) => {
        const t = performance.now();
        document.querySelector(`details[data-section="${id}"]`).scrollIntoView();
        const inView = () =>
          [...document.querySelectorAll(`details[data-section="${id}"] media-histogram`)].filter((c) => {
            const r = c.getBoundingClientRect();
            return r.top < innerHeight && r.bottom > 0;
          });
        while (!inView().every((c) => Number(c.dataset.drawn) > 0)) await new Promise((r) => requestAnimationFrame(r));
        return { cards: inView().length, ms: Math.round((performance.now() - t) * 10) / 10 };
      }, id);
    }
    const r = {
      load,
      sectionScrolledTo: sections,
      paint: Object.fromEntries(Object.entries(paint).map(([k, v]) => [k, r1(v)])),
      scrubSequential: Object.fromEntries(Object.entries(stats(scrub.sequential)).map(([k, v]) => [k, r1(v)])),
      scrubRandom: Object.fromEntries(Object.entries(stats(scrub.random)).map(([k, v]) => [k, r1(v)])),
      // The three slowest changes, split into: until the image was shown (its load
      // event), its decode, and the next frame.
      slowest: [...scrub.parts]
        .sort((a, b) => b.ms - a.ms)
        .slice(0, 3)
        .map((p) => Object.fromEntries(Object.entries(p).map(([k, v]) => [k, r1(v)]))),
      longTasks: scrub.long,
      load1: r1(loadavg()[0]),
      errors,
    };
    results.push(r);
    console.log(JSON.stringify(r));
    await page.close();
  }
  await context.close();
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, "bench-media.json"), JSON.stringify(results, null, 2));
} finally {
  await daemon.stop();
  cleanup(base);
}
