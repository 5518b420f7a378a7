/**
 * Benchmark 4 of the suite (issue 8): Lambda start-up. For each function of
 * template.yaml, the bundle's size and the time a FRESH Node process takes
 * to load the handler and answer one event, against the same handler loaded
 * without a bundle. Each sample is its own `node` process (Node 22, the
 * runtime's major) running a small Lambda-like runner that times, with
 * process.hrtime, require() until the handler is resolved, then the first
 * invocation; the parent times the whole process, spawn to exit.
 *
 * Ways of loading the same handler, interleaved sample by sample:
 * - bundle: dist/<LogicalId>/handler.js as `sam build` makes it, with the
 *   template's NODE_OPTIONS (--enable-source-maps): what Lambda runs.
 * - bundle without source maps: the same file, NODE_OPTIONS unset.
 * - unbundled JS: each functions/**.ts transpiled one-to-one by esbuild
 *   (what `tsc` emits), requiring @aws-sdk/*, zod, grpc-js... from
 *   node_modules, same NODE_OPTIONS: what one deploys without a bundler.
 * - tsx: `node --import tsx` on functions/<name>/handler.ts, transpiling at
 *   load (its cache warm after the warm-up round): what a developer runs.
 *
 * Events need no outside service, or one this script starts on loopback:
 * moto (ECS, Cloud Map, Secrets Manager), SpiceDB (memory datastore), and a
 * response server standing in for CloudFormation's presigned ResponseURL.
 * Every sample is checked (the task was registered, SUCCESS was PUT, ...);
 * a case whose samples did not do what it names is reported as failed.
 *
 * Writes docs/benchmarks/startup.md and .cache/results/bench-startup.json;
 * exits non-zero if any case failed. Measures only; never fails on a number.
 * Usage: npx tsx scripts/bench-startup.ts (BENCH_STARTUP_RUNS, default 15;
 * BENCH_FROM=.cache/results/bench-startup.json re-renders an earlier run).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { EC2Client } from '@aws-sdk/client-ec2';
import { ECSClient, RegisterTaskDefinitionCommand, RunTaskCommand } from '@aws-sdk/client-ecs';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ServiceDiscoveryClient } from '@aws-sdk/client-servicediscovery';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { build } from 'esbuild';
import type { CustomResourceResponse } from '../functions/shared/custom-resource';
import { cloudFormationEvent, startResponseServer, type ResponseServer } from '../test/helpers/response-server';
import { fmtRange, fmtSpread, machine, machineLine, markdownTable, median, stopwatchLog, today, writeFragment, writeRaw, type Machine } from './bench-lib';
import { functionBuilds, type FunctionBuild } from './build';
import { resolveEnvironment } from './local/lambda-host';
import { CACHE, ROOT } from './rig/components';
import { provisionDiscovery, type DiscoveryAws } from './rig/discovery-aws';
import { EcsTaskEventStream } from './rig/ecs-events';
import { AWS_REGION, setEcsTaskTransition, startMoto, type Moto } from './rig/moto';
import { loopbackHost } from './rig/net';
import { startSpiceDB, type SpiceDB } from './rig/spicedb';
import { loadTemplate, type Json } from './rig/template';

const RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? 15);
const WORK = path.join(CACHE, 'bench', 'startup');
// Inside the repository, so that the unbundled files resolve node_modules as deployed sources would.
const UNBUNDLED = path.join(WORK, 'unbundled');
const RUNNER = path.join(WORK, 'runner.cjs');
const say = stopwatchLog();

// ---------------------------------------------------------------------------
// The child: a Lambda-like runner. Plain CommonJS, so that nothing but the
// handler's own loading is timed. It reports on fd 3 (stdout carries the
// function's logs, as in Lambda) and exits at once, as a frozen sandbox would
// not keep sockets open.
// ---------------------------------------------------------------------------
const RUNNER_SOURCE = `'use strict';
const bootMs = performance.now();
const fs = require('node:fs');
const report = (o) => { fs.writeSync(3, JSON.stringify(o)); };
const file = process.env.BENCH_HANDLER_FILE;
const exportName = process.env.BENCH_HANDLER_EXPORT || 'handler';
const event = JSON.parse(process.env.BENCH_EVENT || '{}');
const timeoutMs = Number(process.env.BENCH_TIMEOUT_MS || 60000);
const c0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
let handler;
try {
  handler = require(file)[exportName];
  if (typeof handler !== 'function') throw new Error(file + ' exports no function ' + exportName);
} catch (err) {
  report({ ok: false, stage: 'load', error: String(err && err.stack || err) });
  process.exit(1);
}
const t1 = process.hrtime.bigint();
const c1 = process.cpuUsage(c0);
const deadline = Date.now() + timeoutMs;
const name = process.env.AWS_LAMBDA_FUNCTION_NAME || 'bench';
const context = {
  functionName: name, functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:' + process.env.AWS_REGION + ':123456789012:function:' + name,
  memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE || '256',
  awsRequestId: require('node:crypto').randomUUID(), logGroupName: '/aws/lambda/' + name, logStreamName: 'bench',
  callbackWaitsForEmptyEventLoop: true, getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  done() {}, fail() {}, succeed() {},
};
Promise.resolve().then(() => handler(event, context)).then((result) => {
  const t2 = process.hrtime.bigint();
  const totalMs = performance.now();
  const cpu = process.cpuUsage();
  // Outside the timed window: what the load read from disk.
  const modules = Object.keys(require.cache).filter((m) => m !== __filename);
  let moduleBytes = 0;
  for (const m of modules) { try { moduleBytes += fs.statSync(m).size; } catch {} }
  report({ ok: true, bootMs, loadMs: Number(t1 - t0) / 1e6, invokeMs: Number(t2 - t1) / 1e6, totalMs, loadCpuMs: (c1.user + c1.system) / 1000, cpuMs: (cpu.user + cpu.system) / 1000, modules: modules.length, moduleBytes, result: result === undefined ? null : result });
  process.exit(0);
}, (err) => {
  report({ ok: false, stage: 'invoke', error: String(err && err.stack || err) });
  process.exit(1);
});
`;

/** What the runner reports for one sample. */
interface ChildReport {
  ok: boolean;
  stage?: 'load' | 'invoke';
  error?: string;
  /** From process start to the runner's first line (Node's bootstrap, plus tsx's registration for tsx). */
  bootMs: number;
  /** require() of the handler file until the export is resolved. */
  loadMs: number;
  /** The first invocation, until its promise settled. */
  invokeMs: number;
  /** From process start to the end of the invocation, inside the child. */
  totalMs: number;
  /** CPU time (user + system, all threads) of the load, and of the process until the end of the invocation: less sensitive than wall time to other work on the machine. */
  loadCpuMs: number;
  cpuMs: number;
  /** CommonJS modules in require.cache after the invocation, and their bytes on disk. */
  modules: number;
  moduleBytes: number;
  result: unknown;
}

