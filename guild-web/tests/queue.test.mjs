// The queue and sweeps in the dashboard: queued runs with their position, a sweep row
// that expands into its trials, and the sweep page (trials table, objective by trial with
// the best so far, parallel coordinates). A real guildd allowed one run at a time, real
// runs made with the guild CLI, headless Chromium.

import assert from "node:assert/strict";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { cleanup, Daemon, launchBrowser, requireBinaries, screenshot, skipReason, tempBase, watchPage } from "./harness.mjs";

const skip = skipReason();
const WAIT = { timeout: 60_000 };

/** Waits for the file `--wait` (when given), prints `loss: (x - 2)^2`. */
const PROBE = `import argparse, os, time
p = argparse.ArgumentParser()
p.add_argument("--wait", default="none")
p.add_argument("--x", type=float, default=0)
a, _ = p.parse_known_args()
while a.wait != "none" and not os.path.exists(a.wait):
    time.sleep(0.02)
print(f"loss: {(a.x - 2) ** 2}")
`;

describe("dashboard: queue and sweeps", { skip: skip ?? false }, () => {
  let base, daemon, context, page, project, gate;
  const pageLog = [];
  const url = (hash) => `${daemon.origin}/?token=${encodeURIComponent(daemon.token)}${hash}`;

  before(async () => {
    requireBinaries();
    base = tempBase("queue");
    daemon = new Daemon(base, { GUILD_MAX_RUNS: "1", GUILD_GPUS: "0,1" });
    await daemon.start();
    project = join(base, "probe");
    mkdirSync(project, { recursive: true });
    writeFileSync(join(project, "Guild"), `[project]\nstats_interval = 0\n\n[model "p"]\ntrain = probe\n\n[flags]\nwait = none\nx = 0\n`);
    writeFileSync(join(project, "probe.py"), PROBE);
    gate = join(base, "gate");
    context = await launchBrowser(base);
    page = await context.newPage();
    watchPage(page, pageLog);
  });

  after(async () => {
    if (pageLog.length) console.log(`# page log:\n# ${pageLog.join("\n# ")}`);
    if (gate && !existsSync(gate)) writeFileSync(gate, "go");
    await context?.close().catch(() => {});
    await daemon?.stop();
    if (base) cleanup(base);
  });

  test("queued runs show their position, and start in order", async () => {
    const start = async (...args) => (await daemon.guild(["-C", project, "train", "--background", ...args])).stdout.trim();
    const first = await start("--gpus", "1", `wait=${gate}`);
    const second = await start("--gpus", "1");
    const third = await start();
    await page.goto(url("#/runs"));
    await page.waitForFunction(
      ([a, b]) =>
        document.querySelector(`[data-run-id="${a}"] .queue-pos`)?.textContent === "#1" &&
        document.querySelector(`[data-run-id="${b}"] .queue-pos`)?.textContent === "#2",
      [second, third],
      WAIT,
    );
    // The GPUs: the one the running run was given, and what the queued one asks for.
    await page.waitForFunction((id) => document.querySelector(`[data-run-id="${id}"] .gpus`)?.textContent === "gpu 0", first, WAIT);
    assert.equal(await page.textContent(`[data-run-id="${second}"] .gpus`), "1 gpu");
    assert.equal(await page.locator(`[data-run-id="${third}"] .gpus`).count(), 0);
    await screenshot(page, "runs-queued");
    writeFileSync(gate, "go");
    // As the first ends, the second starts and the third becomes #1, then all complete.
    await page.waitForFunction(
      (ids) => ids.every((id) => document.querySelector(`[data-run-id="${id}"]`)?.dataset.status === "completed"),
      [first, second, third],
      WAIT,
    );
    assert.equal(await page.locator(".queue-pos").count(), 0);
  });

  test("a sweep row expands into its trials, and its page shows the objective by trial", async () => {
    const out = await daemon.guild(["-C", project, "train", "x=[0,1,2,3]", "--minimize", "loss"]);
    const id = /Run (\S+) /.exec(out.stderr)[1];
    assert.match(out.stdout, /trial 3 completed: loss = 0/);
    await page.goto(url("#/runs"));
    const toggle = page.locator(`.sweep-toggle[data-sweep="${id}"]`);
    await toggle.waitFor(WAIT);
    assert.equal((await toggle.textContent()).trim(), "▸ sweep (4)");
    assert.equal(await page.locator(".run-row[data-trial]").count(), 0, "trials are folded under the sweep");
    await toggle.click();
    await page.waitForFunction(() => document.querySelectorAll(".run-row[data-trial]").length === 4, null, WAIT);
    await screenshot(page, "runs-sweep-expanded");

    await page.goto(url(`#/sweeps/${encodeURIComponent(id)}`));
    await page.waitForSelector('sweep-page[data-status="completed"][data-trials="4"]', WAIT);
    assert.equal(await page.getAttribute("sweep-page", "data-best"), "3");
    assert.equal(await page.locator("#sweep-trials tbody tr").count(), 4);
    assert.equal(await page.locator("#sweep-chart circle").count(), 4);
    const best = await page.getAttribute("#sweep-chart .best-line", "d");
    assert.ok(best && best.startsWith("M"), `best-so-far line: ${best}`);
    assert.equal(await page.locator("#sweep-coords canvas").count(), 1);
    assert.match(await page.textContent("#sweep-summary"), /grid over x; minimize loss/);
    await screenshot(page, "sweep-page");
  });
});
