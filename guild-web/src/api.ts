// The connection to guildd: grpc-web clients with the token, and the connection state
// that every stream shares (up, reconnecting, unauthenticated) with reconnect backoff.

import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createMethodUrl, encodeEnvelope } from "@connectrpc/connect/protocol";
import { requestHeader, trailerFlag, trailerParse, validateResponse, validateTrailer } from "@connectrpc/connect/protocol-grpc-web";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import {
  CompareService,
  GetSeriesRequestSchema,
  DaemonService,
  MediaService,
  OutputService,
  RunService,
  SeriesService,
  ServeService,
  SweepService,
  TensorBoardService,
  type DaemonStatus,
  type FieldValue,
  type GetSeriesRequest,
  type Run,
  type ViewField,
} from "./gen/guild/v1/guild_pb";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { decodeGetSeries, type SeriesColumns } from "./series-wire";

export const TOKEN_HEADER = "x-guild-token";
const TOKEN_KEY = "guild-token";

/** Why a one-time code from the address gave no token (used, expired), if it did not. */
export let codeProblem: string | null = null;

/**
 * Takes the token from the address into session storage and drops it from the address:
 * `?code=` is a one-time code (what `guild view` opens), traded once for the token at
 * `/auth/code`; `?token=` is the token itself (what scripts and bookmarks may carry).
 */
export async function adoptTokenFromUrl(): Promise<void> {
  const url = new URL(window.location.href);
  const token = url.searchParams.get("token");
  const code = url.searchParams.get("code");
  if (token === null && code === null) return;
  url.searchParams.delete("token");
  url.searchParams.delete("code");
  history.replaceState(history.state, "", url.pathname + url.search + url.hash);
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  if (!code) return;
  try {
    const res = await fetch("/auth/code", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ code }),
      cache: "no-store",
    });
    const body = (await res.json()) as { token?: string; error?: string };
    if (res.ok && typeof body.token === "string") sessionStorage.setItem(TOKEN_KEY, body.token);
    else codeProblem = body.error ?? `the one-time code was refused (HTTP ${res.status})`;
  } catch (err) {
    codeProblem = `cannot trade the one-time code for the token: ${String(err)}`;
  }
}

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Settles once the address's code (if any) has been traded for the token. */
export const tokenReady: Promise<void> = adoptTokenFromUrl();

const withToken: Interceptor = (next) => async (req) => {
  await tokenReady;
  const t = token();
  if (t) req.header.set(TOKEN_HEADER, t);
  return next(req);
};

const transport = createGrpcWebTransport({
  baseUrl: window.location.origin,
  interceptors: [withToken],
});

export const daemon: Client<typeof DaemonService> = createClient(DaemonService, transport);
export const runs: Client<typeof RunService> = createClient(RunService, transport);
export const output: Client<typeof OutputService> = createClient(OutputService, transport);
export const series: Client<typeof SeriesService> = createClient(SeriesService, transport);
export const compare: Client<typeof CompareService> = createClient(CompareService, transport);
export const serves: Client<typeof ServeService> = createClient(ServeService, transport);
export const tensorboard: Client<typeof TensorBoardService> = createClient(TensorBoardService, transport);
export const sweeps: Client<typeof SweepService> = createClient(SweepService, transport);
export const media: Client<typeof MediaService> = createClient(MediaService, transport);

/**
 * An image's or audio clip's bytes from `/media/RUN/KIND/SEQ` (the token in a header, so
 * `<img>` cannot load it directly), as an object URL. guildd marks them immutable, so the
 * browser's cache answers repeats; the URLs themselves are kept here too, the most
 * recent MEDIA_URLS of them, so scrubbing back and forth costs nothing.
 */
const MEDIA_URLS = 400;
const mediaUrls = new Map<string, Promise<string>>();

