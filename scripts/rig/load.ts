/**
 * Continuous CheckPermission load from several clients across the cluster's
 * API endpoints, as an application behind a load balancer would send it. Every
 * request is recorded (start, end, endpoint, error), so any time window can be
 * summarised afterwards: failed requests, stalled seconds (whole wall-clock
 * seconds in which no check completed), the longest time without a completed
 * check, p50/p99/max latency. Bounded in time and count: it stops by itself.
 */
import { v1 } from '@authzed/authzed-node';
import { Metadata } from '@grpc/grpc-js';

export interface CheckLoadOptions {
  presharedKey: string;
  /** The API endpoints a client may use now; read before every request (nodes come and go). */
  endpoints: () => readonly string[];
  /** The next check to send. */
  nextCheck: () => v1.CheckPermissionRequest;
  /** Concurrent clients, each sending one request at a time (default 4). */
  clients?: number;
  /** Checks per second per client at most (default 20); 0 sends the next as soon as one is answered. */
  ratePerClient?: number;
  /** Stops by itself after this long. */
  maxDurationMs: number;
  /** ... or after this many requests (default: no limit besides time). */
  maxRequests?: number;
  /** Client deadline of one check (default 90 s, above SpiceDB's 60 s dispatch timeout, so a stall shows as latency). */
  requestTimeoutMs?: number;
}

export interface CheckSample {
  startedAt: number;
  /** Undefined while in flight. */
  endedAt?: number;
  client: number;
  endpoint: string;
  error?: string;
}

export interface LoadWindow {
  fromMs: number;
  toMs: number;
}

export interface LoadReport {
  fromMs: number;
  toMs: number;
  durationMs: number;
  /** Requests started in the window. */
  requests: number;
  completed: number;
  failed: number;
  /** Failures by gRPC code and message. */
  errors: Record<string, number>;
  /** Started in the window and not answered when the report was made. */
  inFlight: number;
  /** Age of the oldest of those, in ms (0 when none). */
  oldestInFlightMs: number;
  /** Whole wall-clock seconds inside the window in which no check completed. */
  stalledSeconds: number;
  /** Epoch seconds of those stalled seconds. */
  stalledSecondList: number[];
  /** Longest stretch of the window without a completed check, in ms. */
  longestGapMs: number;
  p50Ms: number;
  p99Ms: number;
  /** Includes the age of requests still in flight. */
  maxMs: number;
  /** Successful completions in each whole second of the window. */
  perSecond: number[];
  checksPerSecond: number;
  /** Requests started per endpoint. */
  byEndpoint: Record<string, number>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A running load. Create with `startCheckLoad`. */
export class CheckLoad {
  readonly startedAt = Date.now();
  /** Resolves when every client has stopped (time or count reached, or `stop`). */
  readonly done: Promise<void>;
  private readonly log: CheckSample[] = [];
  private stopping = false;
  private sent = 0;
  private readonly channels: v1.ZedClientInterface[] = [];

  constructor(private readonly opts: CheckLoadOptions) {
    const clients = opts.clients ?? 4;
    this.done = Promise.all(Array.from({ length: clients }, (_, i) => this.client(i))).then(() => {
      for (const c of this.channels) c.close();
    });
  }

  private async client(index: number): Promise<void> {
    const deadline = this.startedAt + this.opts.maxDurationMs;
    const interval = (this.opts.ratePerClient ?? 20) > 0 ? 1000 / (this.opts.ratePerClient ?? 20) : 0;
    const timeout = this.opts.requestTimeoutMs ?? 90_000;
    const byEndpoint = new Map<string, v1.ZedPromiseClientInterface>();
    let turn = index;
    while (!this.stopping && Date.now() < deadline && (this.opts.maxRequests === undefined || this.sent < this.opts.maxRequests)) {
      const endpoints = this.opts.endpoints();
      if (endpoints.length === 0) {
        await sleep(50);
        continue;
      }
      const endpoint = endpoints[turn++ % endpoints.length] ?? '';
      let client = byEndpoint.get(endpoint);
      if (!client) {
        const c = v1.NewClient(this.opts.presharedKey, endpoint, v1.ClientSecurity.INSECURE_PLAINTEXT_CREDENTIALS);
        this.channels.push(c);
        client = c.promises;
        byEndpoint.set(endpoint, client);
      }
      const sample: CheckSample = { startedAt: Date.now(), client: index, endpoint };
      this.log.push(sample);
      this.sent++;
      try {
        await client.checkPermission(this.opts.nextCheck(), new Metadata(), { deadline: new Date(sample.startedAt + timeout) });
      } catch (err) {
        sample.error = describeError(err);
      }
      sample.endedAt = Date.now();
      const wait = interval - (sample.endedAt - sample.startedAt);
      if (wait > 0) await sleep(wait);
    }
  }

