// What the browser tests need: a real guildd on a private data dir, socket and loopback
// port; the real `guild` CLI to make runs; a project whose op trains "forever" so charts
// can be seen growing; and headless Chromium (Debian's) driven by playwright-core.
// Every wait is a readiness check, never a fixed sleep.

import { execFile, execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const execFileP = promisify(execFile);

export const WEB = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const ROOT = resolve(WEB, "..");
/** Where guildd and guild are: ../target/debug, or GUILD_BIN_DIR. */
export const BIN = process.env.GUILD_BIN_DIR ? resolve(process.env.GUILD_BIN_DIR) : join(ROOT, "target", "debug");
export const CHROMIUM = process.env.GUILD_CHROMIUM ?? "/usr/bin/chromium";
export const OUT = join(WEB, "test-output");

export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Why the browser tests cannot run here, or null. With GUILD_REQUIRE_BROWSER set a
 * missing Chromium is a failure, not a skip. */
export function skipReason() {
  if (!existsSync(CHROMIUM)) {
    const why = `${CHROMIUM} is missing (apt-get install -y chromium)`;
    if (process.env.GUILD_REQUIRE_BROWSER) throw new Error(`${why}, and GUILD_REQUIRE_BROWSER is set`);
    console.log(`# skipping browser tests: ${why}`);
    return why;
  }
  return null;
}

export function requireBinaries() {
  for (const name of ["guildd", "guild"]) {
    if (!existsSync(join(BIN, name))) {
      throw new Error(`${join(BIN, name)} is missing: run cargo build --workspace (in ${ROOT})`);
    }
  }
}

/** A guildd of our own. `start()` again after `stop()` reuses the data dir and port.
 * `env` is added to the environment of guildd and of the guild commands. */
export class Daemon {
  constructor(base, env = {}) {
    this.extraEnv = env;
    this.dataDir = join(base, "data");
    this.socket = join(base, "guildd.sock");
    this.logFile = join(base, "guildd.log");
    this.port = 0;
    this.proc = null;
    this.log = "";
    mkdirSync(this.dataDir, { recursive: true });
  }

  get env() {
    return {
      ...process.env,
      GUILD_DATA_DIR: this.dataDir,
      GUILD_SOCKET: this.socket,
      GUILD_LISTEN: "",
      GUILD_LOG: process.env.GUILD_LOG ?? "info",
      ...this.extraEnv,
    };
  }

  get token() {
    return readFileSync(join(this.dataDir, "token"), "utf8").trim();
  }

  get origin() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts guildd and resolves once it prints its listening line. */
  async start(timeoutMs = 60_000) {
    const args = ["--data-dir", this.dataDir, "--socket", this.socket, "--listen", `127.0.0.1:${this.port}`];
    const proc = spawn(join(BIN, "guildd"), args, { env: this.env, stdio: ["ignore", "ignore", "pipe"] });
    this.proc = proc;
    let buf = "";
    const listening = await new Promise((resolveP, reject) => {
      const timer = setTimeout(() => reject(new Error(`guildd did not start in ${timeoutMs} ms:\n${buf}`)), timeoutMs);
      proc.stderr.on("data", (d) => {
        const s = d.toString();
        buf += s;
        this.log += s;
        const m = /listening on .* and tcp (\S+)/.exec(buf);
        if (m) {
          clearTimeout(timer);
          resolveP(m[1]);
        }
      });
      proc.on("exit", (code, sig) => {
        clearTimeout(timer);
        reject(new Error(`guildd exited (${code ?? sig}) before listening:\n${buf}`));
      });
    });
    this.port = Number(listening.split(":").pop());
    proc.removeAllListeners("exit");
    proc.on("exit", () => {
      if (this.proc === proc) this.proc = null;
    });
    writeFileSync(this.logFile, this.log);
    return this;
  }

  /** Fails clearly when this guildd serves no dashboard (built before dist/ existed). */
  async checkServesDashboard() {
    const res = await fetch(`${this.origin}/`);
    const text = await res.text();
    if (!res.ok || !text.includes("<guild-app>")) {
      throw new Error(
        `${this.origin}/ answered ${res.status} without the dashboard: run npm run build in guild-web, then cargo build --workspace\n${text.slice(0, 200)}`,
      );
    }
  }

  /** SIGTERM, and resolves when the process is gone. */
  async stop(signal = "SIGTERM") {
    const proc = this.proc;
    if (!proc) return;
    const gone = new Promise((r) => proc.once("exit", r));
    const t0 = Date.now();
    proc.kill(signal);
    // guildd should exit at once; if open streams hold it, say so and kill it.
    const timer = setTimeout(() => {
      console.log(`# WARNING: guildd still running ${Date.now() - t0} ms after ${signal}: killing it`);
      proc.kill("SIGKILL");
    }, Number(process.env.GUILD_STOP_GRACE_MS ?? 10_000));
    await gone;
    clearTimeout(timer);
    this.lastStopMs = Date.now() - t0;
    this.proc = null;
    writeFileSync(this.logFile, this.log);
  }

  /** Runs the guild CLI against this daemon; resolves with stdout and stderr. */
  async guild(args, { cwd, timeout = 180_000 } = {}) {
    try {
      return await execFileP(join(BIN, "guild"), args, { env: this.env, cwd, timeout, maxBuffer: 64 << 20 });
    } catch (err) {
      throw new Error(`guild ${args.join(" ")} failed: ${err.message}\n${err.stdout ?? ""}\n${err.stderr ?? ""}`);
    }
  }
}

/** A temp copy of examples/mnist (without runs or data). */
export function mnistProject(base) {
  const dir = join(base, "mnist");
  cpSync(join(ROOT, "examples", "mnist"), dir, {
    recursive: true,
    filter: (src) => !/[/\\](runs|data|__pycache__)([/\\]|$)/.test(src.slice(join(ROOT, "examples", "mnist").length)),
  });
  return dir;
}

/** A project whose `train` prints `step:`/`loss:` lines (and NaN, inf, stderr, a burst of
 * `burst` lines after `pause` seconds) and writes TensorFlow event files (train and
 * validation) by hand, for as long as its `seconds` flag says, so a chart can be watched
 * growing. */
export function liveProject(base) {
  const dir = join(base, "live");
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "Guild"),
    `[project]
name = Live

[model "live"]
description = Prints a loss for a while
train = live

[flags]
seconds = 300
delay = 0.1
burst = 3000
pause = 0
`,
  );
  writeFileSync(join(dir, "live.py"), LIVE_PY);
  return dir;
}

