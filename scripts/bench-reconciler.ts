/**
 * Benchmark 5 of the suite (issue 8): reconciler scale. AWS calls and time
 * of one `reconcile()` (functions/shared/discovery/reconciler.ts, the code
 * the ReconcilerFunction runs, with its production tuning) for 10, 100 and
 * 1000 tasks against the emulator (moto):
 *
 * 1. empty Cloud Map service: every task is added;
 * 2. again, nothing changed: reads only, no mutating call;
 * 3. one task stopped and one started: one removal, one addition.
 *
 * The ECS and Cloud Map resources come from `provisionDiscovery`; the tasks
 * from RunTask (10 per call), held RUNNING through moto's state manager, of
 * a task definition without container health checks (moto reports no task
 * health, and UNKNOWN registers only when nothing checks it). Each run
 * starts from a reset emulator with fresh SDK clients (a cold container).
 * The calls come from the reconciler's own count (`summary.calls`); a
 * middleware on the clients adds the time moto took per operation.
 *
 * Writes docs/benchmarks/reconciler.md and .cache/results/bench-reconciler.json.
 * Usage: npx tsx scripts/bench-reconciler.ts (BENCH_RECONCILER_SIZES=10,100,1000,
 * BENCH_RECONCILER_RUNS=3, BENCH_RECONCILER_BUDGET_SECONDS=300: a size whose
 * run takes longer is not repeated and larger sizes are not tried;
 * BENCH_FROM=.cache/results/bench-reconciler.json re-renders an earlier run).
 */
import { readFileSync } from 'node:fs';
import { EC2Client } from '@aws-sdk/client-ec2';
import { ECSClient, RegisterTaskDefinitionCommand, RunTaskCommand, StopTaskCommand } from '@aws-sdk/client-ecs';
import { ListInstancesCommand, ServiceDiscoveryClient } from '@aws-sdk/client-servicediscovery';
import { DESCRIBE_TASKS_BATCH } from '../functions/shared/discovery/ecs-tasks';
import { reconcile, type ReconcileSummary } from '../functions/shared/discovery/reconciler';
import type { DiscoveryTarget } from '../functions/shared/discovery/target';
import { logger } from '../functions/shared/logger';
import { fmtRange, machine, machineLine, markdownTable, median, stopwatchLog, today, writeFragment, writeRaw, type Machine } from './bench-lib';
import { provisionDiscovery, type DiscoveryAws } from './rig/discovery-aws';
import { AWS_REGION, setEcsTaskTransition, startMoto, type Moto } from './rig/moto';
import { loopbackHost } from './rig/net';

const SIZES = (process.env.BENCH_RECONCILER_SIZES ?? '10,100,1000').split(',').map(Number);
const RUNS = Number(process.env.BENCH_RECONCILER_RUNS ?? 3);
const BUDGET_MS = Number(process.env.BENCH_RECONCILER_BUDGET_SECONDS ?? 300) * 1000;
/** Page size of ListInstances (the reconciler asks for 100) and of ListTasks in real ECS (at most 100). */
const PAGE = 100;
/** RunTask starts at most 10 tasks per call. */
const RUN_TASK_COUNT = 10;
const MUTATING = ['RegisterInstance', 'DeregisterInstance'];
/** Operations whose latency in moto the time table shows. */
const TIMED_OPS = ['ListInstances', 'ListTasks', 'DescribeTasks', 'RegisterInstance', 'GetOperation'];
const say = stopwatchLog();

type PassName = 'all added' | 'nothing changed' | 'one task replaced';
const PASSES: PassName[] = ['all added', 'nothing changed', 'one task replaced'];

interface Pass {
  name: PassName;
  ms: number;
  added: number;
  removed: number;
  kept: number;
  calls: Record<string, number>;
  /** Time moto took, summed per operation (the calls overlap: up to 5 mutations run at once). */
  motoMs: Record<string, number>;
}

interface Run {
  tasks: number;
  /** RunTask of all tasks, not part of the reconcile. */
  setupMs: number;
  passes: Pass[];
  seconds: number;
}

