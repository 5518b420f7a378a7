/**
 * The figures the cluster test asserts on are computed here: stalled seconds
 * (whole wall-clock seconds with no completed check), the longest gap,
 * percentiles, failures; the recovery time; and the Prometheus parsing that
 * reads SpiceDB's DispatchCheck counters.
 */
import { recoveryAfter } from '../../scripts/rig/cluster-scenarios';
import { summarize, type CheckSample } from '../../scripts/rig/load';
import { DISPATCH_SERVICE, parseMetrics, sumMetric } from '../../scripts/rig/metrics';

const T = 1_700_000_000_000; // a whole second
const ok = (start: number, end: number, endpoint = 'a'): CheckSample => ({ startedAt: T + start, endedAt: T + end, client: 0, endpoint });

describe('summarize', () => {
  it('counts no stalled second when checks complete in every second', () => {
    const samples = Array.from({ length: 50 }, (_, i) => ok(i * 100, i * 100 + 50));
    const r = summarize(samples, { fromMs: T, toMs: T + 5000 });
    expect(r.stalledSeconds).toBe(0);
    expect(r.perSecond).toEqual([10, 10, 10, 10, 10]);
    expect(r.longestGapMs).toBe(100);
    expect(r.failed).toBe(0);
    expect(r.p50Ms).toBe(50);
  });

  it('counts the whole seconds without a completion, and the gap, when requests hang', () => {
    // Completions until 1.9 s; one request started at 1.95 s hangs until 5.2 s; more from 5.3 s.
    const samples = [
      ...Array.from({ length: 19 }, (_, i) => ok(i * 100, i * 100 + 20)),
      ok(1950, 5200),
      ...Array.from({ length: 8 }, (_, i) => ok(5300 + i * 100, 5320 + i * 100)),
    ];
    const r = summarize(samples, { fromMs: T, toMs: T + 6000 });
    expect(r.stalledSecondList.map((s) => s - T / 1000)).toEqual([2, 3, 4]);
    expect(r.stalledSeconds).toBe(3);
    expect(r.longestGapMs).toBe(5200 - 1820);
    expect(r.maxMs).toBe(3250);
    expect(r.p99Ms).toBe(3250);
  });

  it('counts failures by message and does not count them as completions', () => {
    const samples: CheckSample[] = [ok(0, 10), { ...ok(100, 110), error: '14: unavailable' }, { ...ok(1100, 1150), error: '14: unavailable' }];
    const r = summarize(samples, { fromMs: T, toMs: T + 2000 });
    expect(r.failed).toBe(2);
    expect(r.completed).toBe(1);
    expect(r.errors).toEqual({ '14: unavailable': 2 });
    expect(r.stalledSecondList.map((s) => s - T / 1000)).toEqual([1]);
  });

  it('reports requests still in flight with their age in the max', () => {
    const samples: CheckSample[] = [ok(0, 10), { startedAt: T + 500, client: 1, endpoint: 'b' }];
    const r = summarize(samples, { fromMs: T, toMs: T + 1000 }, T + 4500);
    expect(r.inFlight).toBe(1);
    expect(r.oldestInFlightMs).toBe(4000);
    expect(r.maxMs).toBe(4000);
    expect(r.byEndpoint).toEqual({ a: 1, b: 1 });
  });

  it('only counts seconds that lie wholly inside the window', () => {
    const r = summarize([ok(0, 10)], { fromMs: T + 300, toMs: T + 2700 });
    expect(r.perSecond).toHaveLength(1);
    expect(r.stalledSeconds).toBe(1);
  });
});

describe('recoveryAfter', () => {
  const report = (perSecond: number[]) => ({ ...summarize([], { fromMs: T, toMs: T + perSecond.length * 1000 }), perSecond });

  it('is 0 when the rate never fell below half the baseline', () => {
    expect(recoveryAfter(report([40, 38, 41, 25, 40]), T + 500, 40)).toBe(0);
  });

  it('runs from the signal to the end of the last slow second', () => {
    expect(recoveryAfter(report([40, 12, 0, 0, 0, 30, 40]), T + 1500, 40)).toBe(5000 - 1500);
  });
});

describe('parseMetrics', () => {
  const text = [
    '# HELP grpc_server_handled_total Total number of RPCs completed on the server.',
    '# TYPE grpc_server_handled_total counter',
    `grpc_server_handled_total{grpc_code="OK",grpc_method="DispatchCheck",grpc_service="${DISPATCH_SERVICE}",grpc_type="unary"} 2132`,
    `grpc_server_handled_total{grpc_code="Canceled",grpc_method="DispatchCheck",grpc_service="${DISPATCH_SERVICE}",grpc_type="unary"} 8`,
    'grpc_server_handled_total{grpc_code="OK",grpc_method="CheckPermission",grpc_service="authzed.api.v1.PermissionsService",grpc_type="unary"} 200',
    'go_goroutines 97',
    '',
  ].join('\n');

  it('sums the series of a metric that carry the given labels', () => {
    const samples = parseMetrics(text);
    expect(sumMetric(samples, 'grpc_server_handled_total', { grpc_method: 'DispatchCheck', grpc_service: DISPATCH_SERVICE })).toBe(2140);
    expect(sumMetric(samples, 'grpc_server_handled_total')).toBe(2340);
    expect(sumMetric(samples, 'go_goroutines')).toBe(97);
    expect(sumMetric(samples, 'absent_metric')).toBe(0);
  });
});