interface Sample extends ChildReport {
  /** spawn() until the process exited, measured by the parent. */
  wallMs: number;
}

// ---------------------------------------------------------------------------
// Ways of loading a handler.
// ---------------------------------------------------------------------------
interface Variant {
  key: 'bundle' | 'bundle-nomaps' | 'unbundled' | 'tsx';
  label: string;
  file(fn: FunctionBuild): string;
  nodeArgs: string[];
  /** Whether the template's NODE_OPTIONS (--enable-source-maps) applies. */
  templateNodeOptions: boolean;
}

const unbundledFile = (fn: FunctionBuild): string => path.join(UNBUNDLED, path.relative(ROOT, fn.entryPoint).replace(/\.ts$/, '.js'));

const VARIANTS: Variant[] = [
  { key: 'bundle', label: 'bundle (as deployed: --enable-source-maps)', file: (fn) => fn.bundle, nodeArgs: [], templateNodeOptions: true },
  { key: 'bundle-nomaps', label: 'bundle without --enable-source-maps', file: (fn) => fn.bundle, nodeArgs: [], templateNodeOptions: false },
  { key: 'unbundled', label: 'unbundled JS + node_modules', file: unbundledFile, nodeArgs: [], templateNodeOptions: true },
  { key: 'tsx', label: 'tsx on the TypeScript sources', file: (fn) => fn.entryPoint, nodeArgs: ['--import', 'tsx'], templateNodeOptions: true },
];

// ---------------------------------------------------------------------------
// Events, and the services they need.
// ---------------------------------------------------------------------------
interface Rig {
  host: string;
  moto: Moto;
  spicedb: SpiceDB;
  responses: ResponseServer;
  ecs: ECSClient;
  /** The registrar's service (tasks are started in it per sample). */
  registrar: DiscoveryAws;
  /** A service with no task and no instance, for the reconciler. */
  emptyService: DiscoveryAws;
  /** A task definition without container health checks (moto reports no task health; UNKNOWN then registers). */
  plainTaskDefinitionArn: string;
  presharedKeySecretArn: string;
  stop(): Promise<void>;
}

interface Case {
  logicalId: string;
  label: string;
  /** The function's environment values for the template's !Ref/!GetAtt/!Sub. */
  values(rig: Rig): Record<string, string>;
  /** The event of one sample (may create what it needs, e.g. a task). */
  event(rig: Rig): Promise<unknown>;
  /** Throws unless the sample did what the case names. */
  check(rig: Rig, event: unknown, result: unknown): Promise<void>;
}

