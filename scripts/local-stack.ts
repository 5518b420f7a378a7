/**
 * The local stack's command line (run through scripts/local-stack.sh, which
 * sets everything up first).
 *
 *   up [--nodes N] [--stack FILE] [--production-timings] [--exit-when-ready]
 *   status | scale N | kill NODE | update FILE | invoke FUNCTION EVENT_FILE | down
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { DEFAULT_TIMINGS, RESOLVER_MIN_INTERVAL_SECONDS, drainSeconds, type DrainTimings } from '../functions/shared/drain';
import { CACHE, ROOT } from './rig/components';
import { sendCommand, serveControl, type Command } from './local/control';
import { LocalStack, type LocalStackStatus } from './local/stack';
import { DEFAULT_STACK_FILE, readStackFile } from './local/stack-file';

/** Short timings for one machine: TTL 1 s, max-conn-age 5 s, margin 5 s (the 30 s resolver floor stays). */
export const LOCAL_TIMINGS: DrainTimings = { dnsTtlSeconds: 1, resolverMinIntervalSeconds: RESOLVER_MIN_INTERVAL_SECONDS, maxConnAgeSeconds: 5, marginSeconds: 5 };

const stateDir = path.join(CACHE, 'local-stack');
const rel = (p: string): string => (p.startsWith(ROOT + path.sep) ? path.relative(ROOT, p) : p);

function usage(): never {
  console.error(`usage: bash scripts/local-stack.sh [up] [--nodes N] [--stack FILE] [--production-timings] [--exit-when-ready]
       bash scripts/local-stack.sh status | scale N | kill NODE | update FILE | invoke FUNCTION EVENT_FILE | down`);
  process.exit(2);
}

/** The commands the README prints, in this order. */
export function walkthrough(endpoint: string, keyFile: string): string[] {
  return [
    `zed context set local ${endpoint} "$(cat ${keyFile})" --insecure`,
    'zed schema read',
    'zed relationship create post:1 reader user:maria',
    'zed permission check post:1 read user:maria --consistency-full',
    'zed permission lookup-subjects post:1 read user --consistency-full',
  ];
}

function printStatus(s: LocalStackStatus): void {
  console.log(`endpoint ${s.endpoint}`);
  console.log(`tasks (${s.nodes.length}):`);
  s.nodes.forEach((n, i) => console.log(`  ${i + 1}. ${n.taskId}  ${n.grpcEndpoint.padEnd(22)} ${n.phase.padEnd(9)} ${n.health}`));
  console.log(`Cloud Map instances (${s.cloudMapInstances.length}): ${s.cloudMapInstances.map((i) => `${i.id.slice(0, 8)}=${i.ipv4}`).join(' ') || '-'}`);
  console.log(`DNS ${s.dns.name} (TTL ${s.dns.ttl}s): ${s.dns.addresses.join(' ') || 'no records'}`);
  console.log(`schema resource ${s.schema.physicalResourceId ?? '-'}; last ZedToken ${s.schema.zedToken ?? '-'}`);
}

async function up(args: string[]): Promise<void> {
  let nodes = 3;
  let stackFile = DEFAULT_STACK_FILE;
  let timings = LOCAL_TIMINGS;
  let exitWhenReady = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--nodes') nodes = Number(args[++i]);
    else if (a === '--stack') stackFile = path.resolve(args[++i] ?? '');
    else if (a === '--production-timings') timings = DEFAULT_TIMINGS;
    else if (a === '--exit-when-ready') exitWhenReady = true;
    else usage();
  }
  if (!Number.isInteger(nodes) || nodes < 1) throw new Error(`--nodes: expected a whole number of at least 1, got ${args.join(' ')}`);
  const schema = readStackFile(stackFile);
  const started = Date.now();
  const stack = new LocalStack({
    nodes,
    schema,
    stateDir,
    timings,
    log: (line) => console.log(line),
    functionLog: process.env.LOCAL_STACK_FUNCTION_LOGS === '1' ? (fn, line) => console.log(`    [${fn}] ${line}`) : undefined,
  });
  let stopping = false;
  const running: { control?: Awaited<ReturnType<typeof serveControl>> } = {};
  const shutdown = async (): Promise<void> => {
    if (stopping) process.exit(130);
    stopping = true;
    console.log('\nstopping the local stack ...');
    await running.control?.stop();
    await stack.stop();
    console.log('stopped; nothing left running');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown());
  process.on('SIGTERM', () => void shutdown());
  await stack.start();
  running.control = await serveControl(stateDir, (command, body) => handle(stack, command, body, shutdown));

  const endpoint = stack.balancer.endpoint;
  console.log(`
Local stack ready in ${((Date.now() - started) / 1000).toFixed(1)}s: ${nodes} SpiceDB task(s) behind ${endpoint}
  preshared key: ${rel(stack.presharedKeyFile)} (and in the emulator's Secrets Manager: ${stack.secretArn})
  drain rule: a stopping task keeps serving ${drainSeconds(timings)} s after it leaves discovery (TTL ${timings.dnsTtlSeconds} + ${timings.resolverMinIntervalSeconds} + ${timings.maxConnAgeSeconds} x 1.1 + ${timings.marginSeconds})

Try it with zed:
${walkthrough(endpoint, rel(stack.presharedKeyFile)).map((c) => `  ${c}`).join('\n')}

In another terminal: bash scripts/local-stack.sh status | scale N | kill NODE | update FILE | invoke FUNCTION EVENT_FILE | down
Ctrl-C stops everything.`);
  if (exitWhenReady) await shutdown();
}