const LIVE_PY = String.raw`"""Trains nothing, slowly: a loss line every --delay seconds for --seconds."""
import argparse, math, os, socket, struct, sys, time

def crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t

TABLE = crc32c_table()

def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF

def masked(data):
    c = crc32c(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)

def field(num, wire, payload):
    return varint((num << 3) | wire) + payload

def length_delimited(num, data):
    return field(num, 2, varint(len(data)) + data)

class EventWriter:
    def __init__(self, folder):
        os.makedirs(folder, exist_ok=True)
        name = "events.out.tfevents.%d.%s" % (int(time.time()), socket.gethostname())
        self.f = open(os.path.join(folder, name), "wb")
        self.write(field(1, 1, struct.pack("<d", time.time())) + length_delimited(3, b"brain.Event:2"))

    def write(self, event):
        header = struct.pack("<Q", len(event))
        self.f.write(header + struct.pack("<I", masked(header)) + event + struct.pack("<I", masked(event)))
        self.f.flush()

    def scalar(self, tag, value, step):
        v = length_delimited(1, tag.encode()) + field(2, 5, struct.pack("<f", value))
        summary = length_delimited(1, v)
        self.write(field(1, 1, struct.pack("<d", time.time())) + field(2, 0, varint(step)) + length_delimited(5, summary))

p = argparse.ArgumentParser()
p.add_argument("--seconds", type=float, default=300)
p.add_argument("--delay", type=float, default=0.1)
p.add_argument("--burst", type=int, default=0)
p.add_argument("--pause", type=float, default=0)
args = p.parse_args()
rundir = os.environ.get("RUNDIR", ".")
train = EventWriter(os.path.join(rundir, "train"))
val = EventWriter(os.path.join(rundir, "validation"))
time.sleep(args.pause)
for i in range(args.burst):
    print("burst line %d of %d" % (i, args.burst))
print("warning: this op trains nothing", file=sys.stderr)
start = time.time()
step = 0
while time.time() - start < args.seconds:
    step += 1
    loss = 2.0 * math.exp(-step / 200.0) + 0.05 * math.sin(step / 3.0)
    print("step: %d" % step)
    if step == 5:
        print("loss: nan")
    elif step == 7:
        print("loss: inf")
    else:
        print("loss: %f" % loss)
    print("acc: %f" % (1 - loss / 3))
    train.scalar("loss", loss, step)
    if step % 5 == 0:
        print("val_loss: %f" % (loss * 1.1))
        val.scalar("loss", loss * 1.1, step)
    time.sleep(args.delay)
print("done after %d steps" % step)
`;