const discoveryValues = (aws: DiscoveryAws): Record<string, string> => ({
  'Cluster.Arn': aws.clusterArn,
  // The template names the service `${AWS::StackName}-spicedb`; provisionDiscovery names it `${name}-spicedb`.
  'AWS::StackName': aws.serviceName.replace(/-spicedb$/, ''),
  'DiscoveryService.Id': aws.cloudMapServiceId,
});

const record = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {});

async function expectResponse(rig: Rig, event: unknown, status: 'SUCCESS'): Promise<CustomResourceResponse> {
  const url = String(record(event).ResponseURL);
  const [res] = await rig.responses.waitFor(url, 1, 10_000);
  if (res?.Status !== status) throw new Error(`expected ${status} at the ResponseURL, got ${JSON.stringify(res)}`);
  return res;
}

/**
 * A request from test/events/cloudformation with its own ResponseURL on the
 * response server; `props` are merged into the fixture's properties, or
 * replace them with `replaceProperties`.
 */
function customResourceEvent(
  rig: Rig,
  fixture: 'schema-create' | 'schema-delete',
  props: Record<string, unknown>,
  opts: { overrides?: Record<string, unknown>; replaceProperties?: boolean } = {},
): CloudFormationCustomResourceEvent {
  const event = cloudFormationEvent(fixture) as CloudFormationCustomResourceEvent & Record<string, unknown>;
  const base = opts.replaceProperties ? { ServiceToken: event.ResourceProperties.ServiceToken } : event.ResourceProperties;
  Object.assign(event, opts.overrides, { ResponseURL: rig.responses.url(fixture), ResourceProperties: { ...base, ...props } });
  return event;
}

const CASES: Case[] = [
  {
    logicalId: 'RegistrarFunction',
    label: "another cluster's task event (ignored, no AWS call)",
    values: (rig) => discoveryValues(rig.registrar),
    event: () => Promise.resolve(JSON.parse(readFileSync(path.join(ROOT, 'test/events/ecs/task-running.json'), 'utf8')) as unknown),
    check: (_rig, _event, result) => {
      if (record(result).action !== 'ignored') throw new Error(`expected action ignored, got ${JSON.stringify(result)}`);
      return Promise.resolve();
    },
  },
  {
    logicalId: 'RegistrarFunction',
    label: 'RUNNING task registered in Cloud Map (moto)',
    values: (rig) => discoveryValues(rig.registrar),
    async event(rig) {
      const aws = rig.registrar;
      const group = `service:${aws.serviceName}`;
      const res = await rig.ecs.send(
        new RunTaskCommand({
          cluster: aws.clusterArn,
          taskDefinition: rig.plainTaskDefinitionArn,
          launchType: 'FARGATE',
          group,
          networkConfiguration: { awsvpcConfiguration: { subnets: [aws.subnetId], securityGroups: [aws.securityGroupId] } },
        }),
      );
      const task = res.tasks?.[0];
      const taskArn = task?.taskArn;
      const ip = task?.attachments?.[0]?.details?.find((d) => d.name === 'privateIPv4Address')?.value;
      if (!taskArn || !ip) throw new Error(`moto RunTask returned no task ARN or IP: ${JSON.stringify(res.failures ?? res.tasks)}`);
      const stream = new EcsTaskEventStream({ clusterArn: aws.clusterArn, taskArn, taskDefinitionArn: rig.plainTaskDefinitionArn, group, subnetId: aws.subnetId, availabilityZone: `${AWS_REGION}a` });
      return stream.next({ lastStatus: 'RUNNING', desiredStatus: 'RUNNING', ip });
    },
    check: (_rig, _event, result) => {
      if (record(result).action !== 'registered') throw new Error(`expected action registered, got ${JSON.stringify(result)}`);
      return Promise.resolve();
    },
  },
  {
    logicalId: 'ReconcilerFunction',
    label: 'scheduled run, empty service (moto)',
    values: (rig) => discoveryValues(rig.emptyService),
    event: () =>
      Promise.resolve({
        version: '0',
        id: '53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa',
        'detail-type': 'Scheduled Event',
        source: 'aws.events',
        account: '123456789012',
        time: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
        region: AWS_REGION,
        resources: ['arn:aws:events:us-east-1:123456789012:rule/spicedb-ecs-ReconcilerFunctionEveryMinute'],
        detail: {},
      }),
    check: (_rig, _event, result) => {
      const r = record(result);
      const calls = record(r.calls);
      if (!Array.isArray(r.added) || r.added.length !== 0 || !Array.isArray(r.kept) || r.kept.length !== 0 || calls.ListInstances !== 1 || calls.ListTasks !== 1) {
        throw new Error(`expected an empty reconcile (one ListInstances, one ListTasks), got ${JSON.stringify(result)}`);
      }
      return Promise.resolve();
    },
  },
  {
    logicalId: 'SchemaFunction',
    label: 'Delete with DeleteMode keep (answers at once)',
    values: () => ({}),
    event: (rig) =>
      Promise.resolve(customResourceEvent(rig, 'schema-delete', { DeleteMode: 'keep', SpiceDBEndpoint: rig.spicedb.grpcEndpoint, PresharedKeySecretArn: rig.presharedKeySecretArn })),
    async check(rig, event) {
      await expectResponse(rig, event, 'SUCCESS');
    },
  },
  {
    logicalId: 'SchemaFunction',
    label: 'Create: key from Secrets Manager (moto), schema, 2 relationships, 3 assertions on SpiceDB',
    values: () => ({}),
    event: (rig) => Promise.resolve(customResourceEvent(rig, 'schema-create', { SpiceDBEndpoint: rig.spicedb.grpcEndpoint, PresharedKeySecretArn: rig.presharedKeySecretArn })),
    async check(rig, event) {
      const res = await expectResponse(rig, event, 'SUCCESS');
      if (String(res.Data?.AssertionsChecked) !== '3') throw new Error(`expected 3 assertions checked, got ${JSON.stringify(res)}`);
    },
  },
  {
    logicalId: 'MigrationFunction',
    label: 'Delete (answers at once: migrations are never reverted)',
    values: () => ({}),
    event: (rig) =>
      Promise.resolve(
        customResourceEvent(
          rig,
          'schema-delete',
          {
            ClusterArn: rig.registrar.clusterArn,
            TaskDefinitionArn: rig.plainTaskDefinitionArn,
            Subnets: [rig.registrar.subnetId],
            SecurityGroups: [rig.registrar.securityGroupId],
            Image: rig.registrar.image,
            DatastoreUriSecretArn: rig.presharedKeySecretArn,
            LogGroupName: '/spicedb-ecs/migrations',
            LogStreamPrefix: 'migrate',
          },
          { overrides: { ResourceType: 'Custom::SpiceDBMigration', LogicalResourceId: 'Migration', PhysicalResourceId: 'spicedb-ecs/Migration' }, replaceProperties: true },
        ),
      ),
    async check(rig, event) {
      await expectResponse(rig, event, 'SUCCESS');
    },
  },
];

