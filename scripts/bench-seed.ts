/**
 * Benchmark: seeding throughput of Custom::SpiceDBSchema (the handler of
 * functions/schema-resource/handler.ts, invoked as Lambda would with a
 * Create request) against `zed import` of the same schema and relationships,
 * on the same SpiceDB build and configuration. Every measurement starts from
 * an empty, migrated PostgreSQL database (or a fresh memory datastore) with
 * its own `spicedb serve`, so neither tool sees the other's data; process
 * start-up is outside the timing, the tools' own start-up is inside.
 *
 *   npx tsx scripts/bench-seed.ts [--sizes 1000,20000,100000] [--runs 3]
 *       [--datastore postgres,memory] [--zed-workers 1,4] [--out FILE]
 *
 * (or BENCH_SEED_SIZES, BENCH_RUNS, BENCH_SEED_DATASTORES, BENCH_SEED_ZED_WORKERS).
 * Prints the Markdown fragment and writes it to docs/benchmarks/seed.md (or
 * --out), the raw samples to .cache/results/bench-seed.json. Not part of the
 * tests; scripts/bench.sh runs it.
 */
import { SecretsManagerClient, CreateSecretCommand } from '@aws-sdk/client-secrets-manager';
import { v1 } from '@authzed/authzed-node';
import type { CloudFormationCustomResourceCreateEvent, Context } from 'aws-lambda';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { machine, machineLine, markdownTable, median, stopwatchLog, today, writeFragment, writeRaw, type Machine } from './bench-lib';
import { component, ROOT, versions } from './rig/components';
import { startMoto } from './rig/moto';
import { loopbackHost } from './rig/net';
import { startPostgres, type Postgres } from './rig/postgres';
import { ManagedProcess, run } from './rig/process';
import { migrate, startSpiceDB, type SpiceDB } from './rig/spicedb';

const SCHEMA = `definition user {}

definition group {
  relation member: user
}

definition document {
  relation viewer: user | group#member
  relation editor: user
  permission view = viewer + editor
  permission edit = editor
}
`;

type Datastore = 'postgres' | 'memory';

interface Options {
  sizes: number[];
  runs: number;
  datastores: Datastore[];
  zedWorkers: number[];
  out?: string;
}

/** Flags win over the environment (BENCH_RUNS, BENCH_SEED_SIZES, BENCH_SEED_DATASTORES, BENCH_SEED_ZED_WORKERS). */
function options(argv: string[]): Options {
  const get = (name: string, env: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : process.env[env] || undefined;
  };
  const ints = (s: string): number[] => s.split(',').map((x) => Number(x.replace(/_/g, '')));
  const datastores = (get('datastore', 'BENCH_SEED_DATASTORES') ?? 'postgres,memory').split(',');
  for (const d of datastores) if (d !== 'postgres' && d !== 'memory') throw new Error(`--datastore takes postgres and/or memory, got ${d}`);
  const out = get('out', 'BENCH_SEED_OUT');
  return {
    sizes: ints(get('sizes', 'BENCH_SEED_SIZES') ?? '1000,20000,100000'),
    runs: Number(get('runs', 'BENCH_RUNS') ?? '3'),
    datastores: datastores as Datastore[],
    zedWorkers: ints(get('zed-workers', 'BENCH_SEED_ZED_WORKERS') ?? '1,4'),
    ...(out ? { out } : {}),
  };
}

/** `count` distinct relationships: documents with viewers and editors, some through groups. */
function relationships(count: number): string[] {
  const docs = Math.max(1, Math.floor(count / 20));
  return Array.from({ length: count }, (_, i) => {
    const doc = `doc${i % docs}`;
    const n = Math.floor(i / docs);
    if (i % 50 === 0) return `document:${doc}#viewer@group:g${n}#member`;
    return `document:${doc}#${i % 7 === 0 ? 'editor' : 'viewer'}@user:u${n}_${i % docs}`;
  });
}

/** A fresh, migrated datastore and its own SpiceDB for one measurement. */
class Datastores {
  private template = '';
  private seq = 0;
  constructor(
    private readonly host: string,
    private readonly key: string,
    private readonly pg: Postgres | undefined,
  ) {}

  private psql(sql: string): Promise<string> {
    if (!this.pg) throw new Error('no PostgreSQL');
    return run({ name: 'psql', command: path.join(component('POSTGRES_BIN_DIR'), 'psql'), args: [this.pg.uri('postgres'), '-v', 'ON_ERROR_STOP=1', '-qAtc', sql] });
  }

  async fresh(): Promise<SpiceDB> {
    if (!this.pg) return startSpiceDB({ host: this.host, presharedKey: this.key });
    if (!this.template) {
      this.template = 'bench_template';
      await migrate(await this.pg.createDatabase(this.template));
    }
    const name = `bench_${++this.seq}`;
    // A copy of the migrated template is much faster than migrating again.
    await this.psql(`create database ${name} template ${this.template}`);
    return startSpiceDB({ host: this.host, presharedKey: this.key, datastoreUri: this.pg.uri(name) });
  }
}

