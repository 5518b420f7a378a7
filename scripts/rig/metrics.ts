/**
 * SpiceDB's own Prometheus metrics (`/metrics` on --metrics-addr), scraped to
 * show where work really happens: every dispatch a node serves counts in
 * `grpc_server_handled_total{grpc_service="dispatch.v1.DispatchService",
 * grpc_method="DispatchCheck"}`, one series per grpc_code (OK, and Canceled
 * for the branches a union stops early). Checked on spicedb v1.56.2, which
 * exports no client-side series for dispatch.
 */

export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The service SpiceDB's dispatch API is registered under. */
export const DISPATCH_SERVICE = 'dispatch.v1.DispatchService';

/** Parses the Prometheus text exposition format (comments and exemplars skipped). */
export function parseMetrics(text: string): MetricSample[] {
  const out: MetricSample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m?.[1] || m[4] === undefined) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      if (l[1] !== undefined) labels[l[1]] = (l[2] ?? '').replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c));
    }
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

/** Fetches and parses a `/metrics` endpoint. */
export async function scrapeMetrics(url: string, timeoutMs = 5000): Promise<MetricSample[]> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return parseMetrics(await res.text());
}

/** Sum of every series of `name` whose labels include `labels`. */
export function sumMetric(samples: readonly MetricSample[], name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}

/** DispatchCheck calls a node has served (all status codes), from its `/metrics`. */
export async function dispatchChecksServed(metricsUrl: string): Promise<number> {
  const samples = await scrapeMetrics(metricsUrl);
  return sumMetric(samples, 'grpc_server_handled_total', { grpc_service: DISPATCH_SERVICE, grpc_method: 'DispatchCheck' });
}