async function startRig(): Promise<Rig> {
  const host = loopbackHost();
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    // Once, in reverse order of start (a signal and the finally block may both ask).
    for (const s of stops.splice(0).reverse()) await s().catch((err: unknown) => console.error(`stop: ${String(err)}`));
  };
  try {
    const presharedKey = `key_${Math.random().toString(16).slice(2)}${Date.now().toString(16)}`;
    const [moto, spicedb, responses] = await Promise.all([startMoto({ host }), startSpiceDB({ host, presharedKey }), startResponseServer(host)]);
    stops.push(() => moto.stop(), () => spicedb.stop(), () => responses.stop());
    // Each DescribeTasks would otherwise move moto's tasks one step towards STOPPED; `times` is the hold.
    await setEcsTaskTransition(moto.endpoint, { progression: 'manual', times: 1_000_000 });
    const config = { endpoint: moto.endpoint, region: AWS_REGION, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
    const ec2 = new EC2Client(config);
    const ecs = new ECSClient(config);
    const serviceDiscovery = new ServiceDiscoveryClient({ ...config, disableHostPrefix: true });
    const sm = new SecretsManagerClient(config);
    stops.push(() => Promise.resolve([ec2, ecs, serviceDiscovery, sm].forEach((c) => c.destroy())));
    const registrar = await provisionDiscovery({ ec2, ecs, serviceDiscovery }, { name: 'bench-startup', dnsTtlSeconds: 5 });
    const emptyService = await provisionDiscovery({ ec2, ecs, serviceDiscovery }, { name: 'bench-startup-empty', dnsTtlSeconds: 5 });
    const td = await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: 'bench-startup-plain',
        networkMode: 'awsvpc',
        requiresCompatibilities: ['FARGATE'],
        cpu: '256',
        memory: '512',
        containerDefinitions: [{ name: 'spicedb', image: registrar.image, essential: true, cpu: 256, memory: 512, command: ['serve'] }],
      }),
    );
    const secret = await sm.send(new CreateSecretCommand({ Name: 'bench-startup-preshared-key', SecretString: presharedKey }));
    return {
      host,
      moto,
      spicedb,
      responses,
      ecs,
      registrar,
      emptyService,
      plainTaskDefinitionArn: td.taskDefinition?.taskDefinitionArn ?? '',
      presharedKeySecretArn: secret.ARN ?? '',
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

// ---------------------------------------------------------------------------
// Preparation: bundles, the unbundled reference, sizes.
// ---------------------------------------------------------------------------
function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = path.join(dir, d.name);
    if (d.isDirectory()) return tsFiles(p);
    return d.name.endsWith('.ts') && !d.name.endsWith('.d.ts') ? [p] : [];
  });
}