async function countRelationships(endpoint: string, key: string): Promise<number> {
  const c = v1.NewClient(key, endpoint, v1.ClientSecurity.INSECURE_PLAINTEXT_CREDENTIALS);
  try {
    const full = v1.Consistency.create({ requirement: { oneofKind: 'fullyConsistent', fullyConsistent: true } });
    const rows = await c.promises.readRelationships(
      v1.ReadRelationshipsRequest.create({ consistency: full, relationshipFilter: v1.RelationshipFilter.create({ resourceType: 'document' }) }),
    );
    return rows.length;
  } finally {
    c.close();
  }
}

function fakeContext(ms: number): Context {
  const until = Date.now() + ms;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: 'SchemaFunction',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:SchemaFunction',
    memoryLimitInMB: '256',
    awsRequestId: randomBytes(8).toString('hex'),
    logGroupName: '/aws/lambda/SchemaFunction',
    logStreamName: 'bench',
    getRemainingTimeInMillis: () => until - Date.now(),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

type Samples = Map<string, Map<number, number[]>>;

async function main(): Promise<void> {
  const opts = options(process.argv.slice(2));
  const machineAtStart = machine();
  // The handler logs every request; the benchmark prints its own lines.
  process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
  const host = loopbackHost();
  const key = `bench_${randomBytes(16).toString('hex')}`;
  const stops: (() => Promise<void>)[] = [];
  const work = mkdtempSync(path.join(os.tmpdir(), 'bench-seed-'));
  const log = stopwatchLog();
  try {
    const moto = await startMoto({ host });
    stops.push(() => moto.stop());
    Object.assign(process.env, moto.awsEnv);
    const sm = new SecretsManagerClient({});
    const secretArn = (await sm.send(new CreateSecretCommand({ Name: `bench-key-${Date.now()}`, SecretString: key }))).ARN as string;
    sm.destroy();
    const pg = opts.datastores.includes('postgres') ? await startPostgres({ host }) : undefined;
    if (pg) stops.push(() => pg.stop());

    // Where the handler PUTs its answer: answers 200 and keeps the body.
    const answers = new Map<string, string>();
    const sink = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        answers.set(req.url ?? '', body);
        res.end();
      });
    });
    await new Promise<void>((r) => sink.listen(0, host, () => r()));
    stops.push(
      () =>
        new Promise<void>((resolve) => {
          sink.close(() => resolve());
          sink.closeAllConnections();
        }),
    );
    const sinkPort = (sink.address() as AddressInfo).port;

    const { handler } = await import('../functions/schema-resource/handler');
    const { closeSpiceDBClients } = await import('../functions/shared/spicedb-client');
    const zedBin = component('ZED_BIN');
    const zedHome = path.join(work, 'zed-home');
    mkdirSync(zedHome);

    interface Tool {
      name: string;
      seed(endpoint: string, rels: string[], file: string): Promise<void>;
    }
    const tools: Tool[] = [
      {
        name: RESOURCE,
        async seed(endpoint, rels) {
          const id = randomBytes(6).toString('hex');
          const url = `http://${host}:${sinkPort}/response/${id}?X-Amz-Signature=bench`;
          const event: CloudFormationCustomResourceCreateEvent = {
            RequestType: 'Create',
            ServiceToken: 'arn:aws:lambda:us-east-1:123456789012:function:SchemaFunction',
            ResponseURL: url,
            StackId: 'arn:aws:cloudformation:us-east-1:123456789012:stack/bench/00000000-0000-0000-0000-000000000000',
            RequestId: id,
            LogicalResourceId: 'Schema',
            ResourceType: 'Custom::SpiceDBSchema',
            ResourceProperties: { ServiceToken: 'x', SpiceDBEndpoint: endpoint, PresharedKeySecretArn: secretArn, Schema: SCHEMA, Relationships: rels },
          };
          await handler(event, fakeContext(900_000));
          const answer = JSON.parse(answers.get(`/response/${id}?X-Amz-Signature=bench`) ?? '{}') as { Status?: string; Reason?: string };
          if (answer.Status !== 'SUCCESS') throw new Error(`the resource answered ${answer.Status}: ${answer.Reason}`);
        },
      },
      ...opts.zedWorkers.map(
        (workers): Tool => ({
          name: workers === 1 ? 'zed import' : `zed import --workers ${workers}`,
          async seed(endpoint, _rels, file) {
            // The key goes through the environment, not argv.
            const proc = new ManagedProcess({
              name: 'zed import',
              command: zedBin,
              args: ['import', file, '--skip-version-check', `--workers=${workers}`, '--log-level=warn'],
              env: { PATH: process.env.PATH, HOME: zedHome, ZED_KEYRING_PASSWORD: 'bench', ZED_ENDPOINT: endpoint, ZED_TOKEN: key, ZED_INSECURE: 'true', NO_COLOR: '1' },
            });
            const code = await proc.wait();
            if (code !== 0) throw new Error(`zed import exited ${code}: ${proc.tail()}`);
          },
        }),
      ),
    ];

    const files = new Map<number, { rels: string[]; file: string }>();
    for (const size of opts.sizes) {
      const rels = relationships(size);
      const file = path.join(work, `seed-${size}.yaml`);
      writeFileSync(file, stringify({ schema: SCHEMA, relationships: rels.join('\n') }, { lineWidth: 0 }));
      files.set(size, { rels, file });
    }

    const all = new Map<Datastore, Samples>();
    for (const datastore of opts.datastores) {
      const stores = new Datastores(host, key, datastore === 'postgres' ? pg : undefined);
      const samples: Samples = new Map(tools.map((t) => [t.name, new Map()]));
      all.set(datastore, samples);
      for (const size of opts.sizes) {
        const { rels, file } = files.get(size) as { rels: string[]; file: string };
        for (let r = 0; r < opts.runs; r++) {
          // Alternate the order, so that neither tool always runs on a warmer machine.
          for (const tool of r % 2 === 0 ? tools : [...tools].reverse()) {
            const spicedb = await stores.fresh();
            try {
              const started = process.hrtime.bigint();
              await tool.seed(spicedb.grpcEndpoint, rels, file);
              const seconds = Number(process.hrtime.bigint() - started) / 1e9;
              const stored = await countRelationships(spicedb.grpcEndpoint, key);
              if (stored !== size) throw new Error(`${tool.name} left ${stored} relationships, expected ${size}`);
              const bySize = samples.get(tool.name) as Map<number, number[]>;
              bySize.set(size, [...(bySize.get(size) ?? []), seconds]);
              log(`${datastore} ${String(size).padStart(6)} run ${r + 1}/${opts.runs} ${tool.name.padEnd(24)} ${seconds.toFixed(2)} s (${Math.round(size / seconds)} rel/s)`);
            } finally {
              closeSpiceDBClients();
              await spicedb.stop();
            }
          }
        }
      }
    }

    const md = report(opts, machineAtStart, all);
    const file = opts.out ?? writeFragment('seed', md);
    if (opts.out) {
      mkdirSync(path.dirname(opts.out), { recursive: true });
      writeFileSync(opts.out, md);
    }
    writeRaw('seed', { options: opts, samples: Object.fromEntries([...all].map(([d, s]) => [d, Object.fromEntries([...s].map(([t, m]) => [t, Object.fromEntries(m)]))])) });
    console.log(`\n${md}`);
    console.log(`(written to ${path.relative(ROOT, file)})`);
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
}

