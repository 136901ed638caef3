// Media from event files on the run page and the compare page: a real guildd, runs of
// tests/e2e/media/tbx_media.py (images of a different height at each step, histograms,
// Markdown text with a <script>, audio, PR curves written by tensorboardX), headless
// Chromium.

import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  cleanup,
  Daemon,
  launchBrowser,
  requireBinaries,
  ROOT,
  screenshot,
  skipReason,
  tempBase,
  tensorboardxSkipReason,
  watchPage,
} from "./harness.mjs";

const skip = skipReason() ?? tensorboardxSkipReason();
const WAIT = { timeout: 60_000 };

describe("media from event files", { skip: skip ?? false }, () => {
  let base, daemon, context, page, project, first, second;
  const pageLog = [];
  const url = (hash) => `${daemon.origin}/?token=${encodeURIComponent(daemon.token)}${hash}`;
  const runId = (out) => /^Run (\S+)/m.exec(out.stderr)?.[1];

  before(async () => {
    requireBinaries();
    base = tempBase("media");
    daemon = new Daemon(base);
    await daemon.start();
    await daemon.checkServesDashboard();
    project = join(base, "media");
    mkdirSync(project);
    writeFileSync(
      join(project, "Guild"),
      '[project]\nname = media\nstats_interval = 0\n\n[model "m"]\ntrain = tbx_media\n\n[flags]\ncopy_tf2 = none\nwait = none\n',
    );
    copyFileSync(join(ROOT, "tests", "e2e", "media", "tbx_media.py"), join(project, "tbx_media.py"));
    first = runId(await daemon.guild(["-C", project, "train"]));
    second = runId(await daemon.guild(["-C", project, "train"]));
    assert.ok(first && second, "run ids");
    context = await launchBrowser(base);
    page = await context.newPage();
    watchPage(page, pageLog);
  });

  after(async () => {
    if (pageLog.length) console.log(`# page log:\n# ${pageLog.join("\n# ")}`);
    await context?.close().catch(() => {});
    await daemon?.stop();
    if (base) cleanup(base);
  });

  const image = 'details[data-section="images"] media-card[data-tag="tf/train/sample"]';

  test("the image at the chosen step shows, at its natural size", async () => {
    await page.goto(url(`#/runs/${first}`));
    await page.waitForSelector('run-media[data-loaded="true"]', WAIT);
    // Newest by default: step 4, 8 wide and 12 high.
    await page.waitForSelector(`${image}[data-shown-step="4"]`, WAIT);
    const natural = () =>
      page.$eval(`${image} img.media-image`, (img) => ({
        step: img.dataset.step,
        width: img.naturalWidth,
        height: img.naturalHeight,
        complete: img.complete,
      }));
    assert.deepEqual(await natural(), { step: "4", width: 8, height: 12, complete: true });
    // The slider chooses another step; its image is the one shown.
    await page.$eval(`${image} input.media-slider`, (s) => {
      s.value = "1";
      s.dispatchEvent(new Event("input", { bubbles: true }));
    });
    await page.waitForSelector(`${image}[data-shown-step="1"]`, WAIT);
    assert.deepEqual(await natural(), { step: "1", width: 8, height: 9, complete: true });
    assert.match(await page.$eval(`${image} .media-step`, (e) => e.textContent), /step 1 \(2 of 5\)/);
    await screenshot(page, "media-run-page");
  });

  test("the histogram panel draws every step, offset and overlaid, and the distribution", async () => {
    const hist = 'details[data-section="histograms"] media-histogram[data-tag="tf/train/weights"]';
    // Histogram cards read their tag once near the viewport.
    await page.locator(hist).scrollIntoViewIfNeeded();
    await page.waitForSelector(`${hist}[data-drawn="5"]`, WAIT);
    const inked = (sel) =>
      page.$eval(`${sel} canvas`, (c) => {
        const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
        return { n, width: c.width, height: c.height };
      });
    const offset = await inked(hist);
    assert.ok(offset.width > 100 && offset.height > 100 && offset.n > 1000, JSON.stringify(offset));
    await page.selectOption('details[data-section="histograms"] select.hist-mode', "overlay");
    await page.waitForSelector(`${hist} canvas[data-mode="overlay"]`, WAIT);
    assert.ok((await inked(hist)).n > 500);
    const dist = 'details[data-section="distributions"] media-histogram[data-tag="tf/train/weights"]';
    await page.locator(dist).scrollIntoViewIfNeeded();
    await page.waitForSelector(`${dist}[data-drawn="5"]`, WAIT);
    assert.ok((await inked(dist)).n > 1000);
  });

  test("text renders as Markdown, and its <script> is text, never run", async () => {
    const text = 'details[data-section="text"] media-card[data-tag="tf/train/note/text_summary"]';
    await page.waitForSelector(`${text}[data-shown-step="1"]`, WAIT);
    const md = await page.$eval(`${text} .md`, (box) => ({
      h1: box.querySelector("h1")?.textContent,
      cells: [...box.querySelectorAll("td")].map((td) => td.innerHTML),
      scripts: box.querySelectorAll("script").length,
      text: box.textContent,
    }));
    assert.equal(md.h1, "Step 1");
    assert.deepEqual(md.cells, ["1", "<strong>2</strong>"]);
    assert.equal(md.scripts, 0);
    assert.ok(md.text.includes("<script>window.pwned = 1</script>"), md.text);
    assert.equal(await page.evaluate(() => window.pwned), undefined);
    assert.equal(await page.$$eval("script", (s) => s.filter((x) => x.textContent.includes("pwned")).length), 0);
  });

  test("audio and PR curves show at their newest step", async () => {
    const audio = 'details[data-section="audio"] media-card[data-tag="tf/train/tone"]';
    await page.waitForSelector(`${audio} audio[data-step="1"]`, WAIT);
    const duration = await page.$eval(`${audio} audio`, async (a) => {
      if (a.readyState < 1) await new Promise((r) => a.addEventListener("loadedmetadata", r, { once: true }));
      return a.duration;
    });
    assert.ok(Math.abs(duration - 0.1) < 0.01, `duration ${duration}`);
    const pr = 'details[data-section="pr-curves"] media-card[data-tag="tf/train/pr"]';
    await page.waitForSelector(`${pr}[data-shown-step="2"] canvas.pr[data-drawn]`, WAIT);
    await page.locator('details[data-section="distributions"]').scrollIntoViewIfNeeded();
    await screenshot(page, "media-run-page-panels");
  });

  test("a live run's image card follows new steps while its slider is at the end", async () => {
    const go = join(base, "go");
    const out = await daemon.guild(["-C", project, "train", "--background", `wait=${go}`]);
    const live = out.stdout.trim();
    assert.ok(live, out.stderr);
    await page.goto(url(`#/runs/${live}`));
    // The op stops after step 1 until `go` exists: the card shows step 1, the newest.
    await page.waitForSelector(`${image}[data-shown-step="1"]`, WAIT);
    assert.ok(!existsSync(go));
    writeFileSync(go, "");
    // Steps 2..4 arrive through WatchMedia; the card moves to each newest one by itself.
    await page.waitForSelector(`${image}[data-shown-step="4"]`, WAIT);
    assert.deepEqual(
      await page.$eval(`${image} img.media-image`, (img) => [img.naturalWidth, img.naturalHeight]),
      [8, 12],
    );
    assert.match(await page.$eval(`${image} .media-step`, (e) => e.textContent), /step 4 \(5 of 5\)/);
  });

  test("the compare page shows one tag across the runs at one step", async () => {
    await page.goto(url(`#/compare?runs=${first},${second}`));
    await page.waitForSelector('compare-media[data-loaded="true"]', WAIT);
    await page.selectOption("#compare-media-tag", { label: "Images: tf/train/sample" });
    await page.$eval("#compare-media-step", (s) => {
      s.value = "2";
      s.dispatchEvent(new Event("input", { bubbles: true }));
    });
    for (const id of [first, second]) {
      await page.waitForSelector(`#compare-media .media-run[data-run="${id}"] media-card[data-shown-step="2"] img[data-step="2"]`, WAIT);
    }
    const sizes = await page.$$eval("#compare-media img.media-image", (imgs) => imgs.map((i) => [i.naturalWidth, i.naturalHeight]));
    assert.deepEqual(sizes, [
      [8, 10],
      [8, 10],
    ]);
    await screenshot(page, "media-compare");
  });

  test("the compare page follows live runs' images and histograms", async () => {
    // Two live runs, each stopped after step 1 until its own `go` file exists.
    const live = [];
    for (const name of ["go-images", "go-histograms"]) {
      const out = await daemon.guild(["-C", project, "train", "--background", `wait=${join(base, name)}`]);
      live.push(out.stdout.trim());
      assert.ok(live.at(-1), out.stderr);
    }
    const card = (id) => `#compare-media .media-run[data-run="${id}"]`;
    await page.goto(url(`#/compare?runs=${first},${live.join(",")}`));
    await page.waitForSelector('compare-media[data-loaded="true"]', WAIT);
    await page.selectOption("#compare-media-tag", { label: "Images: tf/train/sample" });
    await page.waitForSelector(`${card(live[0])} media-card[data-shown-step="1"]`, WAIT);
    await page.waitForSelector(`${card(first)} media-card[data-shown-step="4"]`, WAIT);
    // Steps 2..4 arrive through WatchMedia; the card shown moves to the newest by itself.
    writeFileSync(join(base, "go-images"), "");
    await page.waitForSelector(`${card(live[0])} media-card[data-shown-step="4"] img[data-step="4"]`, WAIT);
    assert.deepEqual(
      await page.$eval(`${card(live[0])} img.media-image`, (img) => [img.naturalWidth, img.naturalHeight]),
      [8, 12],
    );
    await page.selectOption("#compare-media-tag", { label: "Histograms: tf/train/weights" });
    // Histogram cards read their tag once near the viewport.
    await page.locator(`${card(live[1])} media-histogram`).scrollIntoViewIfNeeded();
    // Steps 0 and 1 while the run waits (its op closes its writer before waiting).
    await page.waitForSelector(`${card(live[1])} media-histogram[data-drawn="2"]`, WAIT);
    assert.ok(!existsSync(join(base, "go-histograms")));
    writeFileSync(join(base, "go-histograms"), "");
    await page.waitForSelector(`${card(live[1])} media-histogram[data-drawn="5"]`, WAIT);
    await screenshot(page, "media-compare-live");
  });
});
