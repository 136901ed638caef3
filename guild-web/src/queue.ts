// The queue and sweeps as the pages show them. The queue: each queued run's position, ranked here from the
// runs the store has (priority first, then the order they asked), as guildd orders its
// queue, so positions stay right as runs ahead of them start, without a message per
// queued run on every start.

import { RunStatus } from "./gen/guild/v1/guild_pb";
import type { RunRow } from "./store";

/** Position (1 = next) of every queued run. */
export function queuePositions(runs: Iterable<RunRow>): Map<string, number> {
  const queued: RunRow[] = [];
  for (const r of runs) if (r.status === RunStatus.QUEUED) queued.push(r);
  queued.sort((a, b) => b.priority - a.priority || a.createdMs - b.createdMs || (a.id < b.id ? -1 : 1));
  return new Map(queued.map((r, i) => [r.id, i + 1]));
}

/** Each sweep's trials in trial order. */
export function trialsBySweep(runs: Iterable<RunRow>): Map<string, RunRow[]> {
  const out = new Map<string, RunRow[]>();
  for (const r of runs) {
    if (!r.sweep) continue;
    let list = out.get(r.sweep);
    if (!list) out.set(r.sweep, (list = []));
    list.push(r);
  }
  for (const list of out.values()) list.sort((a, b) => a.trial - b.trial);
  return out;
}

/** The best objective so far at each trial (by trial number), by the sweep's direction. */
export function bestSoFar(points: { n: number; v: number }[], maximize: boolean): { n: number; v: number }[] {
  const out: { n: number; v: number }[] = [];
  let best: number | undefined;
  for (const p of [...points].sort((a, b) => a.n - b.n)) {
    if (best === undefined || (maximize ? p.v > best : p.v < best)) best = p.v;
    out.push({ n: p.n, v: best });
  }
  return out;
}
