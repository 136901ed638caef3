// The dashboard end to end: a real guildd, real runs made with the guild CLI (the mnist
// example and a long-running op), and headless Chromium. Screenshots go to
// test-output/.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import {
  axisProblems,
  cleanup,
  Daemon,
  envWithoutTensorBoard,
  launchBrowser,
  liveProject,
  mnistProject,
  requireBinaries,
  screenshot,
  skipReason,
  tempBase,
  tensorboardSkipReason,
  watchPage,
} from "./harness.mjs";

const skip = skipReason();
const tbSkip = skip ? null : tensorboardSkipReason();
const WAIT = { timeout: 60_000 };
/** The longest a frame may wait while 200,000 output lines stream into an open page. */
const FLOOD_MAX_GAP_MS = Number(process.env.GUILD_FLOOD_MAX_GAP_MS ?? 1000);

describe("dashboard", { skip: skip ?? false }, () => {
  let base, daemon, context, page, mnist, live;
  let liveId, trainId, prepareId;
  const pageLog = [];

  const url = (hash = "#/runs") => `${daemon.origin}/?token=${encodeURIComponent(daemon.token)}${hash}`;
  const rowCount = () => page.locator(".run-row").count();

  before(async () => {
    requireBinaries();
    base = tempBase("dashboard");
    daemon = new Daemon(base);
    await daemon.start();
    await daemon.checkServesDashboard();
    mnist = mnistProject(base);
    live = liveProject(base);
    await daemon.guild(["-C", mnist, "prepare"]);
    await daemon.guild(["-C", mnist, "train", "epochs=2", "--label", "two epochs"]);
    const started = await daemon.guild(["-C", live, "train", "--background", "--label", "live one"]);
    liveId = started.stdout.trim();
    const listed = JSON.parse((await daemon.guild(["-C", mnist, "runs", "--json"])).stdout);
    const all = Array.isArray(listed) ? listed : listed.runs;
    trainId = all.find((r) => r.op === "train" && r.model === "intro").id;
    prepareId = all.find((r) => r.op === "prepare").id;
    context = await launchBrowser(base);
    page = await context.newPage();
    watchPage(page, pageLog);
  });

  after(async () => {
    if (pageLog.length) console.log(`# page log:\n# ${pageLog.join("\n# ")}`);
    await context?.close().catch(() => {});
    if (daemon && liveId) await daemon.guild(["stop", liveId]).catch(() => {});
    await daemon?.stop();
    if (base) cleanup(base);
  });

  test("the runs list shows every run, live, and the token leaves the address bar", async () => {
    await page.goto(url());
    await page.waitForFunction(() => document.querySelectorAll(".run-row").length >= 3, null, WAIT);
    assert.equal(new URL(page.url()).searchParams.get("token"), null, "the token stays in the address bar");
    assert.equal(await page.evaluate(() => sessionStorage.getItem("guild-token")), daemon.token);
    for (const id of [liveId, trainId, prepareId]) {
      await page.waitForSelector(`.run-row[data-run-id="${id}"]`, WAIT);
    }
    // The live run's status comes from WatchRuns.
    await page.waitForSelector(`.run-row[data-run-id="${liveId}"][data-status="running"]`, WAIT);
    // Newest first.
    const ids = await page.$$eval(".run-row", (rows) =>
      rows.sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top).map((r) => r.dataset.runId),
    );
    assert.equal(ids[0], liveId);
    // Key scalar columns are filled lazily for the rows in view.
    await page.waitForFunction(
      (id) => {
        const row = document.querySelector(`.run-row[data-run-id="${id}"]`);
        return row && [...row.querySelectorAll("[data-col^='s:']")].some((c) => c.textContent.trim() && c.textContent.trim() !== "…");
      },
      trainId,
      WAIT,
    );
    await screenshot(page, "runs");
  });

  test("the runs list filters by text and status and sorts by a column", async () => {
    await page.fill("#runs-filter", "prepare");
    await page.waitForFunction(() => document.querySelectorAll(".run-row").length === 1, null, WAIT);
    assert.equal(await page.getAttribute(".run-row", "data-run-id"), prepareId);
    await page.fill("#runs-filter", "");
    await page.selectOption("#runs-status", "running");
    await page.waitForFunction(() => document.querySelectorAll(".run-row").length === 1, null, WAIT);
    assert.equal(await page.getAttribute(".run-row", "data-run-id"), liveId);
    await page.selectOption("#runs-status", "");
    await page.waitForFunction(() => document.querySelectorAll(".run-row").length >= 3, null, WAIT);
    // Sort by op ascending: prepare < train.
    await page.click('.vhead [data-col="op"]');
    await page.waitForFunction(() => document.querySelector('.vhead [data-col="op"]').classList.contains("sorted"), null, WAIT);
    const ops = await page.$$eval(".run-row", (rows) =>
      rows
        .sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top)
        .map((r) => r.querySelector('[data-col="op"]').textContent.trim()),
    );
    assert.deepEqual(ops, [...ops].sort());
    await page.click('.vhead [data-col="started"]');
  });

  test("a run deleted with the CLI leaves the list, and comes back when restored", async () => {
    const out = await daemon.guild(["-C", mnist, "prepare", "--label", "to delete"]);
    // "Run ID (MODEL:OP) in DIR" goes to stderr, the run's output to stdout.
    const id = /^Run (\S+)/m.exec(out.stderr)?.[1];
    assert.ok(id, `no run id in ${JSON.stringify(out.stderr)}`);
    await page.goto(url());
    await page.fill("#runs-filter", id);
    await page.waitForSelector(`.run-row[data-run-id="${id}"]`, WAIT);
    // WatchRuns says removed: the row goes without a reload.
    await daemon.guild(["runs", "delete", id]);
    await page.waitForSelector(`.run-row[data-run-id="${id}"]`, { state: "detached", ...WAIT });
    assert.equal(await rowCount(), 0);
    await daemon.guild(["runs", "restore", id]);
    await page.waitForSelector(`.run-row[data-run-id="${id}"]`, WAIT);
    await daemon.guild(["runs", "delete", id]);
    await page.waitForSelector(`.run-row[data-run-id="${id}"]`, { state: "detached", ...WAIT });
    await daemon.guild(["runs", "purge", id]);
    await page.fill("#runs-filter", "");
    await page.waitForFunction(() => document.querySelectorAll(".run-row").length >= 3, null, WAIT);
  });

  test("a training run's charts get new points while we watch", async () => {
    await page.goto(url(`#/runs/${liveId}`));
    await page.waitForSelector("#run-status", WAIT);
    const loss = 'time-chart[data-group="s:loss"]';
    await page.waitForFunction((sel) => Number(document.querySelector(sel)?.dataset.samples ?? 0) > 0, loss, WAIT);
    const before = Number(await page.getAttribute(loss, "data-samples"));
    await page.waitForFunction(
      ([sel, n]) => Number(document.querySelector(sel)?.dataset.samples ?? 0) > n + 3,
      [loss, before],
      WAIT,
    );
    // Output scalars: loss and val_loss overlaid; NaN and inf named, not drawn.
    assert.match(await page.getAttribute(loss, "data-keys"), /^loss,val_loss$|^val_loss,loss$/);
    await page.waitForFunction((sel) => /NaN/.test(document.querySelector(sel)?.querySelector(".chart-bad")?.textContent ?? ""), loss, WAIT);
    assert.match(await page.textContent(`${loss} .chart-bad`), /1 NaN, 1 inf/);
    // Event-file scalars: one chart per tag, train and validation overlaid.
    const tf = 'time-chart[data-group="tf:loss"]';
    await page.waitForFunction(
      (sel) => (document.querySelector(sel)?.dataset.keys ?? "") === "tf/train/loss,tf/validation/loss",
      tf,
      WAIT,
    );
    await page.waitForFunction((sel) => Number(document.querySelector(sel)?.dataset.points ?? 0) > 2, tf, WAIT);
    // Headline values.
    await page.waitForFunction(() => document.querySelector("#run-step")?.textContent !== "—", null, WAIT);
    // System and process stats are grouped by what they measure.
    await page.waitForSelector('time-chart[data-group="op:cpu"], time-chart[data-group="sys:cpu"]', WAIT);
    // The flags of the run.
    assert.match(await page.textContent("#run-flags"), /seconds/);
    // Each axis redraws from the same data, and no chart fails (one-sample system
    // series included).
    for (const axis of ["relative", "wall", "step"]) {
      await page.selectOption("#axis", axis);
      await page.waitForFunction((sel) => document.querySelector(sel)?.dataset.state === "ready", loss, WAIT);
      await page.waitForFunction((sel) => Number(document.querySelector(sel)?.dataset.samples ?? 0) > 0, loss, WAIT);
      assert.equal(await page.locator('time-chart[data-state="error"]').count(), 0, `a chart failed on the ${axis} axis`);
    }
    // Smoothing and log scale redraw too.
    await page.fill("#smoothing", "0.9");
    await page.check("#log-scale");
    await page.waitForFunction((sel) => Number(document.querySelector(sel)?.dataset.points ?? 0) > 0, loss, WAIT);
    await page.uncheck("#log-scale");
    await page.fill("#smoothing", "0");
    assert.deepEqual(pageLog.filter((l) => l.startsWith("pageerror")), []);
    await page.locator("time-chart").first().scrollIntoViewIfNeeded();
    await screenshot(page, "run-live");
  });

  test("the output view follows and filters", async () => {
    const out = "output-view";
    // The burst (3000 lines) and the steps stream in.
    await page.waitForFunction((sel) => Number(document.querySelector(sel)?.dataset.lines ?? 0) > 3000, out, WAIT);
    const lines = Number(await page.getAttribute(out, "data-lines"));
    await page.waitForFunction(([sel, n]) => Number(document.querySelector(sel)?.dataset.lines ?? 0) > n, [out, lines], WAIT);
    // Only a screenful of lines is in the DOM.
    assert.ok((await page.locator(".out-line").count()) < 200);
    await page.fill("#output-filter", "burst line 1234 ");
    await page.waitForFunction((sel) => document.querySelector(sel)?.dataset.shown === "1", out, WAIT);
    assert.equal((await page.textContent(".out-line")).replace(/^\d+/, ""), "burst line 1234 of 3000");
    await page.fill("#output-filter", "/^val_loss: /");
    await page.waitForFunction((sel) => Number(document.querySelector(sel)?.dataset.shown ?? 0) > 0, out, WAIT);
    const texts = await page.$$eval(".out-line", (ls) => ls.map((l) => l.textContent.replace(/^\d+/, "")));
    assert.ok(texts.length > 0 && texts.every((t) => t.startsWith("val_loss: ")), texts.join("|"));
    await page.fill("#output-filter", "warning");
    await page.waitForSelector(".out-line.stderr", WAIT);
    await page.locator("output-view").scrollIntoViewIfNeeded();
    await screenshot(page, "run-output");
    await page.fill("#output-filter", "");
  });

  test("a live run's page starts at its cursor; its System charts draw while it runs, on axes that read right", async () => {
    await page.goto(url(`#/runs/${liveId}`));
    await page.waitForSelector('run-page[data-loaded="true"]', WAIT);
    // The run has been recording since the tests began: the page reads that history from
    // GetSeries and follows from the run's cursor, not from its first sample.
    await page.waitForFunction(() => Number(document.querySelector("run-page")?.dataset.watchFrom ?? 0) > 0, null, WAIT);
    const sys = 'time-chart[data-group^="sys:"]';
    await page.waitForFunction(
      (sel) => {
        const charts = [...document.querySelectorAll(sel)];
        return charts.length >= 3 && charts.every((c) => c.dataset.state === "ready" && Number(c.dataset.points ?? 0) > 0);
      },
      sys,
      WAIT,
    );
    const drawn = () => page.$$eval(sys, (cs) => Object.fromEntries(cs.map((c) => [c.dataset.group, Number(c.dataset.samples)])));
    const before = await drawn();
    // While it runs, every System chart (below the fold or not) draws what arrives.
    await page.waitForFunction(
      ([sel, was]) => [...document.querySelectorAll(sel)].every((c) => Number(c.dataset.samples) > (was[c.dataset.group] ?? 0)),
      [sys, before],
      { timeout: 90_000 },
    );
    assert.match(await page.textContent("#run-status"), /running/);
    // Every axis of every chart: labels in order, saying the values they stand at, near
    // the data, none wider than its axis.
    const { problems, axes } = await axisProblems(page);
    assert.deepEqual(problems, []);
    assert.ok(axes >= 2 * (await page.locator("time-chart").count()) - 2, `${axes} axes checked`);
    // Byte axes in one binary unit each.
    for (const group of ["op:mem", "sys:mem"]) {
      const labels = await page.$eval(`time-chart[data-group="${group}"]`, (el) => el.axisReport().y.labels);
      assert.ok(labels.every((l) => /^\d+(\.\d+)? (B|KiB|MiB|GiB|TiB)$/.test(l)), `${group}: ${labels}`);
      assert.equal(new Set(labels.map((l) => l.split(" ")[1])).size, 1, `${group}: ${labels}`);
    }
    await page.locator('time-chart[data-group="sys:mem"]').scrollIntoViewIfNeeded();
    await screenshot(page, "run-live-system");
  });

  test("a live run followed to its end shows each of its samples once", async () => {
    const started = await daemon.guild(["-C", live, "train", "--background", "seconds=6", "delay=0.02", "burst=0", "--label", "short live"]);
    const id = started.stdout.trim();
    const counts = async () => {
      const out = (await daemon.guild(["list-series", id])).stdout;
      return Object.fromEntries(
        out.split("\n").slice(1).filter(Boolean).map((l) => {
          const f = l.trim().split(/\s+/);
          return [f[0], Number(f[4])];
        }),
      );
    };
    // Open it once it has recorded a little: that much is history, the rest follows.
    const deadline = Date.now() + 60_000;
    while (!((await counts()).loss > 20)) assert.ok(Date.now() < deadline, "no loss samples in 60 s");
    await page.goto(url(`#/runs/${id}`));
    await page.waitForFunction(() => Number(document.querySelector("run-page")?.dataset.watchFrom ?? 0) > 0, null, WAIT);
    await page.waitForFunction(() => /completed/.test(document.querySelector("#run-status")?.textContent ?? ""), null, { timeout: 120_000 });
    const final = await counts();
    const want = {
      "s:loss": final.loss + final.val_loss,
      "tf:loss": final["tf/train/loss"] + final["tf/validation/loss"],
      "s:acc": final.acc,
    };
    await page.waitForFunction(
      (w) => Object.entries(w).every(([g, n]) => document.querySelector(`time-chart[data-group="${g}"]`)?.dataset.samples === String(n)),
      want,
      WAIT,
    ).catch(async (err) => {
      const got = await page.$$eval("time-chart", (cs) => cs.map((c) => `${c.dataset.group}=${c.dataset.samples}`).join(" "));
      throw new Error(`${err.message}\nwanted ${JSON.stringify(want)}, drawn ${got}`);
    });
  });

  test("an output flood (200,000 lines at once) never hangs the page", async () => {
    // The run waits 3 s before its burst, so the page is open and following when the
    // lines arrive (and the run page's other streams are live meanwhile).
    const lines = 200_000;
    const started = await daemon.guild(["-C", live, "train", "--background", `burst=${lines}`, "pause=3", "seconds=1", "delay=0.05", "--label", "flood"]);
    const floodId = started.stdout.trim();
    await page.goto(url(`#/runs/${floodId}`));
    await page.waitForSelector("output-view", WAIT);
    // Every gap between animation frames from now until all lines are shown.
    const frames = await page.evaluate(async (want) => {
      const out = document.querySelector("output-view");
      const t0 = performance.now();
      const gaps = [];
      let last = t0;
      let longTasks = 0;
      new PerformanceObserver((l) => (longTasks += l.getEntries().length)).observe({ type: "longtask" });
      for (;;) {
        await new Promise((r) => requestAnimationFrame(r));
        const now = performance.now();
        gaps.push(now - last);
        last = now;
        if (Number(out.dataset.lines ?? 0) >= want || now - t0 > 180_000) break;
      }
      gaps.sort((a, b) => b - a);
      return {
        ms: Math.round(performance.now() - t0),
        frames: gaps.length,
        worst: Math.round(gaps[0]),
        p99: Math.round(gaps[Math.floor(gaps.length / 100)]),
        over100: gaps.filter((g) => g > 100).length,
        longTasks,
        lines: Number(out.dataset.lines),
        inDom: document.querySelectorAll(".out-line").length,
      };
    }, lines);
    console.log(`# flood: ${JSON.stringify(frames)}`);
    assert.ok(frames.lines >= lines, `only ${frames.lines} of ${lines} lines shown after ${frames.ms} ms`);
    assert.ok(frames.worst < FLOOD_MAX_GAP_MS, `a frame waited ${frames.worst} ms (limit ${FLOOD_MAX_GAP_MS}): ${JSON.stringify(frames)}`);
    assert.ok(frames.inDom < 200, `${frames.inDom} lines in the DOM`);
    // Following: the view is at the end, with the newest line in it.
    assert.ok(await page.isChecked("#output-follow"), "follow was turned off");
    await page.waitForFunction(() => {
      const s = document.querySelector(".out-scroll");
      const out = document.querySelector("output-view");
      const shown = [...document.querySelectorAll(".out-line")].map((l) => l.textContent);
      return s.scrollTop + s.clientHeight >= s.scrollHeight - 20 && shown.some((t) => /^\d+(done after|step: )/.test(t)) && out.dataset.lines === out.dataset.shown;
    }, null, WAIT);
    // Scrolling up stops following (the first line comes into view); back at the end it
    // follows again.
    await page.evaluate(() => (document.querySelector(".out-scroll").scrollTop = 0));
    await page.waitForFunction(() => !document.querySelector("#output-follow").checked, null, WAIT);
    await page.waitForFunction(() => [...document.querySelectorAll(".out-line")].some((l) => /^\d+burst line 0 of /.test(l.textContent)), null, WAIT);
    await page.evaluate(() => {
      const s = document.querySelector(".out-scroll");
      s.scrollTop = s.scrollHeight;
    });
    await page.waitForFunction(() => document.querySelector("#output-follow").checked, null, WAIT);
    // The filter searches every kept line, and answers at once.
    const t0 = Date.now();
    await page.fill("#output-filter", `burst line ${lines - 1} `);
    await page.waitForFunction(() => document.querySelector("output-view")?.dataset.shown === "1", null, WAIT);
    const filterMs = Date.now() - t0;
    assert.ok(filterMs < 5000, `the filter took ${filterMs} ms`);
    await page.fill("#output-filter", "/^burst line 1234\\d /");
    await page.waitForFunction(() => document.querySelector("output-view")?.dataset.shown === "10", null, WAIT);
    await page.locator("output-view").scrollIntoViewIfNeeded();
    await screenshot(page, "run-output-flood");
    await page.fill("#output-filter", "");
  });

  test("the run page lists the run's serves and keeps them current", async () => {
    const served = await daemon.guild(["-C", mnist, "serve", trainId, "--port", "0"]);
    const serveUrl = served.stdout.trim();
    const port = new URL(serveUrl).port;
    assert.match(serveUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    try {
      await page.goto(url(`#/runs/${trainId}`));
      const row = `#run-serves .serve-row[data-url="${serveUrl}"]`;
      await page.waitForSelector(row, WAIT);
      assert.match(await page.textContent(row), new RegExp(`127\\.0\\.0\\.1:${port}`));
      // The worker answers its readiness probe: the state turns ready without a reload.
      await page.waitForSelector(`${row}[data-state="ready"]`, WAIT);
      assert.equal((await page.textContent(`${row} .serve-requests`)).trim(), "0");
      // A request to the serve shows in the count at the next poll.
      const res = await fetch(`${serveUrl}/run`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify([Array(64).fill(0)]),
      });
      assert.equal(res.status, 200, await res.text());
      await page.waitForFunction((sel) => document.querySelector(`${sel} .serve-requests`)?.textContent.trim() === "1", row, WAIT);
      await page.locator("#run-serves").scrollIntoViewIfNeeded();
      await screenshot(page, "run-serves");
    } finally {
      await daemon.guild(["serve", "--stop", trainId]);
    }
    // Stopped: it leaves the page.
    await page.waitForSelector("#run-serves", { state: "detached", timeout: 60_000 });
    // A run that is not served shows nothing about serving.
    await page.goto(url(`#/runs/${prepareId}`));
    await page.waitForFunction(() => Number(document.querySelector("run-serves")?.dataset.polls ?? 0) > 0, null, WAIT);
    assert.equal(await page.locator("#run-serves").count(), 0);
  });

  test("the TensorBoard tab shows TensorBoard for a run with event files", { skip: tbSkip ?? false, timeout: 300_000 }, async () => {
    await page.goto(url(`#/runs/${liveId}`));
    await page.click("#run-tensorboard");
    await page.waitForFunction(() => location.hash.startsWith("#/tensorboard?runs="), null, WAIT);
    // Starting TensorBoard takes a few seconds (more on a busy machine).
    await page.waitForFunction(() => {
      const st = document.querySelector("tensorboard-page")?.dataset.state;
      return st && st !== "starting";
    }, null, { timeout: 240_000 });
    const state = await page.getAttribute("tensorboard-page", "data-state");
    assert.equal(state, "ready", (await page.textContent("tensorboard-page")).trim());
    assert.match(await page.textContent("#tb-runs"), new RegExp(liveId));
    const frame = await (await page.waitForSelector("#tb-frame", WAIT)).contentFrame();
    // The token went in once (?token=) and came back as a cookie: the address is bare.
    await frame.waitForFunction(() => document.title === "TensorBoard" && document.querySelector("tb-webapp"), null, WAIT);
    assert.ok(new URL(frame.url()).pathname.startsWith("/tb/"), frame.url());
    assert.equal(new URL(frame.url()).searchParams.get("token"), null, frame.url());
    // TensorBoard reads the run's event files: its runs (train and validation) and the
    // scalars plugin, asked from inside the iframe (so through the proxy, with the cookie).
    await frame.waitForFunction(
      async (id) => {
        const runs = await (await fetch("data/runs")).json();
        const plugins = await (await fetch("data/plugins_listing")).json();
        return runs.some((r) => r.startsWith(id) && r.endsWith("train")) && plugins.scalars?.enabled;
      },
      liveId,
      { timeout: 120_000, polling: 1000 },
    );
    // TensorBoard's own page draws the run's loss.
    await frame.waitForFunction(() => /loss/.test(document.body.innerText), null, { timeout: 120_000, polling: 500 });
    await screenshot(page, "tensorboard");
    // Stop: the page says so, and /tb/ answers 503 until it starts again.
    await page.click("#tb-stop");
    await page.waitForSelector('tensorboard-page[data-state="stopped"]', WAIT);
    assert.equal(await page.evaluate(() => fetch("/tb/data/runs").then((r) => r.status)), 503);
  });

  test("a finished run shows its charts, flags and attrs", async () => {
    await page.goto(url(`#/runs/${trainId}`));
    await page.waitForSelector("#run-status", WAIT);
    assert.equal((await page.textContent("#run-status")).trim().split(/\s/)[0], "completed");
    await page.waitForFunction(() => Number(document.querySelector('time-chart[data-group="s:loss"]')?.dataset.points ?? 0) > 3, null, WAIT);
    assert.match(await page.textContent("#run-flags"), /epochs\s*2/);
    assert.match(await page.textContent("#run-attrs"), /guild_version/);
    assert.notEqual((await page.textContent("#run-loss")).trim(), "—");
    // examples/mnist has no view: the automatic layout, cards and charts, as always.
    assert.equal(await page.getAttribute("run-page", "data-view"), "false");
    assert.equal(await page.locator(".field-card, .view-row, #chart-layout").count(), 0);
    assert.ok((await page.locator("time-chart[data-group]").count()) >= 2);
    await screenshot(page, "run-finished");
    // Hovering a chart shows the values under the cursor.
    const chart = 'time-chart[data-group="s:loss"]';
    await page.locator(chart).scrollIntoViewIfNeeded();
    await page.hover(`${chart} .u-over`, { position: { x: 150, y: 60 } });
    await page.waitForFunction(
      (sel) => /\d/.test(document.querySelector(sel)?.querySelector(".u-legend .u-series:nth-child(2) .u-value")?.textContent ?? ""),
      chart,
      WAIT,
    );
    await screenshot(page, "run-hover");
    // A run with no series says so.
    await page.goto(url(`#/runs/${prepareId}`));
    await page.waitForSelector("#run-status", WAIT);
    await page.waitForFunction(() => document.querySelectorAll("time-chart").length > 0 || document.querySelector("#no-series"), null, WAIT);
  });

  test("compare sorts, filters, picks columns and downloads CSV", async () => {
    await page.goto(url("#/runs"));
    await page.waitForFunction(() => document.querySelectorAll(".run-row").length >= 3, null, WAIT);
    for (const id of [liveId, trainId, prepareId]) {
      await page.click(`.run-row[data-run-id="${id}"] input[type=checkbox]`);
    }
    await page.waitForFunction(() => /Compare 3 selected/.test(document.querySelector("#compare-selected")?.textContent ?? ""), null, WAIT);
    assert.equal(await page.isEnabled("#tensorboard-selected"), true, "TensorBoard of the ticked runs");
    await page.click("#compare-selected");
    await page.waitForSelector("#compare-table tbody tr", WAIT);
    assert.equal(await page.locator("#compare-table tbody tr").count(), 3);
    const order = () => page.$$eval("#compare-table tbody tr", (rows) => rows.map((r) => r.dataset.runId));
    // Sort by run id, both ways.
    await page.click('#compare-table th[data-col="run"]');
    const asc = await order();
    assert.deepEqual(asc, [...asc].sort());
    await page.click('#compare-table th[data-col="run"]');
    assert.deepEqual(await order(), [...asc].reverse());
    // Sort by a flag: runs without it go last.
    await page.click('#compare-table th[data-col="f:epochs"]');
    const byEpochs = await page.$$eval('#compare-table tbody td[data-col="f:epochs"]', (cs) => cs.map((c) => c.textContent));
    assert.equal(byEpochs[byEpochs.length - 1], "", "runs without the flag sort last");
    // Filter by text and by name=value.
    await page.fill("#compare-filter", "epochs=2");
    await page.waitForFunction(() => document.querySelectorAll("#compare-table tbody tr").length === 1, null, WAIT);
    assert.deepEqual(await order(), [trainId]);
    await page.fill("#compare-filter", "live");
    await page.waitForFunction(() => document.querySelectorAll("#compare-table tbody tr").length === 1, null, WAIT);
    assert.deepEqual(await order(), [liveId]);
    await page.fill("#compare-filter", "");
    await page.waitForFunction(() => document.querySelectorAll("#compare-table tbody tr").length === 3, null, WAIT);
    // Choose columns: add min of loss.
    await page.click("#compare-columns");
    await page.check('#compare-picker input[data-col="s:min:loss"]');
    await page.waitForSelector('#compare-table th[data-col="s:min:loss"]', WAIT);
    // CSV of what is shown.
    const [download] = await Promise.all([page.waitForEvent("download", WAIT), page.click("#csv")]);
    const csv = readFileSync(await download.path(), "utf8").trim().split("\n");
    assert.equal(csv.length, 4);
    assert.match(csv[0], /^run,model,op,status,started,label,/);
    assert.match(csv[0], /loss \(min\)/);
    // The overlay chart draws one line per run that has the key.
    await page.click("#compare-columns");
    await page.waitForFunction(() => document.querySelector("#overlay-chart")?.dataset.state === "ready", null, WAIT);
    await page.waitForFunction(() => document.querySelectorAll("#overlay-chart .u-legend .u-series").length >= 3, null, WAIT);
    await page.waitForFunction(() => Number(document.querySelector("#parallel")?.dataset.lines ?? 0) === 3, null, WAIT);
    // A zoom that a newer one replaces is dropped (its GetSeries calls aborted); the newer
    // one draws.
    const zooms = await page.evaluate(async () => {
      const el = document.querySelector("#overlay-chart");
      const first = el.zoomTo(1, 40);
      const second = el.zoomTo(2, 30);
      return { first: await first, second: await second, points: Number(el.dataset.points), state: el.dataset.state };
    });
    assert.ok(Number.isNaN(zooms.first) && zooms.second >= 0 && zooms.points > 0 && zooms.state === "ready", JSON.stringify(zooms));
    await page.dblclick("#overlay-chart .u-over");
    await page.waitForFunction(() => !document.querySelector("#overlay-chart .chart-head button"), null, WAIT);
    assert.deepEqual(pageLog.filter((l) => l.startsWith("pageerror")), []);
    await screenshot(page, "compare");
  });

  test("a request without the token is refused (grpc-status 16)", async () => {
    const call = (withToken) =>
      page.evaluate(async (tok) => {
        const headers = { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" };
        if (tok) headers["x-guild-token"] = tok;
        const res = await fetch("/guild.v1.DaemonService/GetStatus", { method: "POST", headers, body: new Uint8Array(5) });
        const body = new Uint8Array(await res.arrayBuffer());
        // grpc-status is a header (trailers-only) or in the trailer frame of the body.
        let status = res.headers.get("grpc-status");
        for (let i = 0; status === null && i + 5 <= body.length; ) {
          const len = new DataView(body.buffer, i + 1, 4).getUint32(0);
          if (body[i] & 0x80) {
            const m = /grpc-status:\s*(\d+)/i.exec(new TextDecoder().decode(body.subarray(i + 5, i + 5 + len)));
            if (m) status = m[1];
          }
          i += 5 + len;
        }
        return { http: res.status, status };
      }, withToken ? daemon.token : null);
    assert.equal((await call(false)).status, "16");
    assert.equal((await call(true)).status, "0");
    // A page opened without the token says what to do.
    const bare = await context.newPage();
    await bare.goto(`${daemon.origin}/#/runs`);
    await bare.waitForSelector("#auth-banner", WAIT);
    assert.match(await bare.textContent("#auth-banner"), /guild view/);
    await screenshot(bare, "no-token");
    // A wrong token is refused the same way.
    await bare.evaluate(() => sessionStorage.setItem("guild-token", "wrong"));
    await bare.reload();
    await bare.waitForSelector("#auth-banner", WAIT);
    await bare.close();
  });

  test("guild view opens the page with a one-time code, never the token", async () => {
    const view = await daemon.guild(["view", "--no-open"]);
    const printed = view.stdout.trim();
    assert.match(printed, /^http:\/\/127\.0\.0\.1:\d+\/\?code=[0-9a-f]{32}$/, printed);
    assert.ok(!printed.includes(daemon.token), "the printed URL carries the token");
    const first = await context.newPage();
    await first.goto(`${printed}#/runs`);
    await first.waitForSelector(`.run-row[data-run-id="${liveId}"]`, WAIT);
    assert.equal(new URL(first.url()).searchParams.get("code"), null, "the code stays in the address bar");
    assert.equal(await first.evaluate(() => sessionStorage.getItem("guild-token")), daemon.token);
    await first.close();
    // The code is spent: a second page with the same URL is not let in, and says why.
    const second = await context.newPage();
    await second.goto(`${printed}#/runs`);
    await second.waitForSelector("#auth-banner", WAIT);
    assert.match(await second.textContent("#auth-banner"), /used already or has expired/);
    await screenshot(second, "spent-code");
    await second.close();
  });

  test("the page survives a daemon restart", async () => {
    await page.goto(url(`#/runs/${liveId}`));
    const loss = 'time-chart[data-group="s:loss"]';
    await page.waitForFunction((sel) => Number(document.querySelector(sel)?.dataset.samples ?? 0) > 0, loss, WAIT);
    await daemon.stop("SIGTERM");
    await page.waitForSelector("#reconnect-banner", WAIT);
    await screenshot(page, "reconnecting");
    const samples = Number(await page.getAttribute(loss, "data-samples"));
    await daemon.start();
    await page.waitForSelector("#reconnect-banner", { state: "detached", timeout: 60_000 });
    // The chart resumes from its cursor: new points, none doubled.
    await page.waitForFunction(([sel, n]) => Number(document.querySelector(sel)?.dataset.samples ?? 0) > n + 2, [loss, samples], WAIT);
    const drawn = await page.evaluate((sel) => {
      const el = document.querySelector(sel);
      return { samples: Number(el.dataset.samples), points: Number(el.dataset.points) };
    }, loss);
    assert.ok(drawn.points <= drawn.samples, JSON.stringify(drawn));
    // The list is live again: a run started now appears with its status.
    await page.goto(url("#/runs"));
    await page.waitForFunction(() => document.querySelectorAll(".run-row").length >= 3, null, WAIT);
    const before = await page.locator(".run-row").count();
    const started = await daemon.guild(["-C", mnist, "run", "prepare", "--background"]);
    const newId = started.stdout.trim();
    await page.waitForSelector(`.run-row[data-run-id="${newId}"]`, WAIT);
    await page.waitForSelector(`.run-row[data-run-id="${newId}"][data-status="completed"]`, WAIT);
    assert.equal(await page.locator(".run-row").count(), before + 1);
    await screenshot(page, "runs-after-restart");
  });
});

