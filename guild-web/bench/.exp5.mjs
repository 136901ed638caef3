import { Daemon, launchBrowser, liveProject, tempBase, cleanup } from "../tests/harness.mjs";
const base = tempBase("exp5");
const d = new Daemon(base);
await d.start();
const ctx = await launchBrowser(base);
const page = await ctx.newPage();
for (let k = 0; k < 3; k++) {
  const live = liveProject(base + "/p" + k);
  const id = (await d.guild(["-C", live, "train", "-b", "burst=100000", "seconds=1"])).stdout.trim();
  await page.goto("about:blank");
  await page.goto(`${d.origin}/?token=${d.token}#/runs/${id}`);
  await page.waitForSelector("output-view");
  const r = await page.evaluate(async () => {
    const proto = customElements.get("output-view").prototype;
    const orig = proto.flush;
    const flushes = [];
    proto.flush = function () { const t = performance.now(); const n = this.pending.reduce((a, c) => a + c.lines.length, 0); orig.call(this); flushes.push([Math.round(performance.now() - t), n]); };
    const tasks = [];
    new PerformanceObserver((l) => { for (const e of l.getEntries()) tasks.push(Math.round(e.duration)); }).observe({ type: "longtask", buffered: true });
    const t0 = performance.now();
    for (;;) {
      await new Promise((r) => requestAnimationFrame(r));
      if (Number(document.querySelector("output-view").dataset.lines ?? 0) >= 100000 || performance.now() - t0 > 30000) break;
    }
    await new Promise((r) => setTimeout(r, 200));
    proto.flush = orig;
    return { flushes: flushes.sort((a, b) => b[0] - a[0]).slice(0, 5), longtasks: tasks.sort((a, b) => b - a).slice(0, 8) };
  });
  console.log(JSON.stringify(r));
}
await ctx.close();
await d.stop("SIGKILL");
cleanup(base);