  /** Every request so far. */
  samples(): readonly CheckSample[] {
    return this.log;
  }

  /** Stops issuing requests and waits for those in flight. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.done;
  }

  /** Summary of a window (default: from the start until now). */
  report(window: Partial<LoadWindow> = {}): LoadReport {
    return summarize(this.log, { fromMs: window.fromMs ?? this.startedAt, toMs: window.toMs ?? Date.now() });
  }
}

/** Starts the clients; they run until `maxDurationMs`, `maxRequests` or `stop()`. */
export function startCheckLoad(opts: CheckLoadOptions): CheckLoad {
  return new CheckLoad(opts);
}

/** Summarises the samples of a window. Exported for the benchmark and unit tests. */
export function summarize(samples: readonly CheckSample[], window: LoadWindow, now = Date.now()): LoadReport {
  const { fromMs, toMs } = window;
  const started = samples.filter((s) => s.startedAt >= fromMs && s.startedAt < toMs);
  const finished = started.filter((s) => s.endedAt !== undefined);
  const failed = finished.filter((s) => s.error !== undefined);
  const errors: Record<string, number> = {};
  for (const s of failed) errors[s.error ?? ''] = (errors[s.error ?? ''] ?? 0) + 1;
  const byEndpoint: Record<string, number> = {};
  for (const s of started) byEndpoint[s.endpoint] = (byEndpoint[s.endpoint] ?? 0) + 1;
  const latencies = finished.map((s) => (s.endedAt ?? 0) - s.startedAt).sort((a, b) => a - b);
  const inFlightAges = started.filter((s) => s.endedAt === undefined).map((s) => now - s.startedAt);

  // Successful completions inside the window, from any request (a stall ends when hung requests complete).
  const completions = samples
    .filter((s) => s.error === undefined && s.endedAt !== undefined && s.endedAt >= fromMs && s.endedAt < toMs)
    .map((s) => s.endedAt ?? 0)
    .sort((a, b) => a - b);
  const firstSecond = Math.ceil(fromMs / 1000);
  const lastSecond = Math.floor(toMs / 1000); // exclusive: [s, s+1) must lie inside the window
  const perSecond: number[] = [];
  const stalledSecondList: number[] = [];
  let c = 0;
  for (let s = firstSecond; s < lastSecond; s++) {
    while (c < completions.length && (completions[c] ?? 0) < s * 1000) c++;
    let n = 0;
    while (c + n < completions.length && (completions[c + n] ?? 0) < (s + 1) * 1000) n++;
    perSecond.push(n);
    if (n === 0) stalledSecondList.push(s);
  }
  let longestGapMs = 0;
  let previous = fromMs;
  for (const t of [...completions, toMs]) {
    longestGapMs = Math.max(longestGapMs, t - previous);
    previous = t;
  }
  const pct = (p: number): number => (latencies.length === 0 ? 0 : (latencies[Math.min(latencies.length - 1, Math.ceil(p * latencies.length) - 1)] ?? 0));
  const successful = finished.length - failed.length;
  return {
    fromMs,
    toMs,
    durationMs: toMs - fromMs,
    requests: started.length,
    completed: successful,
    failed: failed.length,
    errors,
    inFlight: inFlightAges.length,
    oldestInFlightMs: Math.max(0, ...inFlightAges),
    stalledSeconds: stalledSecondList.length,
    stalledSecondList,
    longestGapMs,
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
    maxMs: Math.max(0, ...latencies, ...inFlightAges),
    perSecond,
    checksPerSecond: toMs > fromMs ? Math.round((completions.length / (toMs - fromMs)) * 10000) / 10 : 0,
    byEndpoint,
  };
}

function describeError(err: unknown): string {
  if (err instanceof Error) {
    const e = err as Error & { code?: number; details?: string };
    const msg = (e.details ?? e.message).slice(0, 160);
    return e.code !== undefined ? `${e.code}: ${msg}` : msg;
  }
  return String(err);
}
