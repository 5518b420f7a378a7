/**
 * Benchmarks 2 and 3 of the suite (issue 8), on a real dispatch cluster:
 *
 * 2. Discovery: ECS event → instance in Cloud Map (registrar handler time),
 *    → every peer resolved it, → the new task served its first dispatch;
 *    against the drain rule's bound.
 * 3. Scale-in under load: failed checks, stalled seconds, longest gap, p99
 *    and max latency of a graceful scale-in 4 → 2 with this design against
 *    ECS-native timing (SIGTERM with deregistration), and of an abrupt kill.
 *
 * Each run starts a fresh cluster. Medians and ranges over BENCH_RUNS runs
 * (default 3) go to docs/benchmarks/cluster.md (printed too); the raw runs
 * to .cache/results/bench-cluster.json. Measures only; never fails on a
 * number. Usage: npx tsx scripts/bench-cluster.ts
 * (BENCH_RUNS, BENCH_CLIENTS, BENCH_RATE_PER_CLIENT, and the drain-rule
 * inputs CLUSTER_DNS_TTL_SECONDS, CLUSTER_MAX_CONN_AGE_SECONDS, CLUSTER_MARGIN_SECONDS;
 * BENCH_FROM=.cache/results/bench-cluster.json re-renders earlier runs).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { GetInstanceCommand } from '@aws-sdk/client-servicediscovery';
import { CACHE, ROOT } from './rig/components';
import { clusterTimings, startDispatchCluster, type DispatchCluster } from './rig/cluster';
import { machine, measureDiscovery, measureScaleIn, median, summarizeScaleIn, waitForResolution, type DiscoveryMeasurement, type ScaleInSummary } from './rig/cluster-scenarios';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 4);
const RATE = Number(process.env.BENCH_RATE_PER_CLIENT ?? 10);

interface Run {
  discovery: DiscoveryMeasurement;
  graceful: ScaleInSummary;
  native: ScaleInSummary;
  kill: ScaleInSummary;
  dispatchPerNode: number[];
  seconds: number;
}

const t0 = Date.now();
const say = (line: string): void => console.log(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${line}`);

/** Adds `count` tasks and waits until every running task has them in its ring. */
async function scaleOutSettled(cluster: DispatchCluster, count: number): Promise<void> {
  const since = Date.now();
  const added = await cluster.scaleOut(count);
  await waitForResolution(cluster, { nodes: cluster.ecs.tasks('running'), since, include: added.map((t) => t.host), timeoutMs: cluster.boundSeconds * 3000 });
}

let current: DispatchCluster | undefined;
// Ctrl-C: stop what was started (the rig kills its children on exit, but PostgreSQL's folder needs its own stop).
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    say(`${signal}: stopping`);
    void (current?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
  });
}

async function oneRun(index: number): Promise<Run> {
  const started = Date.now();
  const cluster = await startDispatchCluster({ tasks: 3, log: (l) => say(`run ${index}: ${l}`) });
  current = cluster;
  try {
    const load = cluster.startLoad({ clients: CLIENTS, ratePerClient: RATE });
    await new Promise((r) => setTimeout(r, 10_000));
    const before = await cluster.dispatchCounts();
    await new Promise((r) => setTimeout(r, 10_000));
    const after = await cluster.dispatchCounts();
    const dispatchPerNode = Object.entries(after).map(([id, n]) => n - (before[id] ?? 0));

    // Peers re-resolve on a 30 s cycle: start the new task at a random point of it, or every run measures the same phase.
    const offsetMs = Math.round(Math.random() * cluster.timings.resolverMinIntervalSeconds * 1000);
    await new Promise((r) => setTimeout(r, offsetMs));
    // The instance is in Cloud Map once the registering event's handler returned; confirm by reading it.
    const d = await measureDiscovery(cluster);
    const visible = await cluster.deps.serviceDiscovery.send(new GetInstanceCommand({ ServiceId: cluster.aws.cloudMapServiceId, InstanceId: d.taskId }));
    if (visible.Instance?.Attributes?.AWS_INSTANCE_IPV4 !== d.host) throw new Error(`instance ${d.taskId} is not in Cloud Map with ${d.host}`);
    const discovery = d;
    say(`run ${index}: discovery: handler ${d.registrarMs} ms, first dispatch +${d.msToFirstDispatch} ms, all peers +${d.msToAllPeersResolved} ms`);

    const graceful = summarizeScaleIn(await measureScaleIn(cluster, load, { mode: 'graceful', count: 2 }));
    say(`run ${index}: graceful 4 → 2: failed ${graceful.failed}, stalled ${graceful.stalledSeconds} s, p99 ${graceful.p99Ms} ms, max ${graceful.maxMs} ms`);
    await scaleOutSettled(cluster, 2);
    const native = summarizeScaleIn(await measureScaleIn(cluster, load, { mode: 'ecs-native', count: 2 }));
    say(`run ${index}: ECS-native 4 → 2: failed ${native.failed}, stalled ${native.stalledSeconds} s, p99 ${native.p99Ms} ms, max ${native.maxMs} ms`);
    await scaleOutSettled(cluster, 2);
    const kill = summarizeScaleIn(await measureScaleIn(cluster, load, { mode: 'kill', count: 1 }));
    say(`run ${index}: kill 4 → 3: failed ${kill.failed}, stalled ${kill.stalledSeconds} s, p99 ${kill.p99Ms} ms, max ${kill.maxMs} ms`);
    await load.stop();
    return { discovery, graceful, native, kill, dispatchPerNode, seconds: Math.round((Date.now() - started) / 1000) };
  } finally {
    current = undefined;
    await cluster.stop();
  }
}