/** Clients pointed at moto, with a middleware that sums the time of each operation. */
function clients(moto: Moto): { ec2: EC2Client; ecs: ECSClient; serviceDiscovery: ServiceDiscoveryClient; motoMs: Record<string, number>; destroy(): void } {
  const config = { endpoint: moto.endpoint, region: AWS_REGION, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
  const ec2 = new EC2Client(config);
  const ecs = new ECSClient(config);
  const serviceDiscovery = new ServiceDiscoveryClient({ ...config, disableHostPrefix: true });
  const motoMs: Record<string, number> = {};
  const timed = (commandName: string | undefined, started: number) => {
    const op = String(commandName ?? '?').replace(/Command$/, '');
    motoMs[op] = (motoMs[op] ?? 0) + performance.now() - started;
  };
  const step = { step: 'finalizeRequest', name: 'benchTiming' } as const;
  ecs.middlewareStack.add(
    (next, context) => async (args) => {
      const started = performance.now();
      try {
        return await next(args);
      } finally {
        timed(context.commandName, started);
      }
    },
    step,
  );
  serviceDiscovery.middlewareStack.add(
    (next, context) => async (args) => {
      const started = performance.now();
      try {
        return await next(args);
      } finally {
        timed(context.commandName, started);
      }
    },
    step,
  );
  return {
    ec2,
    ecs,
    serviceDiscovery,
    motoMs,
    destroy: () => [ec2, ecs, serviceDiscovery].forEach((c) => c.destroy()),
  };
}

async function startTasks(ecs: ECSClient, aws: DiscoveryAws, taskDefinition: string, count: number): Promise<string[]> {
  const arns: string[] = [];
  while (arns.length < count) {
    const res = await ecs.send(
      new RunTaskCommand({
        cluster: aws.clusterArn,
        taskDefinition,
        launchType: 'FARGATE',
        group: `service:${aws.serviceName}`,
        count: Math.min(RUN_TASK_COUNT, count - arns.length),
        networkConfiguration: { awsvpcConfiguration: { subnets: [aws.subnetId], securityGroups: [aws.securityGroupId] } },
      }),
    );
    const got = (res.tasks ?? []).map((t) => t.taskArn).filter((a): a is string => a !== undefined);
    if (got.length === 0) throw new Error(`moto RunTask started no task: ${JSON.stringify(res.failures)}`);
    arns.push(...got);
  }
  return arns;
}

async function instanceCount(sd: ServiceDiscoveryClient, serviceId: string): Promise<number> {
  let n = 0;
  let token: string | undefined;
  do {
    const res = await sd.send(new ListInstancesCommand({ ServiceId: serviceId, MaxResults: PAGE, NextToken: token }));
    n += res.Instances?.length ?? 0;
    token = res.NextToken;
  } while (token);
  return n;
}

/** One reconcile with fresh clients (as a cold container), checked against what the pass expects. */
async function pass(moto: Moto, target: DiscoveryTarget, name: PassName, expect: { added: number; removed: number; instancesAfter: number }): Promise<Pass> {
  const c = clients(moto);
  try {
    const started = performance.now();
    const summary: ReconcileSummary = await reconcile({ ecs: c.ecs, serviceDiscovery: c.serviceDiscovery, target });
    const ms = performance.now() - started;
    const motoMs = { ...c.motoMs };
    const instances = await instanceCount(c.serviceDiscovery, target.cloudMapServiceId);
    if (summary.added.length !== expect.added || summary.removed.length !== expect.removed || instances !== expect.instancesAfter) {
      throw new Error(
        `${name}: expected ${expect.added} added, ${expect.removed} removed, ${expect.instancesAfter} instances; got ${summary.added.length}, ${summary.removed.length}, ${instances}`,
      );
    }
    return { name, ms, added: summary.added.length, removed: summary.removed.length, kept: summary.kept.length, calls: { ...summary.calls }, motoMs };
  } finally {
    c.destroy();
  }
}

async function oneRun(moto: Moto, tasks: number, index: number): Promise<Run> {
  const started = Date.now();
  await moto.reset();
  // Each DescribeTasks would otherwise move moto's tasks one step towards STOPPED; `times` is the hold.
  await setEcsTaskTransition(moto.endpoint, { progression: 'manual', times: 1_000_000_000 });
  const c = clients(moto);
  try {
    const aws = await provisionDiscovery(c, { name: `bench-reconciler-${tasks}-${index}`, dnsTtlSeconds: 5 });
    const td = await c.ecs.send(
      new RegisterTaskDefinitionCommand({
        family: `bench-reconciler-plain-${tasks}`,
        networkMode: 'awsvpc',
        requiresCompatibilities: ['FARGATE'],
        cpu: '256',
        memory: '512',
        containerDefinitions: [{ name: aws.containerName, image: aws.image, essential: true, cpu: 256, memory: 512, command: ['serve'] }],
      }),
    );
    const taskDefinition = td.taskDefinition?.taskDefinitionArn ?? '';
    const setupStarted = performance.now();
    const arns = await startTasks(c.ecs, aws, taskDefinition, tasks);
    const setupMs = performance.now() - setupStarted;
    const target: DiscoveryTarget = { clusterArn: aws.clusterArn, serviceName: aws.serviceName, cloudMapServiceId: aws.cloudMapServiceId, dispatchPort: aws.dispatchPort };

    const passes: Pass[] = [];
    passes.push(await pass(moto, target, 'all added', { added: tasks, removed: 0, instancesAfter: tasks }));
    passes.push(await pass(moto, target, 'nothing changed', { added: 0, removed: 0, instancesAfter: tasks }));
    await c.ecs.send(new StopTaskCommand({ cluster: aws.clusterArn, task: arns[0], reason: 'Scaling activity (benchmark)' }));
    await startTasks(c.ecs, aws, taskDefinition, 1);
    passes.push(await pass(moto, target, 'one task replaced', { added: 1, removed: 1, instancesAfter: tasks }));
    return { tasks, setupMs, passes, seconds: (Date.now() - started) / 1000 };
  } finally {
    c.destroy();
  }
}

const pages = (n: number): number => Math.max(1, Math.ceil(n / PAGE));
const batches = (n: number): number => Math.ceil(n / DESCRIBE_TASKS_BATCH);

/**
 * The calls the reconciler's algorithm makes, as a function of the task
 * count: pages and batches for the reads, one register (+ its GetOperation)
 * per addition, deregister + GetOperation + GetInstance per removal.
 * `ecsListPages` is 1 against moto (its ListTasks returns every ARN in one
 * page) and ceil(n/100) against ECS.
 */
function expectedCalls(n: number, p: PassName, ecsListPages: number): Record<string, number> {
  const reads = { ListInstances: pages(n), ListTasks: ecsListPages, DescribeTasks: batches(n), DescribeTaskDefinition: 1 };
  if (p === 'all added') return { ...reads, ListInstances: 1, RegisterInstance: n, GetOperation: n, DescribeTasks: batches(n) + batches(n) };
  if (p === 'nothing changed') return reads;
  return { ...reads, RegisterInstance: 1, DeregisterInstance: 1, GetOperation: 2, GetInstance: 1, DescribeTasks: batches(n) + 1 };
}

const total = (calls: Record<string, number>): number => Object.values(calls).reduce((a, b) => a + b, 0);
const sameCalls = (a: Record<string, number>, b: Record<string, number>): boolean => {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every((k) => (a[k] ?? 0) === (b[k] ?? 0));
};
const fmtCalls = (calls: Record<string, number>): string =>
  Object.entries(calls)
    .filter(([, v]) => v > 0)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');

/** Everything a fragment is made from; saved as .cache/results/bench-reconciler.json. */
interface Raw {
  machine: Machine;
  date: string;
  runsPerSize: number;
  runs: Run[];
  notes: string[];
}

function report(raw: Raw): string {
  const { runs, notes } = raw;
  const sizes = [...new Set(runs.map((r) => r.tasks))].sort((a, b) => a - b);
  const rows: (string | number)[][] = [];
  const timeRows: (string | number)[][] = [];
  for (const n of sizes) {
    const rs = runs.filter((r) => r.tasks === n);
    for (const p of PASSES) {
      const ps = rs.map((r) => r.passes.find((x) => x.name === p)).filter((x): x is Pass => x !== undefined);
      const first = ps[0];
      if (!first) continue;
      // The counts are the same in every run (checked); times vary.
      const stable = ps.every((x) => sameCalls(x.calls, first.calls));
      const calls = total(first.calls);
      const mutating = MUTATING.reduce((a, k) => a + (first.calls[k] ?? 0), 0);
      const model = expectedCalls(n, p, 1);
      const ecsModel = expectedCalls(n, p, pages(n));
      rows.push([
        p === PASSES[0] ? n : '',
        p === PASSES[0] ? pages(n) : '',
        p,
        `${fmtCalls(first.calls)}${stable ? '' : ' (varied between runs)'}`,
        calls,
        (calls / n).toFixed(2),
        mutating,
        sameCalls(first.calls, model) ? 'yes' : `no (model: ${fmtCalls(model)})`,
        total(ecsModel),
      ]);
      const perCall = (op: string) => (first.calls[op] ? fmtRange(ps.map((x) => (x.motoMs[op] ?? 0) / (x.calls[op] ?? 1)), 1) : '–');
      timeRows.push([p === PASSES[0] ? n : '', p, fmtRange(ps.map((x) => x.ms)), fmtRange(ps.map((x) => x.ms / n), 2), ...TIMED_OPS.map(perCall)]);
    }
  }
  const setupRows = sizes.map((n) => {
    const rs = runs.filter((r) => r.tasks === n);
    return [n, rs.length, fmtRange(rs.map((r) => r.setupMs)), fmtRange(rs.map((r) => r.seconds), 1)];
  });
  const largest = sizes[sizes.length - 1] ?? 0;
  const smallest = sizes[0] ?? 0;
  const readsAt = (n: number) => total(runs.find((r) => r.tasks === n)?.passes.find((x) => x.name === 'nothing changed')?.calls ?? {});
  const perCallAt = (n: number, p: PassName, op: string) =>
    median(
      runs
        .filter((r) => r.tasks === n)
        .map((r) => r.passes.find((x) => x.name === p))
        .filter((x): x is Pass => x !== undefined && (x.calls[op] ?? 0) > 0)
        .map((x) => (x.motoMs[op] ?? 0) / (x.calls[op] ?? 1)),
    ).toFixed(0);
  const callsAt = (n: number, p: PassName) => total(runs.find((r) => r.tasks === n)?.passes.find((x) => x.name === p)?.calls ?? {});
  const growth = (p: PassName, f: (n: number, p: PassName) => number) => {
    const base = f(smallest, p);
    return base > 0 ? `${(f(largest, p) / base).toFixed(1)}×` : '–';
  };
  const msAt = (n: number, p: PassName) => median(runs.filter((r) => r.tasks === n).map((r) => r.passes.find((x) => x.name === p)?.ms ?? 0));

  return `# Benchmark: reconciler scale (benchmark 5)

Generated by \`npx tsx scripts/bench-reconciler.ts\` on ${raw.date}: ${raw.runsPerSize} run(s) per size, each on a reset emulator; median, with the range over the runs in brackets.

${machineLine(raw.machine)}

Conditions: \`reconcile()\` from \`functions/shared/discovery/reconciler.ts\` (what ReconcilerFunction runs) with its production tuning (5 Cloud Map mutations at once, GetOperation polled from 250 ms) against moto on loopback: ECS and Cloud Map from \`provisionDiscovery\`, tasks started with RunTask (${RUN_TASK_COUNT} per call) and held RUNNING by moto's state manager, of a task definition without container health checks (moto's DescribeTasks carries no task health; UNKNOWN registers only when nothing checks it). Each pass uses fresh SDK clients, as a cold container would (so DescribeTaskDefinition runs once per pass). Calls are the reconciler's own count by operation (\`summary.calls\`); every pass is checked (added, removed, and the instances in Cloud Map after it). moto completes Cloud Map operations at once (one GetOperation each) and does not throttle; real Cloud Map's operations take longer and are rate-limited, so real times differ, while the counts are those of the algorithm (apart from extra GetOperation polls and retries).${notes.length ? `\n\n${notes.map((n) => `**Note:** ${n}`).join('\n\n')}` : ''}

## AWS calls per reconcile

${markdownTable(['tasks', 'pages (⌈n/100⌉)', 'pass', 'calls by operation (moto)', 'total', 'per task', 'mutating', 'as modelled?', 'total against ECS (ListTasks paged)'], rows, ['r', 'r', 'l', 'l', 'r', 'r', 'r', 'l', 'r'])}

The model (\`expectedCalls\` in the script): reads are ⌈n/100⌉ ListInstances pages, ListTasks pages, ⌈n/100⌉ DescribeTasks batches and one DescribeTaskDefinition; each addition is one RegisterInstance and one GetOperation, plus one DescribeTasks re-check per 100 additions; each removal one DeregisterInstance, one GetOperation and one GetInstance. moto's ListTasks ignores \`maxResults\` and returns every ARN in one page, so it counts 1 here; real ECS pages by 100, which the last column adds. Nothing grows with the square of the tasks: a run that changes nothing costs ${readsAt(smallest)} calls at ${smallest} tasks and ${readsAt(largest)} at ${largest} (against ECS about 3 per 100 tasks + 1), and a run that changes k tasks adds about 2–3 calls per change.

## Time per reconcile

${markdownTable(['tasks', 'pass', 'reconcile (ms)', 'per task (ms)', ...TIMED_OPS.map((op) => `${op} (ms per call)`)], timeRows, ['r', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'])}

For ${largest / Math.max(1, smallest)}× the tasks (${smallest} → ${largest}), "all added" took ${growth('all added', (n, p) => msAt(n, p))} the time for ${growth('all added', callsAt)} the calls (${msAt(smallest, 'all added').toFixed(0)} → ${msAt(largest, 'all added').toFixed(0)} ms), and "nothing changed" ${growth('nothing changed', (n, p) => msAt(n, p))} the time for ${growth('nothing changed', callsAt)} the calls (${msAt(smallest, 'nothing changed').toFixed(0)} → ${msAt(largest, 'nothing changed').toFixed(0)} ms). The per-call columns are the time the SDK waited for moto (up to 5 Cloud Map mutations are in flight at once; moto serves them on threads of one Python process, so they mostly wait for each other and a mutation's wait is several service times). Where the reads' time grows faster than their calls, it is the emulator: moto's DescribeTasks compares every task it holds with every ARN asked for, so one DescribeTasks call took ${perCallAt(smallest, 'nothing changed', 'DescribeTasks')} ms at ${smallest} tasks (a batch of ${Math.min(smallest, DESCRIBE_TASKS_BATCH)}) and ${perCallAt(largest, 'nothing changed', 'DescribeTasks')} ms at ${largest} (batches of ${Math.min(largest, DESCRIBE_TASKS_BATCH)}). That is the emulator's implementation, not more calls: the counts above stay linear. Against AWS the times differ: Cloud Map operations are asynchronous and rate-limited (the reconciler polls GetOperation and retries throttling with backoff), so what carries over from this table is the call counts, not the milliseconds.

## Setting up the tasks (not part of the reconcile)

${markdownTable(['tasks', 'runs', 'RunTask of all tasks (ms)', 'whole run incl. provisioning (s)'], setupRows)}
`;
}

async function main(): Promise<void> {
  if (process.env.BENCH_FROM) {
    // Re-render the fragment from the raw results of an earlier run.
    const md = report(JSON.parse(readFileSync(process.env.BENCH_FROM, 'utf8')) as Raw);
    writeFragment('reconciler', md);
    console.log(md);
    return;
  }
  const m = machine();
  logger.setLogLevel('WARN');
  const moto = await startMoto({ host: loopbackHost() });
  const onSignal = (signal: NodeJS.Signals) => {
    say(`${signal}: stopping`);
    void moto.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const runs: Run[] = [];
  const notes: string[] = [];
  let failure: unknown;
  try {
    sizes: for (const n of SIZES) {
      for (let i = 1; i <= RUNS; i++) {
        const run = await oneRun(moto, n, i);
        runs.push(run);
        const line = run.passes.map((p) => `${p.name} ${p.ms.toFixed(0)} ms (${total(p.calls)} calls)`).join('; ');
        say(`${n} tasks, run ${i}: ${line}; whole run ${run.seconds.toFixed(1)} s`);
        if (run.seconds * 1000 > BUDGET_MS) {
          const skipped = SIZES.filter((s) => s > n);
          notes.push(
            `a run with ${n} tasks took ${run.seconds.toFixed(0)} s against moto (budget ${BUDGET_MS / 1000} s per run), so it ran ${i} time(s)${skipped.length ? ` and ${skipped.join(', ')} tasks were not tried` : ''}.`,
          );
          break sizes;
        }
      }
    }
  } catch (err) {
    failure = err;
    console.error(err);
  } finally {
    await moto.stop();
  }
  if (failure !== undefined) notes.push(`the benchmark failed before it finished: ${failure instanceof Error ? failure.message : String(failure)}`);
  const raw: Raw = { machine: m, date: today(), runsPerSize: RUNS, runs, notes };
  const md = report(raw);
  writeFragment('reconciler', md);
  writeRaw('reconciler', raw);
  console.log(`\n${md}`);
  process.exit(failure === undefined ? 0 : 1);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