const RESOURCE = 'Custom::SpiceDBSchema';

function report(opts: Options, m: Machine, all: Map<Datastore, Samples>): string {
  let nproc = String(m.cpus);
  try {
    nproc = execFileSync('nproc', { encoding: 'utf8' }).trim();
  } catch {
    // nproc is missing on some systems; os.cpus() stands.
  }
  const out = [
    '# Seeding: Custom::SpiceDBSchema vs zed import',
    '',
    `Generated by scripts/bench-seed.ts on ${today()}.`,
    '',
    `${machineLine(m)} nproc ${nproc}; load average ${os.loadavg()[0]?.toFixed(1)} at the end. zed ${versions.ZED_VERSION ?? '?'}.`,
    '',
    `Each cell: the median of ${opts.runs} runs, in seconds, with relationships per second; every run on an empty datastore with its own ` +
      '`spicedb serve` (its start-up not timed). The resource is the handler of functions/schema-resource/handler.ts invoked with a Create ' +
      'request (key from Secrets Manager in moto, health wait, DiffSchema, WriteSchema and read-back, TOUCH batches of 1000 with 4 in flight, ' +
      'the response PUT); zed import (a process per run) writes the same schema, then TOUCH batches of 1000 with `--workers` (default 1). ' +
      'Ratio: zed time / resource time (above 1: the resource is faster).',
  ];
  for (const [datastore, samples] of all) {
    const tools = [...samples.keys()];
    const others = tools.filter((t) => t !== RESOURCE);
    const ours = samples.get(RESOURCE) as Map<number, number[]>;
    out.push('', `## ${datastore === 'postgres' ? `PostgreSQL ${versions.POSTGRES_MAJOR ?? ''} datastore`.replace('  ', ' ') : 'memory datastore'}`, '');
    out.push(
      markdownTable(
        ['relationships', ...tools.map((t) => `${t}: s (rel/s)`), ...others.map((t) => `ratio vs ${t}`)],
        opts.sizes.map((size) => [
          size.toLocaleString('en-US'),
          ...tools.map((t) => {
            const s = median(samples.get(t)?.get(size) ?? []);
            return `${s.toFixed(2)} (${Math.round(size / s).toLocaleString('en-US')})`;
          }),
          ...others.map((t) => `${(median(samples.get(t)?.get(size) ?? []) / median(ours.get(size) ?? [])).toFixed(2)}x`),
        ]),
      ),
    );
  }
  out.push(
    '',
    `Reproduce: \`npx tsx scripts/bench-seed.ts --sizes ${opts.sizes.join(',')} --runs ${opts.runs} --datastore ${opts.datastores.join(',')}\`.`,
  );
  return out.join('\n');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