export function mediaObjectUrl(run: string, kind: "image" | "audio", seq: bigint | number): Promise<string> {
  const path = `/media/${encodeURIComponent(run)}/${kind}/${seq}`;
  const hit = mediaUrls.get(path);
  if (hit) {
    mediaUrls.delete(path);
    mediaUrls.set(path, hit);
    return hit;
  }
  const p = (async () => {
    await tokenReady;
    const t = token();
    const res = await fetch(path, { headers: t ? { [TOKEN_HEADER]: t } : {} });
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${(await res.text()).trim()}`);
    return URL.createObjectURL(await res.blob());
  })();
  p.catch(() => mediaUrls.delete(path));
  mediaUrls.set(path, p);
  while (mediaUrls.size > MEDIA_URLS) {
    const [oldest, url] = mediaUrls.entries().next().value as [string, Promise<string>];
    mediaUrls.delete(oldest);
    void url.then((u) => URL.revokeObjectURL(u), () => {});
  }
  return p;
}

/**
 * GetSeries, answered as columns (series-wire.ts) rather than protobuf-es messages: the
 * same grpc-web call as the generated client makes (same headers, token and status
 * checks, ConnectError on failure), with the answer decoded straight into typed arrays.
 */
export async function getSeriesColumns(
  req: MessageInitShape<typeof GetSeriesRequestSchema>,
  opts: { signal?: AbortSignal } = {},
): Promise<SeriesColumns[]> {
  const method = SeriesService.method.getSeries;
  await tokenReady;
  const header = requestHeader(true, undefined, undefined, false);
  const t = token();
  if (t) header.set(TOKEN_HEADER, t);
  const body = encodeEnvelope(0, toBinary(GetSeriesRequestSchema, create(GetSeriesRequestSchema, req) as GetSeriesRequest));
  let bytes: Uint8Array;
  let response: Response;
  try {
    response = await fetch(createMethodUrl(window.location.origin, method), {
      method: "POST",
      headers: header,
      body,
      signal: opts.signal,
      redirect: "error",
    });
    bytes = new Uint8Array(await response.arrayBuffer());
  } catch (err) {
    if (opts.signal?.aborted) throw new ConnectError("the call was aborted", Code.Canceled);
    throw ConnectError.from(err, Code.Unavailable);
  }
  const { headerError } = validateResponse(response.status, response.headers);
  let message: Uint8Array | undefined;
  let trailer: Headers | undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i + 5 <= bytes.length; ) {
    const flags = bytes[i];
    const len = view.getUint32(i + 1);
    const data = bytes.subarray(i + 5, i + 5 + len);
    i += 5 + len;
    if ((flags & trailerFlag) === trailerFlag) trailer = trailerParse(data);
    else if (flags !== 0) throw new ConnectError("protocol error: compressed or unknown frame", Code.Internal);
    else message = data;
  }
  if (!trailer) throw headerError ?? new ConnectError("protocol error: missing trailer", Code.Unknown);
  validateTrailer(trailer, response.headers);
  if (!message) throw new ConnectError("protocol error: missing message", Code.Unknown);
  try {
    return decodeGetSeries(message);
  } catch (err) {
    throw new ConnectError(err instanceof Error ? err.message : String(err), Code.Internal);
  }
}

export interface CompareEntry {
  run: Run;
  /** 1 = latest. */
  index: number;
  flags: Map<string, string>;
  /** Last, min and max of each key (NaN carried as NaN). */
  scalars: Map<string, { last: number; min: number; max: number }>;
  /** With `view`: the run's values of the views' compare columns, by column name. */
  view: Map<string, FieldValue>;
}

export interface Compared {
  entries: CompareEntry[];
  /** With `view`: the compare columns of the runs' views, in order of first use (none
   * when no run's Guild file has a view with compare columns). */
  viewColumns: ViewField[];
}

/** CompareRuns for these runs (ids, prefixes or indexes; empty: every run): each run
 * with its flags and series summaries, from the index, and with `view` the compare
 * columns of the runs' views and each run's values, in one streamed answer. */
export async function compareRuns(
  runs: string[],
  opts: { sys?: boolean; view?: boolean; signal?: AbortSignal } = {},
): Promise<Compared> {
  const flagNames: string[] = [];
  const flagValues: string[] = [];
  const keys: string[] = [];
  const viewColumns: ViewField[] = [];
  const entries: CompareEntry[] = [];
  const req = { selection: { runs }, sys: opts.sys ?? false, view: opts.view ?? false };
  for await (const chunk of compare.compareRuns(req, { signal: opts.signal })) {
    flagNames.push(...chunk.newFlagNames);
    flagValues.push(...chunk.newFlagValues);
    keys.push(...chunk.newScalarKeys);
    viewColumns.push(...chunk.newViewColumns);
    for (const row of chunk.rows) {
      if (!row.run) continue;
      const flags = new Map<string, string>();
      row.flagNames.forEach((n, i) => flags.set(flagNames[n], flagValues[row.flagValues[i]]));
      const scalars = new Map<string, { last: number; min: number; max: number }>();
      row.scalarKeys.forEach((k, i) =>
        scalars.set(keys[k], { last: row.scalarLast[i], min: row.scalarMin[i], max: row.scalarMax[i] }),
      );
      const view = new Map<string, FieldValue>();
      row.viewColumns.forEach((c, i) => {
        const col = viewColumns[c];
        if (col && row.viewValues[i]) view.set(col.name, row.viewValues[i]);
      });
      entries.push({ run: row.run, index: row.index, flags, scalars, view });
    }
  }
  return { entries, viewColumns };
}

export type ConnState = "connecting" | "up" | "reconnecting" | "unauthenticated";

type Listener = () => void;

/** One shared view of whether guildd answers. Streams report failures here and wait for
 * `up()` before they reconnect; the app shows a banner while the state is not "up". */
class Connection {
  state: ConnState = "connecting";
  status: DaemonStatus | null = null;
  attempt = 0;
  lastError = "";
  /** Bumped each time the daemon comes back after being unreachable: owners resync. */
  epoch = 0;
  private listeners = new Set<Listener>();
  private waiters: Array<() => void> = [];
  private probing = false;

  on(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private set(state: ConnState) {
    this.state = state;
    for (const fn of this.listeners) fn();
    if (state === "up") {
      const w = this.waiters;
      this.waiters = [];
      for (const fn of w) fn();
    }
  }

  /** Resolves when guildd answers (at once when it does, or before the first answer:
   * the first calls go out together with the first GetStatus). */
  up(): Promise<void> {
    if (this.state === "up" || this.state === "connecting") return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async start(): Promise<void> {
    await tokenReady;
    if (!token()) {
      this.lastError = codeProblem ?? "no token";
      this.set("unauthenticated");
      return;
    }
    await this.probe(false);
  }

  /** A call or stream failed with `err`: unless it is the caller's own abort, note it and
   * start probing the daemon until it answers. */
  report(err: unknown): void {
    const ce = ConnectError.from(err);
    if (ce.code === Code.Canceled) return;
    if (ce.code === Code.Unauthenticated) {
      // A spent or expired code says more than the daemon's "a token is required".
      this.lastError = codeProblem ?? ce.rawMessage;
      this.set("unauthenticated");
      return;
    }
    if (!isConnectionError(ce)) return;
    this.lastError = ce.rawMessage || ce.message;
    if (this.state !== "reconnecting") this.set("reconnecting");
    void this.probe(true);
  }

  private async probe(wasDown: boolean): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    this.attempt = 0;
    try {
      for (;;) {
        try {
          const st = await daemon.getStatus({}, { timeoutMs: 3000 });
          const restarted = this.status !== null && (st.pid !== this.status.pid || st.startedMs !== this.status.startedMs);
          this.status = st;
          if (wasDown || restarted) this.epoch++;
          this.attempt = 0;
          this.set("up");
          return;
        } catch (err) {
          const ce = ConnectError.from(err);
          if (ce.code === Code.Unauthenticated) {
            this.lastError = codeProblem ?? ce.rawMessage;
            this.set("unauthenticated");
            return;
          }
          wasDown = true;
          this.attempt++;
          this.lastError = ce.rawMessage || ce.message;
          if (this.state !== "reconnecting") this.set("reconnecting");
          else for (const fn of this.listeners) fn();
          await sleep(backoff(this.attempt));
        }
      }
    } finally {
      this.probing = false;
    }
  }
}

export const conn = new Connection();

/** Resolves on a new macrotask, so rendering and input can run in between. */
export function yieldToBrowser(): Promise<void> {
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => resolve();
    ch.port2.postMessage(null);
  });
}

/** 250 ms, doubling up to 5 s, with some jitter. */
export function backoff(attempt: number): number {
  const base = Math.min(5000, 250 * 2 ** Math.max(0, attempt - 1));
  return base * (0.8 + Math.random() * 0.4);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    });
  });
}

/** Errors that mean "the daemon is not there (now)", as opposed to an answer. */
export function isConnectionError(err: ConnectError): boolean {
  return (
    err.code === Code.Unavailable ||
    err.code === Code.Unknown ||
    err.code === Code.Internal ||
    err.code === Code.DeadlineExceeded ||
    err.code === Code.Aborted ||
    err.code === Code.ResourceExhausted
  );
}

export function errorText(err: unknown): string {
  const ce = ConnectError.from(err);
  return `${Code[ce.code] ?? ce.code}: ${ce.rawMessage || ce.message}`;
}

/**
 * Keeps a server stream open across daemon restarts. `open` starts the stream from the
 * owner's own resume point (a cursor or seq it tracks); each message goes to `onMessage`.
 * When the stream ends cleanly, `ended()` says whether that is the real end (true) or a
 * break to reconnect from (false). Stops when `signal` aborts.
 */
export async function keepStreaming<T>(opts: {
  signal: AbortSignal;
  open: (signal: AbortSignal) => AsyncIterable<T>;
  onMessage: (msg: T) => void;
  ended: () => boolean | Promise<boolean>;
  onError?: (err: ConnectError) => void;
  onReconnect?: () => void;
}): Promise<void> {
  const { signal } = opts;
  let attempt = 0;
  while (!signal.aborted) {
    await conn.up();
    if (signal.aborted) return;
    let failed = false;
    try {
      let slice = performance.now();
      for await (const msg of opts.open(signal)) {
        attempt = 0;
        opts.onMessage(msg);
        // Messages that arrived together are decoded one after another without a break;
        // let the page paint and take input every 25 ms of that.
        if (performance.now() - slice > 25) {
          await yieldToBrowser();
          slice = performance.now();
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      const ce = ConnectError.from(err);
      if (ce.code === Code.Canceled && signal.aborted) return;
      if (ce.code === Code.Unauthenticated) {
        conn.report(ce);
        return;
      }
      if (!isConnectionError(ce) && ce.code !== Code.Canceled) {
        // An answer (NotFound, InvalidArgument...): retrying will not change it.
        opts.onError?.(ce);
        return;
      }
      conn.report(ce);
      failed = true;
    }
    if (signal.aborted) return;
    if (!failed) {
      let done = false;
      try {
        done = await opts.ended();
      } catch (err) {
        conn.report(err);
      }
      if (done) return;
    }
    attempt++;
    await sleep(backoff(attempt), signal);
    opts.onReconnect?.();
  }
}
