/**
 * The measured phases of the dispatch cluster, shared by the cluster test
 * (which asserts on them) and the benchmark (which repeats them): how long a
 * new task takes to receive dispatch, and what a scale-in or a kill does to
 * checks under load. Every phase waits for facts (each peer's DNS queries,
 * each node's DispatchCheck counter), never for a fixed time alone.
 */
import { cpus, totalmem } from 'node:os';
import { versions } from './components';
import type { DispatchCluster } from './cluster';
import type { CheckLoad, LoadReport } from './load';
import type { LocalTask, StopMode, StopTimeline } from './local-ecs';
import { dispatchChecksServed } from './metrics';
import { sleep, waitFor } from './net';

export interface ResolutionWait {
  /** The nodes whose resolvers must have caught up (by their DNS views). */
  nodes: readonly LocalTask[];
  /** Only queries after this epoch ms count. */
  since: number;
  /** Addresses the answer must hold. */
  include?: readonly string[];
  /** Addresses the answer must not hold. */
  exclude?: readonly string[];
  timeoutMs: number;
}

/**
 * Waits until every node has resolved the service since `since` and got an
 * answer with `include` and without `exclude`: from then on its ring is
 * the new one. Returns when each node did (epoch ms, by host).
 */
export async function waitForResolution(cluster: DispatchCluster, w: ResolutionWait): Promise<Record<string, number>> {
  const name = cluster.aws.dnsName;
  const include = w.include ?? [];
  const exclude = w.exclude ?? [];
  return waitFor(
    async () => {
      const when: Record<string, number> = {};
      for (const node of w.nodes) {
        const hit = cluster.dns
          .queries({ view: node.host, since: w.since, type: 'A' })
          .find((q) => q.name.replace(/\.$/, '') === name && include.every((a) => q.addresses.includes(a)) && !exclude.some((a) => q.addresses.includes(a)));
        if (!hit) return undefined;
        when[node.host] = hit.at;
      }
      return when;
    },
    { what: `every node to re-resolve ${name} (with ${include.join(',') || '-'}, without ${exclude.join(',') || '-'})`, timeoutMs: w.timeoutMs, intervalMs: 200 },
  );
}

export interface DiscoveryMeasurement {
  taskId: string;
  host: string;
  /** Registrar handler time for the event that registered the task. */
  registrarMs: number;
  /** Epoch ms at which the registration was in Cloud Map (the handler returned). */
  registeredAt: number;
  /** Epoch ms of the first DispatchCheck the new task served (polled every 200 ms). */
  firstDispatchAt: number;
  /** From registration to the first dispatch from a peer. */
  msToFirstDispatch: number;
  /** When every peer had re-resolved and holds the new task in its ring, from registration. */
  msToAllPeersResolved: number;
  /** The drain rule's bound, in ms. */
  boundMs: number;
}

/**
 * Starts one task outside the load balancer's rotation (so any dispatch it
 * serves comes from its peers), measures when it is registered, when the
 * first peer dispatches to it and when all peers resolved it, then puts it
 * into the rotation.
 */
export async function measureDiscovery(cluster: DispatchCluster, opts: { timeoutMs?: number } = {}): Promise<DiscoveryMeasurement> {
  const peers = cluster.ecs.tasks('running');
  const seen = cluster.registrar.length;
  const task = (await cluster.scaleOut(1, { acceptClients: false }))[0] as LocalTask;
  const registered = cluster.registrar.slice(seen).find((r) => r.taskId === task.taskId && r.outcome.action === 'registered');
  if (!registered) throw new Error(`the registrar did not register task ${task.taskId}: ${JSON.stringify(cluster.registrar.slice(seen).map((r) => r.outcome))}`);
  const registeredAt = registered.at + registered.ms;
  const timeoutMs = opts.timeoutMs ?? cluster.boundSeconds * 1000 * 3;
  const [firstDispatchAt, resolved] = await Promise.all([
    waitFor(async () => ((await dispatchChecksServed(task.metricsUrl)) > 0 ? Date.now() : undefined), {
      what: `peers to dispatch to the new task ${task.host}`,
      timeoutMs,
      intervalMs: 200,
    }),
    waitForResolution(cluster, { nodes: peers, since: registeredAt, include: [task.host], timeoutMs }),
  ]);
  cluster.ecs.acceptClients(task);
  return {
    taskId: task.taskId,
    host: task.host,
    registrarMs: registered.ms,
    registeredAt,
    firstDispatchAt,
    msToFirstDispatch: firstDispatchAt - registeredAt,
    msToAllPeersResolved: Math.max(...Object.values(resolved)) - registeredAt,
    boundMs: cluster.boundSeconds * 1000,
  };
}

export interface ScaleInMeasurement {
  mode: StopMode | 'kill';
  nodesBefore: number;
  nodesAfter: number;
  timelines: StopTimeline[];
  /** The load over the whole phase: from the stop decision until every peer re-resolved, plus a tail. */
  report: LoadReport;
  /** From the signal (SIGTERM/SIGKILL) to the end of the last second below half the earlier rate; 0 when none was. */
  recoveryMs: number;
  /** From deregistration until every remaining peer had dropped the stopped tasks. */
  msToAllPeersResolved: number;
  /** Checks per second before the phase (median of the 10 s before). */
  baselinePerSecond: number;
}