async function prepare(builds: FunctionBuild[]): Promise<void> {
  for (const fn of builds) {
    if (!existsSync(fn.bundle)) {
      say(`${fn.logicalId}: ${path.relative(ROOT, fn.bundle)} missing, bundling`);
      await build(fn.options);
    }
  }
  // One output file per source file, CommonJS like the bundles, with source maps as tsc --sourceMap would.
  const target = String(builds[0]?.options.target ?? 'node22');
  await build({
    entryPoints: tsFiles(path.join(ROOT, 'functions')),
    outdir: UNBUNDLED,
    outbase: ROOT,
    bundle: false,
    platform: 'node',
    format: 'cjs',
    target,
    sourcemap: true,
    logLevel: 'warning',
  });
  mkdirSync(WORK, { recursive: true });
  writeFileSync(RUNNER, RUNNER_SOURCE);
}

interface Sizes {
  bundleBytes: number;
  mapBytes: number;
  /** gzip of bundle + map: about what the deployment zip carries. */
  zippedBytes: number;
  /** Packages bundled (from node_modules). */
  packages: number;
}

function bundleSizes(fn: FunctionBuild): Sizes {
  const js = readFileSync(fn.bundle);
  const mapFile = `${fn.bundle}.map`;
  const map = existsSync(mapFile) ? readFileSync(mapFile) : Buffer.alloc(0);
  // Distinct node_modules packages among the source map's sources.
  const sources = map.length > 0 ? ((JSON.parse(map.toString('utf8')) as { sources?: string[] }).sources ?? []) : [];
  const packages = new Set(sources.map((s) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(s)?.[1]).filter(Boolean)).size;
  return { bundleBytes: js.length, mapBytes: map.length, zippedBytes: gzipSync(js).length + gzipSync(map).length, packages };
}

/** Bytes on disk of the production dependencies (`npm ls --omit=dev`): what an unbundled deployment ships. */
function productionNodeModules(): { packages: number; bytes: number } {
  try {
    const out = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const dirs = out
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.includes(`${path.sep}node_modules${path.sep}`))
      .sort();
    const top: string[] = [];
    for (const d of dirs) if (!top.some((t) => d.startsWith(`${t}${path.sep}`))) top.push(d);
    const total = execFileSync('du', ['-sbc', ...top], { encoding: 'utf8' }).trim().split('\n').pop() ?? '0';
    return { packages: dirs.length, bytes: Number(total.split(/\s+/)[0]) };
  } catch {
    return { packages: 0, bytes: 0 };
  }
}

// ---------------------------------------------------------------------------
// One sample.
// ---------------------------------------------------------------------------
interface FunctionEnv {
  env: Record<string, string>;
  timeoutMs: number;
  memory: string;
}

function functionEnv(logicalId: string, values: Record<string, string>, awsEnv: Record<string, string>): FunctionEnv {
  const template = loadTemplate(path.join(ROOT, 'template.yaml'));
  const res = template.Resources[logicalId];
  const globals = template.Globals?.Function ?? {};
  const props = res?.Properties ?? {};
  const vars = (v: Json | undefined) => ((v as Record<string, Json> | undefined)?.Variables ?? {}) as Record<string, Json>;
  const env = resolveEnvironment({ ...vars(globals.Environment), ...vars(props.Environment) }, values, logicalId);
  return {
    env: { ...env, ...awsEnv, AWS_LAMBDA_FUNCTION_NAME: logicalId },
    timeoutMs: Number(props.Timeout ?? globals.Timeout ?? 3) * 1000,
    memory: String(props.MemorySize ?? globals.MemorySize ?? 128),
  };
}