describe("dashboard with no runs", { skip: skip ?? false }, () => {
  let base, daemon, context, page;

  before(async () => {
    requireBinaries();
    base = tempBase("empty");
    daemon = new Daemon(base);
    await daemon.start();
    context = await launchBrowser(base);
    page = await context.newPage();
  });

  after(async () => {
    await context?.close().catch(() => {});
    await daemon?.stop();
    if (base) cleanup(base);
  });

  test("the pages say there is nothing yet", async () => {
    const token = encodeURIComponent(daemon.token);
    await page.goto(`${daemon.origin}/?token=${token}#/runs`);
    await page.waitForFunction(() => /No runs yet/.test(document.querySelector("#runs-empty")?.textContent ?? ""), null, WAIT);
    await screenshot(page, "runs-empty");
    await page.goto(`${daemon.origin}/#/compare`);
    await page.waitForSelector("#compare-empty", WAIT);
    await page.goto(`${daemon.origin}/#/runs/no-such-run`);
    await page.waitForSelector("#run-error", WAIT);
    assert.match(await page.textContent("#run-error"), /NotFound/);
  });
});

describe("dashboard where TensorBoard is not installed", { skip: skip ?? false }, () => {
  let base, daemon, context, page;

  before(async () => {
    requireBinaries();
    base = tempBase("no-tb");
    daemon = new Daemon(base, envWithoutTensorBoard(base));
    await daemon.start();
    // A run with event files (train and validation), run to its end.
    await daemon.guild(["-C", liveProject(base), "train", "seconds=0", "burst=0", "--label", "has event files"]);
    context = await launchBrowser(base);
    page = await context.newPage();
  });

  after(async () => {
    await context?.close().catch(() => {});
    await daemon?.stop();
    if (base) cleanup(base);
  });

  test("the TensorBoard tab shows the daemon's error, with the install command", async () => {
    const listed = JSON.parse((await daemon.guild(["runs", "--json"])).stdout);
    const id = (Array.isArray(listed) ? listed : listed.runs)[0].id;
    await page.goto(`${daemon.origin}/?token=${encodeURIComponent(daemon.token)}#/tensorboard?runs=${id}`);
    await page.waitForSelector('tensorboard-page[data-state="not-installed"]', WAIT);
    const text = await page.textContent("#tb-error");
    assert.match(text, /not installed/);
    assert.equal((await page.textContent("#tb-error code")).trim(), "pip install tensorboard");
    assert.equal(await page.locator("#tb-frame").count(), 0);
    await screenshot(page, "tensorboard-not-installed");
    // "Try again" asks again, and gets the same answer.
    await page.click("#tb-start");
    await page.waitForSelector('tensorboard-page[data-state="not-installed"]', WAIT);
  });
});