const fmtMs = (values: number[]): string => {
  const s = [...values].sort((a, b) => a - b);
  const m = median(s);
  return s.length > 1 ? `${Math.round(m)} (${s[0]}–${s[s.length - 1]})` : `${Math.round(m)}`;
};
const fmtS = (ms: number[]): string => {
  const s = [...ms].sort((a, b) => a - b).map((v) => v / 1000);
  const m = median(s);
  return s.length > 1 ? `${m.toFixed(1)} (${(s[0] ?? 0).toFixed(1)}–${(s[s.length - 1] ?? 0).toFixed(1)})` : m.toFixed(1);
};

function report(runs: Run[]): string {
  const timings = clusterTimings();
  const bound = runs[0]?.discovery.boundMs ?? 0;
  const m = machine();
  const rows = (pick: (r: Run) => ScaleInSummary, label: string): string => {
    const xs = runs.map(pick);
    const col = (f: (s: ScaleInSummary) => number) => fmtMs(xs.map(f));
    return `| ${label} | ${xs[0]?.nodes ?? ''} | ${col((s) => s.failed)} | ${col((s) => s.stalledSeconds)} | ${col((s) => s.longestGapMs)} | ${col((s) => s.p50Ms)} | ${col((s) => s.p99Ms)} | ${col((s) => s.maxMs)} | ${col((s) => s.minPerSecond)} | ${col((s) => s.recoveryMs)} |`;
  };
  const ratio = (f: (s: ScaleInSummary) => number): string => {
    const g = median(runs.map((r) => f(r.graceful)));
    const n = median(runs.map((r) => f(r.native)));
    return g > 0 ? `${(n / g).toFixed(0)}×` : `${n} vs 0`;
  };
  return `# Benchmark: dispatch peer discovery and scale-in (benchmarks 2 and 3)

Generated by \`npx tsx scripts/bench-cluster.ts\` on ${new Date().toISOString().slice(0, 10)}: ${runs.length} run(s), each on a fresh cluster; median, with the range over the runs in brackets.${failures.length > 0 ? ` ${failures.length} further run(s) failed and are not counted: ${failures.join('; ')}.` : ''}

Machine: ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.platform}, Node ${m.node}, SpiceDB ${m.spicedb}. No containers: every SpiceDB task is a real \`spicedb serve\` on its own loopback address, sharing one PostgreSQL 15; Cloud Map and ECS are moto; the registrar is the real domain code, called with each ECS Task State Change event; the DNS view answers from Cloud Map's instances with the service's TTL.

Conditions: drain-rule inputs DNS TTL ${timings.dnsTtlSeconds} s, gRPC re-resolution floor ${timings.resolverMinIntervalSeconds} s (fixed inside gRPC), \`--dispatch-cluster-max-conn-age=${timings.maxConnAgeSeconds}s\`, margin ${timings.marginSeconds} s: bound and drain hold ${bound / 1000} s. Load: ${CLIENTS} clients × at most ${RATE} CheckPermission/s, full consistency, a document → folder (4 levels) → nested groups schema; dispatch caches off so that every check dispatches (about ${Math.round(median(runs.map((r) => r.dispatchPerNode.reduce((a, b) => a + b, 0) / 10)))} DispatchCheck/s over 3 nodes).

## Discovery (benchmark 2)

| from the registering ECS event (RUNNING, HEALTHY) to | seconds |
|---|---:|
| instance in Cloud Map (registrar handler time) | ${fmtS(runs.map((r) => r.discovery.registrarMs))} |
| every peer re-resolved with the new task (from registration) | ${fmtS(runs.map((r) => r.discovery.msToAllPeersResolved))} |
| the new task serves its first dispatch from a peer (from registration) | ${fmtS(runs.map((r) => r.discovery.msToFirstDispatch))} |
| the drain rule's bound | ${(bound / 1000).toFixed(1)} |

Each run starts the new task at a random point of the peers' 30 s re-resolution cycle; it is kept out of the clients' rotation until then, so every dispatch it serves comes from a peer. The wait is gRPC's: a peer re-resolves only when one of its connections is recycled (GOAWAY after max-conn-age) and at most once per 30 s, so it is spread over 0–${timings.resolverMinIntervalSeconds + timings.maxConnAgeSeconds * 1.1} s.

## Scale-in under load (benchmark 3)

| stop | nodes | failed checks | stalled seconds | longest gap (ms) | p50 (ms) | p99 (ms) | max (ms) | fewest checks in a second | recovery (ms) |
|---|---|---:|---:|---:|---:|---:|---:|---:|---:|
${rows((r) => r.graceful, 'this design: deregister, drain hold, SIGTERM')}
${rows((r) => r.native, 'ECS-native: deregister with SIGTERM')}
${rows((r) => r.kill, 'abrupt kill (SIGKILL, event at once)')}

ECS-native against this design (medians): longest time without a completed check ${ratio((s) => s.longestGapMs)}, p99 ${ratio((s) => s.p99Ms)}, max ${ratio((s) => s.maxMs)}.

A stalled second is a whole wall-clock second in which no check completed; the longest gap is the longest stretch without a completed check; before each stop the cluster completed about ${Math.round(median(runs.map((r) => r.graceful.baselinePerSecond)))} checks per second. Each window runs from the stop decision until every remaining peer re-resolved without the stopped tasks, plus 5 s. Recovery: from the signal to the end of the last second below half the earlier rate. With ECS-native timing the peers keep the stopped tasks in their hash rings until their next re-resolution, and the dispatches hashed to them wait (SpiceDB has no failover), so the whole cluster stalls without errors; the occasional failure is a dispatch in flight when SIGTERM arrived (UNAVAILABLE after the server's GOAWAY) or a check in flight on the killed task. This design deregisters first and sends SIGTERM after the drain hold, by which time every peer has dropped the task.
`;
}