function runSample(variant: Variant, fn: FunctionBuild, fenv: FunctionEnv, event: unknown): Promise<Sample> {
  const { NODE_OPTIONS: nodeOptions, ...rest } = fenv.env;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}),
    ...rest,
    ...(variant.templateNodeOptions && nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}),
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: fenv.memory,
    BENCH_HANDLER_FILE: variant.file(fn),
    BENCH_HANDLER_EXPORT: fn.handlerExport,
    BENCH_EVENT: JSON.stringify(event),
    BENCH_TIMEOUT_MS: String(fenv.timeoutMs),
  };
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, [...variant.nodeArgs, RUNNER], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const logs: Buffer[] = [];
    const keep = (c: Buffer) => {
      logs.push(c);
      if (logs.length > 200) logs.shift();
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (c: Buffer) => out.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), fenv.timeoutMs + 30_000);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
      const text = Buffer.concat(out).toString('utf8');
      const tail = Buffer.concat(logs).toString('utf8').slice(-2000);
      if (!text) return reject(new Error(`${fn.logicalId} (${variant.key}) exited ${code ?? signal} without a report; output:\n${tail}`));
      const report = JSON.parse(text) as ChildReport;
      if (!report.ok) return reject(new Error(`${fn.logicalId} (${variant.key}) failed at ${report.stage}: ${report.error}\n${tail}`));
      resolve({ ...report, wallMs });
    });
  });
}

// ---------------------------------------------------------------------------
// The run, and the fragment.
// ---------------------------------------------------------------------------
interface CaseResult {
  logicalId: string;
  label: string;
  samples: Partial<Record<Variant['key'], Sample[]>>;
  error?: string;
}

async function measure(rig: Rig, builds: FunctionBuild[]): Promise<CaseResult[]> {
  const results: CaseResult[] = CASES.map((c) => ({ logicalId: c.logicalId, label: c.label, samples: {} }));
  const envs = CASES.map((c) => functionEnv(c.logicalId, c.values(rig), rig.moto.awsEnv));
  // Round 0 warms the page cache and tsx's transpile cache; it is not counted.
  for (let round = 0; round <= RUNS; round++) {
    for (const [i, c] of CASES.entries()) {
      const result = results[i] as CaseResult;
      if (result.error) continue;
      const fn = builds.find((b) => b.logicalId === c.logicalId);
      if (!fn) {
        result.error = `${c.logicalId} is not a function of template.yaml`;
        continue;
      }
      // Rotate the order, so that no variant always runs first (or right after moto was busy).
      const order = VARIANTS.map((_, k) => VARIANTS[(k + round + i) % VARIANTS.length] as Variant);
      for (const v of order) {
        try {
          const event = await c.event(rig);
          const sample = await runSample(v, fn, envs[i] as FunctionEnv, event);
          await c.check(rig, event, sample.result);
          if (round > 0) (result.samples[v.key] ??= []).push(sample);
        } catch (err) {
          result.error = `${v.key}: ${err instanceof Error ? err.message : String(err)}`;
          say(`${c.logicalId} / ${c.label}: FAILED: ${result.error}`);
          break;
        }
      }
    }
    if (round === 0) say('warm-up round done');
    else if (round % 5 === 0 || round === RUNS) say(`round ${round}/${RUNS} done`);
  }
  return results;
}

const kib = (bytes: number): string => (bytes / 1024).toFixed(0);
const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);
const ratio = (a: number, b: number): string => (b > 0 ? `${(a / b).toFixed(2)}×` : '–');

/** Everything a fragment is made from; saved as .cache/results/bench-startup.json. */
interface Raw {
  machine: Machine;
  date: string;
  runs: number;
  sizes: Record<string, Sizes>;
  productionNodeModules: { packages: number; bytes: number };
  results: CaseResult[];
}

