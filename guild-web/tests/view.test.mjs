// A project of the original Guild (tests/fixtures/guild-2017/classic) in the dashboard:
// its Guild file's view shapes the run page (the fields as cards, in the file's order,
// formats, colours and icons; the series rows as charts with their titles, formats and
// a line per matching key) and the compare page (the view's columns). A real guildd,
// real runs of the fixture's op (event files written by tensorboardX), headless Chromium.

import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  axisProblems,
  cleanup,
  Daemon,
  fixtureProject,
  launchBrowser,
  requireBinaries,
  screenshot,
  skipReason,
  tempBase,
  tensorboardxSkipReason,
  watchPage,
} from "./harness.mjs";

const skip = skipReason() ?? tensorboardxSkipReason();
const WAIT = { timeout: 60_000 };

describe("the view of an original Guild file", { skip: skip ?? false }, () => {
  let base, daemon, context, page, classic, slow;
  let trainId, shortId;
  const pageLog = [];
  const url = (hash) => `${daemon.origin}/?token=${encodeURIComponent(daemon.token)}${hash}`;
  const runId = (out) => /^Run (\S+)/m.exec(out.stderr)?.[1];

  before(async () => {
    requireBinaries();
    base = tempBase("view");
    daemon = new Daemon(base);
    await daemon.start();
    await daemon.checkServesDashboard();
    classic = fixtureProject(base, "classic");
    await daemon.guild(["-C", classic, "prepare"]);
    trainId = runId(await daemon.guild(["-C", classic, "train"]));
    shortId = runId(await daemon.guild(["-C", classic, "train", "epochs=2", "batch_size=100"]));
    assert.ok(trainId && shortId, "run ids");
    // The same project with a flag that slows each step (the fixture's script reads
    // --step_seconds; its Guild file does not declare it), to watch a run live.
    slow = fixtureProject(base, "classic", {
      name: "classic-slow",
      edit: (text) => text.replace(/^stats_interval .*$/m, (line) => `${line}\nstep_seconds    = 0\nhold            = ${join(base, "release")}`),
    });
    await daemon.guild(["-C", slow, "prepare"]);
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

  const cards = () =>
    page.$$eval(".field-card", (cs) =>
      cs.map((c) => ({
        label: c.querySelector(".field-label").textContent.trim(),
        value: c.querySelector(".field-value").textContent.trim(),
        icon: c.dataset.icon,
        glyph: c.dataset.glyph,
        background: getComputedStyle(c).backgroundColor,
      })),
    );

  test("the run page shows the view's fields as cards, in order, formatted, coloured", async () => {
    await page.goto(url(`#/runs/${trainId}`));
    await page.waitForSelector('run-page[data-loaded="true"]', WAIT);
    assert.equal(await page.getAttribute("run-page", "data-view"), "true");
    await page.waitForSelector(".field-card", WAIT);
    const shown = await cards();
    assert.deepEqual(shown.map((c) => c.label), ["Validation Accuracy", "Training Accuracy", "Steps", "Time"]);
    assert.deepEqual(shown.slice(0, 3).map((c) => c.value), ["90.00%", "80.00%", "390"]);
    assert.match(shown[3].value, /^0:00:0\d$/);
    // green-700, teal-400, blue-700, yellow-700 of the Material palette.
    assert.deepEqual(shown.map((c) => c.background), ["rgb(56, 142, 60)", "rgb(38, 166, 154)", "rgb(25, 118, 210)", "rgb(251, 192, 45)"]);
    assert.deepEqual(shown.map((c) => [c.icon, c.glyph]), [["accuracy", "bullseye"], ["accuracy", "bullseye"], ["steps", "repeat"], ["time", "clock"]]);
    // The automatic headline cards give way to the view's; status stays.
    assert.equal(await page.locator("#run-loss").count(), 0);
    assert.match(await page.textContent("#run-status"), /completed/);
  });

  test("the view's rows are the charts: titles, formats, a line per matching key", async () => {
    const titles = (row) =>
      page.$$eval(`.view-row[data-row="${row}"] .chart-title`, (ts) => ts.map((t) => t.textContent.trim()));
    assert.deepEqual(await page.$$eval(".view-row", (rs) => rs.map((r) => r.dataset.row)), ["series-a", "series-b"]);
    assert.deepEqual(await titles("series-a"), ["Accuracy"]);
    assert.deepEqual(await titles("series-b"), ["Cross Entropy", "Learning Rate", "Process CPU %", "Process Memory"]);
    const chart = (row, series) => `time-chart[data-row="${row}"][data-series="${series}"]`;
    const accuracy = chart("series-a", "accuracy");
    const entropy = chart("series-b", "loss");
    for (const sel of [accuracy, entropy, chart("series-b", "learning-rate")]) {
      await page.waitForFunction((s) => document.querySelector(s)?.dataset.state === "ready", sel, WAIT);
    }
    assert.equal(await page.getAttribute(accuracy, "data-keys"), "tf/train/accuracy,tf/validation/accuracy");
    assert.equal(await page.getAttribute(entropy, "data-keys"), "tf/train/loss,tf/validation/loss");
    // Every sample of both lines drawn (40 steps each).
    assert.equal(await page.getAttribute(accuracy, "data-samples"), "80");
    const legend = (sel) => page.$$eval(`${sel} .u-legend .u-series th`, (ls) => ls.map((l) => l.textContent.trim()).slice(1));
    assert.deepEqual(await legend(accuracy), ["tf/train/accuracy", "tf/validation/accuracy"]);
    assert.equal((await legend(entropy)).length, 2);
    // The y axes speak the series' formats: 0.00% for accuracy, 0.0e for the learning
    // rate; the Cross Entropy axis is labelled as the file says.
    const report = (sel) => page.$eval(sel, (el) => el.axisReport());
    const acc = await report(accuracy);
    assert.ok(acc.y.labels.length >= 2 && acc.y.labels.every((l) => /^\d+\.\d\d%$/.test(l)), acc.y.labels.join(" "));
    const lr = await report(chart("series-b", "learning-rate"));
    assert.ok(lr.y.labels.every((l) => /^\d\.\d+e[+-]\d+$/.test(l)), lr.y.labels.join(" "));
    assert.equal(await page.$eval(entropy, (el) => el.yLabel), "nats");
    const { problems, axes } = await axisProblems(page);
    assert.deepEqual(problems, []);
    assert.ok(axes >= 6, `${axes} axes checked`);
    await page.locator(".view-row").first().scrollIntoViewIfNeeded();
    await screenshot(page, "view-run");
    // "every series" is the automatic layout, as without a view.
    await page.selectOption("#chart-layout", "all");
    await page.waitForSelector('time-chart[data-group="tf:accuracy"]', WAIT);
    assert.equal(await page.locator(".view-row").count(), 0);
    await page.selectOption("#chart-layout", "view");
    await page.waitForSelector(".view-row", WAIT);
    assert.deepEqual(pageLog.filter((l) => l.startsWith("pageerror")), []);
  });

  test("the cards and charts follow a live run, each sample once", async () => {
    const started = await daemon.guild(["-C", slow, "train", "step_seconds=0.15", "--background"]);
    const id = started.stdout.trim();
    // Open the page once the run has recorded some steps: it reads them up to its cursor
    // and follows the rest.
    const deadline = Date.now() + 60_000;
    while (!/^tf\/train\/accuracy\s/m.test((await daemon.guild(["list-series", id])).stdout)) {
      assert.ok(Date.now() < deadline, "the run recorded no accuracy in 60 s");
    }
    await page.goto(url(`#/runs/${id}`));
    await page.waitForSelector('run-page[data-loaded="true"]', WAIT);
    await page.waitForFunction(() => Number(document.querySelector("run-page")?.dataset.watchFrom ?? 0) > 0, null, WAIT);
    const steps = () => page.$eval('.field-card[data-field="steps"] .field-value', (v) => v.textContent.trim());
    await page.waitForFunction(() => /^\d+$/.test(document.querySelector('.field-card[data-field="steps"] .field-value')?.textContent.trim() ?? ""), null, WAIT);
    const first = Number(await steps());
    // The run waits halfway for the release file, so it is still running here whatever
    // the machine's load; released, it goes on and the cards follow.
    assert.equal(await page.textContent("#run-status").then((t) => t.trim().split(/\s/)[0]), "running");
    writeFileSync(join(base, "release"), "");
    // The cards move while it runs (GetRunView again as samples arrive).
    await page.waitForFunction(
      (n) => Number(document.querySelector('.field-card[data-field="steps"] .field-value')?.textContent.trim()) > n,
      first,
      WAIT,
    );
    assert.ok(Number(await page.getAttribute("run-page", "data-view-updates")) >= 1);
    // And end where the run ends: every sample of the run drawn once, none lost.
    await page.waitForFunction(() => /completed/.test(document.querySelector("#run-status")?.textContent ?? ""), null, { timeout: 120_000 });
    await page.waitForFunction(() => document.querySelector('.field-card[data-field="steps"] .field-value')?.textContent.trim() === "390", null, WAIT);
    const accuracy = 'time-chart[data-row="series-a"][data-series="accuracy"]';
    await page.waitForFunction((s) => document.querySelector(s)?.dataset.samples === "80", accuracy, WAIT);
    assert.equal((await cards())[0].value, "90.00%");
    await screenshot(page, "view-run-live");
  });

  test("a view without a [view] section (its field and series sections) shapes the page too; a chart that matches nothing says so", async () => {
    const sections = fixtureProject(base, "sections");
    await daemon.guild(["-C", sections, "prepare"]);
    const id = runId(await daemon.guild(["-C", sections, "train", "epochs=2"]));
    await page.goto(url(`#/runs/${id}`));
    await page.waitForSelector(".field-card", WAIT);
    const shown = await cards();
    assert.deepEqual(shown.map((c) => [c.label, c.value]).slice(0, 3), [["Validation Accuracy", "90.00%"], ["Training Accuracy", "80.00%"], ["Steps", "190"]]);
    assert.equal(shown[1].background, "rgb(38, 166, 154)", "teal-400, from the file's own template");
    const titles = await page.$$eval('.view-row[data-row="series"] .chart-title', (ts) => ts.map((t) => t.textContent.trim()));
    assert.deepEqual(titles, ["Loss", "Accuracy", "Process CPU %", "Process Memory", "GPU %", "GPU Memory"]);
    // GPU charts: drawn where the run has GPU series, else a placeholder that says why.
    const keys = (await daemon.guild(["list-series", id])).stdout;
    for (const [series, pattern] of [["gpu-percent", /^sys\/gpu\S*\/gpu\/util\s/m], ["gpu-memory", /^sys\/gpu\S*\/mem\/used\s/m]]) {
      const sel = `.view-row [data-series="${series}"]`;
      await page.waitForSelector(sel, WAIT);
      if (pattern.test(keys)) {
        assert.equal(await page.$eval(sel, (el) => el.tagName.toLowerCase()), "time-chart");
      } else {
        assert.equal(await page.getAttribute(sel, "data-state"), "none");
        assert.match(await page.textContent(`${sel} .chart-none-why`), /^no series matches sys\/gpu/);
      }
    }
    await page.locator('.view-row [data-series="gpu-percent"]').scrollIntoViewIfNeeded();
    await screenshot(page, "view-run-sections");
  });

  test("compare shows the view's columns, sorts them by value, and all columns on demand", async () => {
    await page.goto(url(`#/compare?runs=${trainId},${shortId}`));
    await page.waitForSelector("#compare-table tbody tr", WAIT);
    const heads = await page.$$eval("#compare-table th", (ths) => ths.map((t) => t.textContent.replace(/[▾▴]/g, "").trim()));
    assert.deepEqual(heads, ["run", "model", "op", "status", "started", "label", "Validation Accuracy", "Training Accuracy", "Batch Size", "Epochs (flag)", "Steps", "Time"]);
    const column = (id) => page.$$eval(`#compare-table tbody td[data-col="${id}"]`, (cs) => cs.map((c) => c.textContent.trim()));
    const order = () => page.$$eval("#compare-table tbody tr", (rows) => rows.map((r) => r.dataset.runId));
    // Sorted by Steps: 190 before 390, as numbers; then the other way.
    await page.click('#compare-table th[data-col="v:steps"]');
    assert.deepEqual(await column("v:steps"), ["190", "390"]);
    assert.deepEqual(await order(), [shortId, trainId]);
    await page.click('#compare-table th[data-col="v:steps"]');
    assert.deepEqual(await column("v:steps"), ["390", "190"]);
    assert.deepEqual(await column("v:validation-accuracy"), ["90.00%", "90.00%"]);
    assert.deepEqual(await column("v:batch-size-flag"), ["50", "100"]);
    await screenshot(page, "view-compare");
    // All columns: the flags and series, as without a view.
    await page.selectOption("#compare-mode", "all");
    await page.waitForSelector('#compare-table th[data-col="f:epochs"]', WAIT);
    assert.equal(await page.locator('#compare-table th[data-col="v:steps"]').count(), 0);
    assert.deepEqual(pageLog.filter((l) => l.startsWith("pageerror")), []);
  });
});