const failures: string[] = [];

async function main(): Promise<void> {
  const runs: Run[] = [];
  if (process.env.BENCH_FROM) {
    // Re-render from the raw runs of an earlier invocation.
    runs.push(...(JSON.parse(readFileSync(process.env.BENCH_FROM, 'utf8')) as { runs: Run[] }).runs);
  } else {
    for (let i = 1; i <= RUNS; i++) {
      try {
        runs.push(await oneRun(i));
        say(`run ${i} done in ${runs[runs.length - 1]?.seconds ?? 0} s`);
      } catch (err) {
        // A measurement tool: report the failed run and go on with the others.
        failures.push(`run ${i}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
        say(`run ${i} FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      }
    }
  }
  if (runs.length === 0) throw new Error(`every run failed:\n${failures.join('\n')}`);
  const md = report(runs);
  mkdirSync(path.join(ROOT, 'docs', 'benchmarks'), { recursive: true });
  writeFileSync(path.join(ROOT, 'docs', 'benchmarks', 'cluster.md'), md);
  mkdirSync(path.join(CACHE, 'results'), { recursive: true });
  writeFileSync(path.join(CACHE, 'results', 'bench-cluster.json'), `${JSON.stringify({ machine: machine(), timings: clusterTimings(), runs }, null, 2)}\n`);
  console.log(`\n${md}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