/** A private temp folder for one test file. */
export function tempBase(name) {
  return mkdtempSync(join(tmpdir(), `guild-web-${name}-`));
}

export function cleanup(base) {
  if (process.env.GUILD_KEEP_TEMP) {
    console.log(`# kept ${base}`);
    return;
  }
  rmSync(base, { recursive: true, force: true, maxRetries: 3 });
}

/** Headless Chromium with a fresh profile. */
export async function launchBrowser(base) {
  const { chromium } = await import("playwright-core");
  const userDataDir = join(base, "chromium-profile");
  mkdirSync(userDataDir, { recursive: true });
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1400, height: 900 },
    acceptDownloads: true,
  });
  return context;
}

/** Saves a screenshot under test-output/. */
export async function screenshot(page, name) {
  mkdirSync(OUT, { recursive: true });
  const path = join(OUT, `${name}.png`);
  await page.screenshot({ path, fullPage: false });
  return path;
}

/** Logs the page's console errors and failed requests into a list the tests can show. */
export function watchPage(page, log) {
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") log.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => log.push(`pageerror: ${e.stack ?? e.message}`));
}

/** Whether TensorBoard can start here: `tensorboard` importable by python3 (GUILD_PYTHON
 * when set). Returns the reason to skip, or null. With GUILD_REQUIRE_TENSORBOARD=1 a
 * missing TensorBoard is a failure, not a skip. */
export function tensorboardSkipReason() {
  const python = process.env.GUILD_PYTHON || "python3";
  const r = spawnSync(python, ["-c", "import tensorboard.main"], { stdio: "ignore" });
  if (r.status === 0) return null;
  const why = `${python} cannot import tensorboard (pip install tensorboard)`;
  if (process.env.GUILD_REQUIRE_TENSORBOARD === "1") throw new Error(`${why}, and GUILD_REQUIRE_TENSORBOARD=1`);
  console.log(`# skipping the TensorBoard test: ${why}`);
  return why;
}

/** An environment in which guildd finds no TensorBoard: a python3 that runs everything
 * but refuses to import tensorboard (as GUILD_PYTHON), and PATH without any folder that
 * holds a `tensorboard` program. */
export function envWithoutTensorBoard(base) {
  const real = execFileSync("python3", ["-c", "import sys; print(sys.executable)"], { encoding: "utf8" }).trim();
  const dir = join(base, "no-tensorboard");
  mkdirSync(dir, { recursive: true });
  const python = join(dir, "python3");
  writeFileSync(
    python,
    `#!/bin/sh\n# python3 without TensorBoard: guildd's "import tensorboard.main" probe fails; runs work.\ncase "$*" in *"import tensorboard"*) echo "ModuleNotFoundError: No module named 'tensorboard'" >&2; exit 1;; esac\nexec ${JSON.stringify(real)} "$@"\n`,
  );
  chmodSync(python, 0o755);
  const path = (process.env.PATH ?? "")
    .split(delimiter)
    .filter((d) => d && !existsSync(join(d, "tensorboard")))
    .join(delimiter);
  return { GUILD_PYTHON: python, PATH: path };
}

/** Whether the ops that write event files with tensorboardX can run here. Returns the
 * reason to skip, or null. With GUILD_REQUIRE_TBX set (CI) its absence is a failure. */
export function tensorboardxSkipReason() {
  const python = process.env.GUILD_PYTHON || "python3";
  const r = spawnSync(python, ["-c", "import tensorboardX"], { stdio: "ignore" });
  if (r.status === 0) return null;
  const why = `${python} cannot import tensorboardX (pip install tensorboardX)`;
  if (process.env.GUILD_REQUIRE_TBX) throw new Error(`${why}, and GUILD_REQUIRE_TBX is set`);
  console.log(`# skipping the view tests: ${why}`);
  return why;
}