function report(raw: Raw, builds: FunctionBuild[]): string {
  const { results, sizes, productionNodeModules: deps } = raw;
  const pick = (s: Sample[] | undefined, f: (x: Sample) => number) => (s ?? []).map(f);
  const med = (s: Sample[] | undefined, f: (x: Sample) => number) => median(pick(s, f));

  const sizeRows = builds.map((fn) => {
    const s = sizes[fn.logicalId] as Sizes;
    const anyCase = results.find((r) => r.logicalId === fn.logicalId && r.samples.unbundled?.length);
    const unb = anyCase?.samples.unbundled?.[0];
    const tsx = anyCase?.samples.tsx?.[0];
    return [
      fn.logicalId,
      kib(s.bundleBytes),
      kib(s.mapBytes),
      kib(s.zippedBytes),
      s.packages,
      unb ? `${unb.modules} files, ${kib(unb.moduleBytes)} KiB` : '–',
      tsx ? `${tsx.modules} files, ${kib(tsx.moduleBytes)} KiB` : '–',
    ];
  });

  const timeRows: (string | number)[][] = [];
  const ratioRows: (string | number)[][] = [];
  const li = (x: Sample) => x.loadMs + x.invokeMs;
  for (const r of results) {
    if (r.error) {
      timeRows.push([r.logicalId, r.label, `FAILED: ${r.error.split('\n')[0]?.slice(0, 200) ?? ''}`, '', '', '', '', '', '', '']);
      ratioRows.push([r.logicalId, r.label, 'FAILED', '', '', '', '', '', '']);
      continue;
    }
    VARIANTS.forEach((v, k) => {
      const s = r.samples[v.key];
      timeRows.push([
        k === 0 ? r.logicalId : '',
        k === 0 ? r.label : '',
        v.label,
        fmtSpread(pick(s, (x) => x.bootMs)),
        fmtSpread(pick(s, (x) => x.loadMs)),
        fmtSpread(pick(s, (x) => x.loadCpuMs)),
        fmtSpread(pick(s, (x) => x.invokeMs)),
        fmtSpread(pick(s, li)),
        fmtSpread(pick(s, (x) => x.wallMs)),
        fmtSpread(pick(s, (x) => x.cpuMs)),
      ]);
    });
    const b = r.samples.bundle;
    const u = r.samples.unbundled;
    const t = r.samples.tsx;
    const n = r.samples['bundle-nomaps'];
    ratioRows.push([
      r.logicalId,
      r.label,
      ratio(med(b, li), med(u, li)),
      ratio(med(b, (x) => x.wallMs), med(u, (x) => x.wallMs)),
      ratio(med(b, (x) => x.loadCpuMs), med(u, (x) => x.loadCpuMs)),
      ratio(med(n, li), med(u, li)),
      ratio(med(b, li), med(t, li)),
      ratio(med(b, (x) => x.wallMs), med(t, (x) => x.wallMs)),
      ratio(med(n, (x) => x.loadMs), med(b, (x) => x.loadMs)),
    ]);
  }
  const ok = results.filter((r) => !r.error);
  // Per case medians, then their median and range over the cases.
  const perCase = (key: Variant['key'], f: (x: Sample) => number) => ok.map((r) => med(r.samples[key], f));
  const over = (key: Variant['key'], f: (x: Sample) => number) => fmtRange(perCase(key, f));
  const filesLoaded = ok.flatMap((r) => (r.samples.unbundled ?? []).map((x) => x.modules));
  return `# Benchmark: Lambda start-up (benchmark 4)

Generated by \`npx tsx scripts/bench-startup.ts\` on ${raw.date}: ${raw.runs} samples per case and way of loading, each a fresh \`node\` process (${raw.machine.node}, the Lambda runtime's major), after one uncounted warm-up round; median, with p10–p90 in brackets.

${machineLine(raw.machine)}

Conditions: each sample spawns \`node\` with a small Lambda-like runner and the function's environment from template.yaml (its Globals set \`NODE_OPTIONS=--enable-source-maps\`). Inside the child, \`process.hrtime\` times \`require()\` of the handler file until the \`handler\` export is resolved (load), then the first invocation until its promise settled (first event); the parent times the whole process from \`spawn()\` to exit (the runner exits right after the invocation, as nothing is kept running in a frozen sandbox). Node start-up (boot) is until the runner's first line, so it includes tsx's own registration for tsx. Every sample is checked: the registration happened, the custom resource PUT SUCCESS to the response server. AWS calls go to moto and SpiceDB calls to a local \`spicedb serve\` (memory datastore) on loopback, so the first-event times hold no network latency: in Lambda each AWS call adds its round trip. The machine is shared with other work: compare within one table, not across runs.

Ways of loading the same handler:
- **bundle**: \`dist/<LogicalId>/handler.js\` from \`scripts/build.ts\`, the template's esbuild settings (minified, Target node22, source map), run as deployed with \`--enable-source-maps\`.
- **bundle without --enable-source-maps**: the same file with \`NODE_OPTIONS\` unset, to show what the flag costs at start-up.
- **unbundled JS + node_modules** (the fair reference): every \`functions/**/*.ts\` transpiled one-to-one by esbuild, as \`tsc\` would emit it (CommonJS, source maps), loading \`@aws-sdk/*\`, zod, grpc-js and Powertools from \`node_modules\`: what one deploys without a bundler, with the same \`NODE_OPTIONS\`.
- **tsx on the sources**: \`node --import tsx\` on \`functions/<name>/handler.ts\`, transpiling at load (its cache is warm after the warm-up round): what a developer runs locally; no Lambda runtime runs it.

## Sizes

${markdownTable(
  ['function', 'bundle (KiB)', 'source map (KiB)', 'gzip of both (KiB)', 'packages inlined', 'unbundled JS: CommonJS files loaded', 'tsx: files loaded'],
  sizeRows,
)}

Without a bundle the deployment package carries the production dependencies: ${deps.packages} packages, ${mib(deps.bytes)} MiB on disk (\`npm ls --omit=dev\`), of which each function loads the files counted above.

## Start-up and first event (ms)

${markdownTable(
  ['function', 'event', 'way of loading', 'Node boot', 'load (require → handler)', 'load, CPU time', 'first event', 'load + first event', 'whole process (spawn → exit)', 'process CPU time'],
  timeRows,
  ['l', 'l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
)}

CPU time is user + system time of all the process's threads (\`process.cpuUsage\`), so it includes V8's background compilation and GC; it moves less than wall time when other work competes for the two cores.

## Ratios (medians)

Below 1, the bundle is faster.

${markdownTable(
  [
    'function',
    'event',
    'load + event: bundle / unbundled JS',
    'whole process: bundle / unbundled JS',
    'load CPU: bundle / unbundled JS',
    'load + event: bundle without source maps / unbundled JS',
    'load + event: bundle / tsx',
    'whole process: bundle / tsx',
    'load: bundle without / with --enable-source-maps',
  ],
  ratioRows,
  ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
)}

Over the ${ok.length} cases (median of the per-case medians, range over the cases): load ${over('bundle', (x) => x.loadMs)} ms for the bundle as deployed, ${over('bundle-nomaps', (x) => x.loadMs)} ms without \`--enable-source-maps\`, ${over('unbundled', (x) => x.loadMs)} ms unbundled, ${over('tsx', (x) => x.loadMs)} ms with tsx; load CPU time ${over('bundle', (x) => x.loadCpuMs)} ms for the bundle, ${over('bundle-nomaps', (x) => x.loadCpuMs)} ms without source maps, ${over('unbundled', (x) => x.loadCpuMs)} ms unbundled; whole process ${over('bundle', (x) => x.wallMs)} ms for the bundle against ${over('unbundled', (x) => x.wallMs)} ms unbundled. The bundle is one file, read and compiled at once; unbundled, Node resolves, reads and compiles ${fmtRange(filesLoaded)} files per function (median and range) out of the ${deps.packages} production packages, and the SDK requires some modules lazily inside functions (parts of its credential provider chain, for example), so part of its loading falls into the first event. With \`--enable-source-maps\` Node also reads and parses the source map of each file it loads, for the bundle one map of ${mib(Math.min(...Object.values(sizes).map((x) => x.mapBytes)))}–${mib(Math.max(...Object.values(sizes).map((x) => x.mapBytes)))} MiB; it buys stack traces that name the TypeScript sources. All files are in the page cache here (the warm-up round read them); a fresh Lambda sandbox reads them from the unpacked package, where one larger file may fare better than 150 small ones (not measured). Not measured here: Lambda's own init around these figures (starting the runtime, fetching and unpacking the package, which is about ${kib(Math.max(...Object.values(sizes).map((x) => x.zippedBytes)))} KiB compressed for the largest bundle and its map, against ${mib(deps.bytes)} MiB of node_modules unpacked without a bundle).
`;
}

