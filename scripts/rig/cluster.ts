/**
 * A real SpiceDB dispatch cluster on one machine, discovered through Cloud
 * Map: PostgreSQL (migrated once), the AWS emulator with the ECS service and
 * the Cloud Map namespace/service, the DNS view of that service, and a local
 * ECS whose task events go to the real registrar domain code (unmodified,
 * only its clients point at the emulator). The cluster test, the benchmark
 * and the local stack build on it.
 */
import { randomBytes } from 'node:crypto';
import { EC2Client } from '@aws-sdk/client-ec2';
import { ECSClient } from '@aws-sdk/client-ecs';
import { ServiceDiscoveryClient } from '@aws-sdk/client-servicediscovery';
import { v1 } from '@authzed/authzed-node';
import { handleTaskStateChange, type DiscoveryDeps, type RegistrarOutcome } from '../../functions/shared/discovery/registrar';
import { drainSeconds, RESOLVER_MIN_INTERVAL_SECONDS, type DrainTimings } from '../../functions/shared/drain';
import { logger } from '../../functions/shared/logger';
import { startCloudMapDns, type CloudMapDns } from './cloudmap-dns';
import { provisionDiscovery, type DiscoveryAws } from './discovery-aws';
import { dispatchFixture, randomDocumentCheck, seededRandom, writeDispatchFixture, type DispatchFixture, type DispatchFixtureOptions } from './dispatch-schema';
import type { EcsTaskStateChangeEvent } from './ecs-events';
import { startCheckLoad, type CheckLoad, type CheckLoadOptions } from './load';
import { LocalEcs, type LocalTask, type TaskEventSink } from './local-ecs';
import { dispatchChecksServed } from './metrics';
import { AWS_REGION, startMoto, type Moto } from './moto';
import { migrate } from './spicedb';
import { startPostgres, type Postgres } from './postgres';

/**
 * Drain-rule inputs for a short run: TTL 1 s (the DNS view's records),
 * max-conn-age 5 s (SpiceDB's real flag), margin 5 s. The 30 s resolver
 * floor is fixed inside gRPC. Environment overrides: CLUSTER_DNS_TTL_SECONDS,
 * CLUSTER_MAX_CONN_AGE_SECONDS, CLUSTER_MARGIN_SECONDS.
 */