/** A project folder (`name`, default FORM) of an original-form fixture
 * (tests/fixtures/guild-2017/FORM): its Guild file and the fixture scripts. `edit` may
 * change the Guild file's text. */
export function fixtureProject(base, form, { name = form, edit = (text) => text } = {}) {
  const fixtures = join(ROOT, "tests", "fixtures", "guild-2017");
  const dir = join(base, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "Guild"), edit(readFileSync(join(fixtures, form, "Guild"), "utf8")));
  for (const script of ["digits.py", "samples.py"]) cpSync(join(fixtures, "scripts", script), join(dir, script));
  return dir;
}

const TICK_UNITS = {
  B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, PB: 1e15,
  KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40, PiB: 2 ** 50,
};

/** The number an axis label says: `20 MiB`, `1.5 KB`, `99.5%`, `1.2e+7`, `0:01:05`,
 * `1:05`, `0:00.5`, `-0:01`, `12,345`; NaN when it says none. */
export function tickValue(label) {
  let m;
  if ((m = /^(-?[\d.,]+) ?([KMGTP]?i?B)$/.exec(label)) && TICK_UNITS[m[2]]) return Number(m[1].replaceAll(",", "")) * TICK_UNITS[m[2]];
  if ((m = /^(-?[\d.,]+) ?%$/.exec(label))) return Number(m[1].replaceAll(",", "")) / 100;
  if ((m = /^(-?)(\d+):(\d\d)(?::(\d\d))?(?:\.(\d))?$/.exec(label))) {
    const [a, b, c] = [Number(m[2]), Number(m[3]), m[4] === undefined ? null : Number(m[4])];
    const s = (c === null ? a * 60 + b : a * 3600 + b * 60 + c) + (m[5] ? Number(m[5]) / 10 : 0);
    return m[1] ? -s : s;
  }
  return label.trim() === "" ? NaN : Number(label.replaceAll(",", ""));
}

/**
 * What is wrong with the axes of the charts `selector` finds (after they have drawn):
 * every tick label must say a number, the labels in order, each within half a step of
 * the tick it labels, the ticks within the y scale and near the data, the data within
 * the scale, and no label wider than its axis. Returns one line per problem (none: []),
 * and how many axes it looked at.
 */
export async function axisProblems(page, selector = "time-chart") {
  const reports = await page.$$eval(selector, (els) =>
    els.map((el) => ({ chart: el.dataset.group ?? `${el.dataset.row}/${el.dataset.series}`, state: el.dataset.state, ...el.axisReport() })),
  );
  const problems = [];
  let axes = 0;
  for (const r of reports) {
    if (r.state !== "ready") continue;
    for (const [name, a] of [["x", r.x], ["y", r.y]]) {
      if (!a || a.splits.length === 0) continue;
      axes++;
      const where = `${r.chart} ${name} [${a.labels.join(", ")}]`;
      const values = a.labels.map(tickValue);
      if (values.some(Number.isNaN)) problems.push(`${where}: a label says no number`);
      for (let i = 1; i < values.length; i++) {
        if (!(values[i] > values[i - 1])) problems.push(`${where}: labels out of order`);
      }
      values.forEach((v, i) => {
        const tol = a.step / 2 + 1e-9 * Math.abs(a.splits[i]);
        if (!(Math.abs(v - a.splits[i]) <= tol)) problems.push(`${where}: ${a.labels[i]} labels ${a.splits[i]}`);
      });
      if (a.widest > a.size) problems.push(`${where}: a label (${a.widest} px) is wider than its axis (${a.size} px)`);
      if (name === "y") {
        const [lo, hi] = r.scale;
        const [dlo, dhi] = r.data;
        if (a.splits[0] < lo - a.step * 1e-6 || a.splits.at(-1) > hi + a.step * 1e-6) problems.push(`${where}: ticks outside the scale ${lo}..${hi}`);
        if (Number.isFinite(dlo) && (dlo < lo || dhi > hi)) problems.push(`${where}: data ${dlo}..${dhi} outside the scale ${lo}..${hi}`);
        if (Number.isFinite(dlo) && (a.splits[0] > dhi + a.step || a.splits.at(-1) < dlo - a.step)) problems.push(`${where}: ticks away from the data ${dlo}..${dhi}`);
      }
    }
  }
  return { problems, axes };
}
