/**
 * SpiceDB API clients (@authzed/authzed-node promise clients), cached at
 * module scope per (endpoint, TLS, CA, key) so that a warm Lambda container
 * reuses its connection, and a bounded wait for the server to report SERVING.
 */
import { createHash } from 'node:crypto';
import { v1 } from '@authzed/authzed-node';
import { credentials, type ChannelCredentials, type ChannelOptions } from '@grpc/grpc-js';
import { errorMessage } from './errors';
import { healthChecker, type HealthChecker } from './grpc-health';
import { logger } from './logger';

/** Where SpiceDB is and how to authenticate. `presharedKey` is a secret: never log it. */
export interface SpiceDBConnection {
  /** `host:port` of the gRPC API. */
  endpoint: string;
  tls: boolean;
  /** PEM of the CA that signed the server certificate; system roots when absent. */
  caPem?: string;
  presharedKey: string;
}

/**
 * grpc-js backs off up to 120 s between reconnects by default; a caller that
 * waits for a server just starting wants to see it within a second or two.
 */
export const CHANNEL_OPTIONS: ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 2000,
  // Seeds and schemas can be large (SpiceDB accepts schemas up to 4 MiB).
  'grpc.max_send_message_length': 16 * 1024 * 1024,
  'grpc.max_receive_message_length': 16 * 1024 * 1024,
};

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

interface CachedClient {
  identity: string;
  client: v1.ZedClientInterface;
}

const clients = new Map<string, CachedClient>();
const checkers = new Map<string, HealthChecker>();

/**
 * The promise client for `conn`, created once per container. A changed key,
 * TLS setting or CA for the same endpoint closes the old client.
 */
export function spicedbClient(conn: SpiceDBConnection): v1.ZedPromiseClientInterface {
  const slot = `${conn.endpoint}|${conn.tls}`;
  const identity = `${sha256(conn.caPem ?? '')}|${sha256(conn.presharedKey)}`;
  const cached = clients.get(slot);
  if (cached?.identity === identity) return cached.client.promises;
  cached?.client.close();
  const client = !conn.tls
    ? v1.NewClient(conn.presharedKey, conn.endpoint, v1.ClientSecurity.INSECURE_PLAINTEXT_CREDENTIALS, undefined, CHANNEL_OPTIONS)
    : conn.caPem
      ? v1.NewClientWithCustomCert(conn.presharedKey, conn.endpoint, Buffer.from(conn.caPem, 'utf8'), undefined, CHANNEL_OPTIONS)
      : v1.NewClient(conn.presharedKey, conn.endpoint, v1.ClientSecurity.SECURE, undefined, CHANNEL_OPTIONS);
  clients.set(slot, { identity, client });
  logger.debug('created SpiceDB client', { endpoint: conn.endpoint, tls: conn.tls, customCa: conn.caPem !== undefined });
  return client.promises;
}

/** Channel credentials for the health service (it needs no token). */
export function healthCredentials(conn: Pick<SpiceDBConnection, 'tls' | 'caPem'>): ChannelCredentials {
  if (!conn.tls) return credentials.createInsecure();
  return credentials.createSsl(conn.caPem ? Buffer.from(conn.caPem, 'utf8') : undefined);
}

/** The cached health checker for an endpoint and TLS setting. */
export function spicedbHealthChecker(conn: Pick<SpiceDBConnection, 'endpoint' | 'tls' | 'caPem'>): HealthChecker {
  const slot = `${conn.endpoint}|${conn.tls}|${sha256(conn.caPem ?? '')}`;
  let checker = checkers.get(slot);
  if (!checker) {
    checker = healthChecker(conn.endpoint, healthCredentials(conn), CHANNEL_OPTIONS);
    checkers.set(slot, checker);
  }
  return checker;
}

/** Closes every cached client (tests, benchmarks). */
export function closeSpiceDBClients(): void {
  for (const { client } of clients.values()) client.close();
  for (const checker of checkers.values()) checker.close();
  clients.clear();
  checkers.clear();
}

/** SpiceDB did not report SERVING in time. */
export class NotServingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotServingError';
  }
}

export interface WaitOptions {
  /** Stops waiting when aborted. */
  signal?: AbortSignal;
  /** First pause between checks (default 100 ms); doubles up to `maxDelayMs`. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** A checker to use instead of a cached one for (endpoint, creds). */
  checker?: HealthChecker;
}

/**
 * Polls the gRPC health service of `endpoint` until it reports SERVING, with
 * exponential backoff, until `deadline` (epoch ms). Resolves with the number
 * of checks made; throws NotServingError naming the last status or error.
 */
export async function waitUntilServing(endpoint: string, creds: ChannelCredentials, deadline: number, opts: WaitOptions = {}): Promise<number> {
  const checker = opts.checker ?? healthChecker(endpoint, creds, CHANNEL_OPTIONS);
  const started = Date.now();
  let delay = opts.initialDelayMs ?? 100;
  let last = 'no check completed';
  let attempts = 0;
  try {
    for (;;) {
      if (opts.signal?.aborted) throw new NotServingError(`stopped waiting for SpiceDB at ${endpoint} to report SERVING (last: ${last})`);
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new NotServingError(
          `SpiceDB at ${endpoint} did not report SERVING within ${((Date.now() - started) / 1000).toFixed(1)} s (${attempts} checks; last: ${last})`,
        );
      }
      attempts++;
      try {
        const status = await checker.check('', Math.max(50, Math.min(2000, left)));
        if (status === 'SERVING') {
          if (attempts > 1) logger.info('SpiceDB is SERVING', { endpoint, attempts, waitedMs: Date.now() - started });
          return attempts;
        }
        last = status;
      } catch (err) {
        last = errorMessage(err);
      }
      if (attempts === 1) logger.info('waiting for SpiceDB to report SERVING', { endpoint, last });
      // Jitter the pause, but never sleep past the deadline (nor in ever
      // shorter steps towards it).
      await sleep(Math.min(delay * (0.75 + Math.random() / 4), Math.max(0, deadline - Date.now())), opts.signal);
      delay = Math.min(delay * 2, opts.maxDelayMs ?? 2000);
    }
  } finally {
    if (!opts.checker) checker.close();
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
