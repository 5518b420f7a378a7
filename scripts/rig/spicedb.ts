/**
 * Real `spicedb` processes: `serve` with a preshared key on a given loopback
 * address, memory or PostgreSQL datastore, optional dispatch cluster; and
 * `datastore migrate head`. Telemetry and the release check are off so that
 * nothing leaves the machine.
 */
import { healthChecker, type ServingStatus } from '../../functions/shared/grpc-health';
import { component } from './components';
import { freePort, waitFor } from './net';
import { ManagedProcess, run } from './process';

export interface SpiceDBOptions {
  host: string;
  presharedKey: string;
  /** A PostgreSQL URI; the memory datastore when absent. */
  datastoreUri?: string;
  /** Serve the dispatch API and dispatch to the peers this target resolves to. */
  dispatch?: { port?: number; upstreamAddr?: string; maxConnAge?: string };
  /** Further `serve` flags (SpiceDB's real ones). */
  extraArgs?: string[];
  name?: string;
}

export interface SpiceDB {
  name: string;
  host: string;
  /** gRPC API `host:port`. */
  grpcEndpoint: string;
  dispatchEndpoint?: string;
  metricsUrl: string;
  process: ManagedProcess;
  health(): Promise<ServingStatus>;
  /** Graceful stop (SIGTERM). */
  stop(): Promise<void>;
  /** Abrupt stop (SIGKILL), as when a task is killed. */
  kill(): Promise<void>;
}

const QUIET = ['--telemetry-endpoint=', '--skip-release-check', '--log-format=json', '--log-level=warn'];

/** Starts `spicedb serve` and resolves once its gRPC health service reports SERVING. */
export async function startSpiceDB(opts: SpiceDBOptions): Promise<SpiceDB> {
  const bin = component('SPICEDB_BIN');
  const grpcPort = await freePort(opts.host);
  const metricsPort = await freePort(opts.host);
  const args = [
    'serve',
    `--grpc-addr=${opts.host}:${grpcPort}`,
    `--metrics-addr=${opts.host}:${metricsPort}`,
    '--http-enabled=false',
    ...QUIET,
  ];
  if (opts.datastoreUri) args.push('--datastore-engine=postgres', `--datastore-conn-uri=${opts.datastoreUri}`);
  else args.push('--datastore-engine=memory');
  let dispatchEndpoint: string | undefined;
  if (opts.dispatch) {
    const port = opts.dispatch.port ?? (await freePort(opts.host));
    dispatchEndpoint = `${opts.host}:${port}`;
    args.push('--dispatch-cluster-enabled', `--dispatch-cluster-addr=${dispatchEndpoint}`);
    if (opts.dispatch.upstreamAddr) args.push(`--dispatch-upstream-addr=${opts.dispatch.upstreamAddr}`);
    if (opts.dispatch.maxConnAge) args.push(`--dispatch-cluster-max-conn-age=${opts.dispatch.maxConnAge}`);
  }
  args.push(...(opts.extraArgs ?? []));
  const name = opts.name ?? `spicedb@${opts.host}`;
  // The key goes through the environment, not argv, so it is not visible in `ps`.
  const proc = new ManagedProcess({
    name,
    command: bin,
    args,
    env: { ...process.env, SPICEDB_GRPC_PRESHARED_KEY: opts.presharedKey },
  });
  const grpcEndpoint = `${opts.host}:${grpcPort}`;
  const checker = healthChecker(grpcEndpoint);
  try {
    await waitFor(async () => (await checker.check('', 1000)) === 'SERVING', {
      what: `${name} to report SERVING on ${grpcEndpoint}`,
      timeoutMs: 60000,
      abortIf: () => proc.assertRunning(),
    });
  } catch (err) {
    checker.close();
    await proc.stop('SIGKILL');
    throw err;
  }
  return {
    name,
    host: opts.host,
    grpcEndpoint,
    dispatchEndpoint,
    metricsUrl: `http://${opts.host}:${metricsPort}/metrics`,
    process: proc,
    health: () => checker.check('', 1000),
    async stop() {
      checker.close();
      await proc.stop('SIGTERM', 10000);
    },
    async kill() {
      checker.close();
      await proc.stop('SIGKILL');
    },
  };
}

/** `spicedb datastore migrate head` against a PostgreSQL URI. */
export async function migrate(datastoreUri: string): Promise<string> {
  return run({
    name: 'spicedb datastore migrate',
    command: component('SPICEDB_BIN'),
    args: ['datastore', 'migrate', 'head', '--datastore-engine=postgres', '--skip-release-check', '--log-format=json'],
    env: { ...process.env, SPICEDB_DATASTORE_CONN_URI: datastoreUri },
    timeoutMs: 120000,
  });
}