/**
 * Scales in by `count` tasks under `load` (graceful: this design; ecs-native:
 * SIGTERM with deregistration), or kills one (`mode: 'kill'`), and
 * summarises the load from the stop until every remaining peer dropped the
 * stopped tasks from its ring, plus `tailMs`.
 */
export async function measureScaleIn(
  cluster: DispatchCluster,
  load: CheckLoad,
  opts: { mode: StopMode | 'kill'; count: number; tailMs?: number; timeoutMs?: number },
): Promise<ScaleInMeasurement> {
  const running = cluster.ecs.tasks('running');
  if (running.length <= opts.count) throw new Error(`cannot stop ${opts.count} of ${running.length} tasks`);
  // The oldest go first, as ECS's default scale-in picks across AZs; here any choice is fair.
  const victims = running.slice(0, opts.count);
  const remaining = running.slice(opts.count);
  const from = Date.now();
  const baselinePerSecond = median(load.report({ fromMs: from - 10_000, toMs: from }).perSecond);
  const timeoutMs = opts.timeoutMs ?? cluster.boundSeconds * 1000 * 3;
  const stopping = victims.map((t) => (opts.mode === 'kill' ? cluster.ecs.killTask(t) : cluster.ecs.stopTask(t, opts.mode)));
  const resolution = waitForResolution(cluster, { nodes: remaining, since: from, exclude: victims.map((t) => t.host), timeoutMs });
  const [timelines, resolved] = await Promise.all([Promise.all(stopping), resolution]);
  await sleep(opts.tailMs ?? 5000);
  const to = Date.now();
  const report = load.report({ fromMs: from, toMs: to });
  const deregisteredAt = Math.min(...timelines.map((t) => t.deregisteredAt));
  const signalAt = Math.min(...timelines.map((t) => t.signalAt));
  return {
    mode: opts.mode,
    nodesBefore: running.length,
    nodesAfter: remaining.length,
    timelines,
    report,
    recoveryMs: recoveryAfter(report, signalAt, baselinePerSecond),
    msToAllPeersResolved: Math.max(...Object.values(resolved)) - deregisteredAt,
    baselinePerSecond,
  };
}

/**
 * Time from `signalAt` to the end of the last second (in the report) in which
 * fewer checks completed than half the baseline; 0 when there was none.
 */
export function recoveryAfter(report: LoadReport, signalAt: number, baseline: number): number {
  const firstSecond = Math.ceil(report.fromMs / 1000);
  const threshold = Math.max(1, baseline / 2);
  let lastBad = -1;
  for (let i = Math.max(0, Math.floor(signalAt / 1000) - firstSecond); i < report.perSecond.length; i++) {
    if ((report.perSecond[i] ?? 0) < threshold) lastBad = i;
  }
  return lastBad < 0 ? 0 : Math.max(0, (firstSecond + lastBad + 1) * 1000 - signalAt);
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/** The figures compared side by side. */
export interface ScaleInSummary {
  mode: string;
  nodes: string;
  requests: number;
  failed: number;
  stalledSeconds: number;
  longestGapMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  recoveryMs: number;
  /** Fewest checks completed in one second of the window, and the median second before the stop. */
  minPerSecond: number;
  baselinePerSecond: number;
  msToAllPeersResolved: number;
  errors: Record<string, number>;
}

export function summarizeScaleIn(m: ScaleInMeasurement): ScaleInSummary {
  const r = m.report;
  return {
    mode: m.mode,
    nodes: `${m.nodesBefore} → ${m.nodesAfter}`,
    requests: r.requests,
    failed: r.failed,
    stalledSeconds: r.stalledSeconds,
    longestGapMs: r.longestGapMs,
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    maxMs: r.maxMs,
    recoveryMs: m.recoveryMs,
    minPerSecond: Math.min(...r.perSecond),
    baselinePerSecond: m.baselinePerSecond,
    msToAllPeersResolved: m.msToAllPeersResolved,
    errors: r.errors,
  };
}

/** The machine a measurement ran on. */
export function machine(): Record<string, string | number> {
  const cpu = cpus();
  return {
    cpus: cpu.length,
    cpuModel: cpu[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    spicedb: versions.SPICEDB_VERSION ?? 'unknown',
    platform: `${process.platform} ${process.arch}`,
  };
}

/** A Markdown table of scale-in summaries. */
export function scaleInTable(rows: readonly ScaleInSummary[]): string {
  const head = '| stop | nodes | checks | failed | stalled seconds | longest gap (ms) | p50 (ms) | p99 (ms) | max (ms) | fewest checks in a second (before: median) |';
  const sep = '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|';
  const lines = rows.map(
    (r) => `| ${label(r.mode)} | ${r.nodes} | ${r.requests} | ${r.failed} | ${r.stalledSeconds} | ${r.longestGapMs} | ${r.p50Ms} | ${r.p99Ms} | ${r.maxMs} | ${r.minPerSecond} (${r.baselinePerSecond}) |`,
  );
  return [head, sep, ...lines].join('\n');
}

function label(mode: string): string {
  return mode === 'graceful' ? 'this design (deregister, drain hold, SIGTERM)' : mode === 'ecs-native' ? 'ECS-native (deregister with SIGTERM)' : 'abrupt kill (SIGKILL)';
}