async function handle(stack: LocalStack, command: Command, body: Record<string, unknown>, shutdown: () => Promise<void>): Promise<unknown> {
  switch (command) {
    case 'status':
      return stack.status();
    case 'scale':
      return stack.scale(Number(body.count));
    case 'kill':
      return stack.kill(String(body.node));
    case 'update': {
      const driver = stack.schemaResource;
      const before = driver.events.length;
      const result = await driver.update(stack.schemaProperties(body.properties as Record<string, unknown>));
      if (!result.rolledBack) stack.lastZedToken = String(result.response.Data?.ZedToken ?? stack.lastZedToken ?? '');
      const events = driver.events.slice(before).map((e) => `SpiceDBSchema ${e.status}${e.reason ? `: ${e.reason}` : ''}`);
      return { events, ...result };
    }
    case 'invoke':
      return invoke(stack, String(body.function), body.event);
    case 'down':
      setTimeout(() => void shutdown(), 10);
      return { stopping: true };
    default:
      throw new Error(`unknown command ${String(command)}`);
  }
}

/** Like `sam local invoke -e`: a custom resource request's ResponseURL is pointed at the local endpoint. */
async function invoke(stack: LocalStack, fn: string, event: unknown): Promise<unknown> {
  const e = event as Partial<CloudFormationCustomResourceEvent> | null;
  if (e && typeof e === 'object' && typeof e.RequestType === 'string' && typeof e.ResponseURL === 'string') {
    const { url, response } = stack.schemaResource.responseEndpoint.expect(stack.fn(fn).timeoutMs + 5000);
    const result = await stack.fn(fn).invoke({ ...e, ResponseURL: url }).catch((err: unknown) => ({ error: String(err) }));
    return { result, response: await response };
  }
  return { result: await stack.fn(fn).invoke(event) };
}

async function main(): Promise<void> {
  const [cmd = 'up', ...args] = process.argv.slice(2);
  switch (cmd) {
    case 'up':
      return up(args);
    case 'status':
      return printStatus((await sendCommand(stateDir, 'status')) as LocalStackStatus);
    case 'scale': {
      const count = Number(args[0]);
      if (!Number.isInteger(count) || count < 1) usage();
      console.log(`scaling to ${count} (graceful scale-in waits for the drain hold) ...`);
      console.log(JSON.stringify(await sendCommand(stateDir, 'scale', { count }), null, 2));
      return;
    }
    case 'kill':
      if (!args[0]) usage();
      console.log(JSON.stringify(await sendCommand(stateDir, 'kill', { node: args[0] }), null, 2));
      return;
    case 'update': {
      if (!args[0]) usage();
      const res = (await sendCommand(stateDir, 'update', { properties: readStackFile(path.resolve(args[0])) })) as {
        events: string[];
        rolledBack: boolean;
        response: { Status: string; Reason?: string; Data?: Record<string, unknown> };
      };
      for (const e of res.events) console.log(e);
      console.log(res.rolledBack ? `update failed and was rolled back: ${res.response.Reason}` : `update complete: ${JSON.stringify(res.response.Data ?? {})}`);
      if (res.rolledBack) process.exitCode = 1;
      return;
    }
    case 'invoke': {
      if (!args[0] || !args[1]) usage();
      const event = JSON.parse(readFileSync(path.resolve(args[1]), 'utf8')) as unknown;
      console.log(JSON.stringify(await sendCommand(stateDir, 'invoke', { function: args[0], event }), null, 2));
      return;
    }
    case 'down':
      await sendCommand(stateDir, 'down');
      return;
    default:
      usage();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