export function clusterTimings(env: NodeJS.ProcessEnv = process.env): DrainTimings {
  const num = (name: string, fallback: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number of seconds, got "${raw}"`);
    return n;
  };
  return {
    dnsTtlSeconds: num('CLUSTER_DNS_TTL_SECONDS', 1),
    resolverMinIntervalSeconds: RESOLVER_MIN_INTERVAL_SECONDS,
    maxConnAgeSeconds: num('CLUSTER_MAX_CONN_AGE_SECONDS', 5),
    marginSeconds: num('CLUSTER_MARGIN_SECONDS', 5),
  };
}

/**
 * Dispatch caches off, so that every check dispatches (with them on, repeated
 * sub-problems are answered from cache and dispatch fades as the cache warms).
 */
export const NO_DISPATCH_CACHE = ['--dispatch-cache-enabled=false', '--dispatch-cluster-cache-enabled=false'];

export interface DispatchClusterOptions {
  /** Name prefix (default: random). */
  name?: string;
  timings?: DrainTimings;
  /** Override the graceful drain hold (default drainSeconds(timings)). */
  drainHoldMs?: number;
  fixture?: DispatchFixtureOptions;
  /** Further `spicedb serve` flags (default NO_DISPATCH_CACHE). */
  extraSpiceDBArgs?: string[];
  /** Log level of the registrar's logger (default WARN: one line per decision is noise here). */
  registrarLogLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  /** SpiceDB's preshared key (default: random). */
  presharedKey?: string;
  /** Wraps the direct registrar call (e.g. EventBridge-like delivery); default: call it directly. */
  deliver?: (event: EcsTaskStateChangeEvent, registrar: TaskEventSink) => Promise<void>;
  log?: (line: string) => void;
}

/** One event the registrar handled. */
export interface RegistrarRecord {
  taskId: string;
  lastStatus: string;
  desiredStatus: string;
  healthStatus?: string;
  version: number;
  /** Epoch ms when the registrar was called. */
  at: number;
  /** Handler time. */
  ms: number;
  outcome: RegistrarOutcome;
}

export interface DispatchCluster {
  name: string;
  postgres: Postgres;
  moto: Moto;
  aws: DiscoveryAws;
  dns: CloudMapDns;
  ecs: LocalEcs;
  deps: DiscoveryDeps;
  fixture: DispatchFixture;
  presharedKey: string;
  timings: DrainTimings;
  /** drainSeconds(timings): the hold, and the bound for peers to pick up a change. */
  boundSeconds: number;
  /** Every event the registrar handled, in order. */
  registrar: RegistrarRecord[];
  /** Starts `count` tasks (in parallel) and resolves when all are RUNNING and HEALTHY. */
  scaleOut(count: number, opts?: { acceptClients?: boolean }): Promise<LocalTask[]>;
  /** CheckPermission load over the tasks in the load balancer's rotation. */
  startLoad(opts?: Partial<CheckLoadOptions>): CheckLoad;
  /** DispatchCheck calls each live task has served, by task id. */
  dispatchCounts(): Promise<Record<string, number>>;
  stop(): Promise<void>;
}

/** Brings up datastore, emulator, DNS view and the first `tasks` tasks (default 3). */
export async function startDispatchCluster(opts: DispatchClusterOptions & { tasks?: number } = {}): Promise<DispatchCluster> {
  const name = opts.name ?? `c${randomBytes(4).toString('hex')}`;
  const timings = opts.timings ?? clusterTimings();
  const log = opts.log ?? (() => undefined);
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async (): Promise<void> => {
    while (stops.length > 0) await stops.pop()?.().catch(() => undefined);
  };
  try {
    logger.setLogLevel(opts.registrarLogLevel ?? 'WARN');
    const [postgres, moto] = await Promise.all([startPostgres(), startMoto()]);
    stops.push(() => postgres.stop(), () => moto.stop());
    const datastoreUri = await postgres.createDatabase(name.toLowerCase().replace(/[^a-z0-9_]/g, '_'));
    await migrate(datastoreUri);
    log('PostgreSQL migrated; emulator up');

    const config = { endpoint: moto.endpoint, region: AWS_REGION, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
    const serviceDiscovery = explainEmulatorErrors(new ServiceDiscoveryClient({ ...config, disableHostPrefix: true }), moto);
    const aws = await provisionDiscovery({ ec2: new EC2Client(config), ecs: new ECSClient(config), serviceDiscovery }, { name, dnsTtlSeconds: timings.dnsTtlSeconds });
    const dns = await startCloudMapDns({ serviceDiscovery, namespaceId: aws.namespaceId });
    stops.push(() => dns.stop());
    log(`Cloud Map ${aws.dnsName} (TTL ${timings.dnsTtlSeconds}s) served by the DNS view on ${dns.endpoint}`);

    const registrar: RegistrarRecord[] = [];
    const presharedKey = opts.presharedKey ?? `key_${randomBytes(18).toString('hex')}`;
    // The registrar sees ECS through a client whose DescribeTasks carries the tasks' loopback IPs and health.
    const registrarEcs = explainEmulatorErrors(new ECSClient(config), moto);
    const deps: DiscoveryDeps = {
      ecs: registrarEcs,
      serviceDiscovery,
      target: { clusterArn: aws.clusterArn, serviceName: aws.serviceName, cloudMapServiceId: aws.cloudMapServiceId, dispatchPort: aws.dispatchPort },
      options: { operationPollMs: 20 },
    };
    const direct: TaskEventSink = async (event) => {
      const at = Date.now();
      const outcome = await handleTaskStateChange(event, deps);
      const d = event.detail;
      registrar.push({ taskId: outcome.taskId ?? '', lastStatus: d.lastStatus, desiredStatus: d.desiredStatus, healthStatus: d.healthStatus, version: d.version, at, ms: Date.now() - at, outcome });
    };
    const deliver = opts.deliver;
    const sink: TaskEventSink = deliver ? (event) => deliver(event, direct) : direct;
    const localEcs = await LocalEcs.create({
      ecs: explainEmulatorErrors(new ECSClient(config), moto),
      motoEndpoint: moto.endpoint,
      aws,
      dns,
      datastoreUri,
      presharedKey,
      timings,
      drainHoldMs: opts.drainHoldMs,
      extraSpiceDBArgs: opts.extraSpiceDBArgs ?? NO_DISPATCH_CACHE,
      onEvent: sink,
      log,
    });
    localEcs.overlayDescribeTasks(registrarEcs);
    stops.push(() => localEcs.stopAll());

    const fixture = dispatchFixture(opts.fixture);
    const scaleOut = (count: number, o: { acceptClients?: boolean } = {}): Promise<LocalTask[]> =>
      Promise.all(Array.from({ length: count }, () => localEcs.startTask(o)));
    const first = await scaleOut(opts.tasks ?? 3);
    const writer = v1.NewClient(presharedKey, first[0]?.grpcEndpoint ?? '', v1.ClientSecurity.INSECURE_PLAINTEXT_CREDENTIALS);
    try {
      await writeDispatchFixture(writer.promises, fixture);
    } finally {
      writer.close();
    }
    log(`${first.length} tasks up; schema and ${fixture.relationships.length} relationships written`);

    let loads = 0;
    const cluster: DispatchCluster = {
      name,
      postgres,
      moto,
      aws,
      dns,
      ecs: localEcs,
      deps,
      fixture,
      presharedKey,
      timings,
      boundSeconds: drainSeconds(timings),
      registrar,
      scaleOut,
      startLoad(o = {}) {
        const rnd = seededRandom(1000 + loads++);
        const load = startCheckLoad({
          presharedKey,
          endpoints: () => localEcs.clientEndpoints(),
          nextCheck: () => randomDocumentCheck(fixture, rnd),
          maxDurationMs: 10 * 60_000,
          ...o,
        });
        stops.push(() => load.stop());
        return load;
      },
      async dispatchCounts() {
        const out: Record<string, number> = {};
        await Promise.all(
          localEcs.tasks('running', 'draining').map(async (t) => {
            out[t.taskId] = await dispatchChecksServed(t.metricsUrl);
          }),
        );
        return out;
      },
      stop: stopAll,
    };
    return cluster;
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** Appends the emulator's recent output (its traceback) to the error of a request it answered with HTTP 5xx. */
function explainEmulatorErrors<C extends ECSClient | ServiceDiscoveryClient>(client: C, moto: Moto): C {
  (client as ECSClient).middlewareStack.add(
    (next) => async (args) => {
      try {
        return await next(args);
      } catch (err) {
        const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? 0;
        if (err instanceof Error && status >= 500) err.message += `\n(moto answered HTTP ${status}; its recent output:)\n${moto.tail(4000)}`;
        throw err;
      }
    },
    { step: 'initialize', name: 'explainEmulatorErrors' },
  );
  return client;
}