async function main(): Promise<void> {
  const builds = functionBuilds();
  if (process.env.BENCH_FROM) {
    // Re-render the fragment from the raw results of an earlier run.
    const md = report(JSON.parse(readFileSync(process.env.BENCH_FROM, 'utf8')) as Raw, builds);
    writeFragment('startup', md);
    console.log(md);
    return;
  }
  const m = machine();
  await prepare(builds);
  const sizes = Object.fromEntries(builds.map((fn) => [fn.logicalId, bundleSizes(fn)]));
  const deps = productionNodeModules();
  say(`bundles: ${builds.map((fn) => `${fn.logicalId} ${kib((sizes[fn.logicalId] as Sizes).bundleBytes)} KiB`).join(', ')}; production node_modules ${mib(deps.bytes)} MiB`);
  const rig = await startRig();
  let results: CaseResult[];
  const onSignal = (signal: NodeJS.Signals) => {
    say(`${signal}: stopping`);
    void rig.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    say(`moto ${rig.moto.endpoint}, SpiceDB ${rig.spicedb.grpcEndpoint}; ${CASES.length} cases × ${VARIANTS.length} ways × ${RUNS} samples`);
    results = await measure(rig, builds);
  } finally {
    await rig.stop();
  }
  const raw: Raw = { machine: m, date: today(), runs: RUNS, sizes, productionNodeModules: deps, results };
  const md = report(raw, builds);
  writeFragment('startup', md);
  writeRaw('startup', raw);
  console.log(`\n${md}`);
  const failed = results.filter((r) => r.error);
  if (failed.length > 0) {
    console.error(`${failed.length} case(s) failed: ${failed.map((r) => `${r.logicalId} / ${r.label}`).join('; ')}`);
    process.exit(1);
  }
  // Clients of the rig may keep sockets; the measurement is done.
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
