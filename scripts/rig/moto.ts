/**
 * The AWS API emulator: moto in server mode on a free loopback port. AWS SDK
 * clients reach it through an endpoint override with dummy credentials.
 */
import { component } from './components';
import { freePort, waitFor } from './net';
import { ManagedProcess } from './process';

export interface Moto {
  endpoint: string;
  /** Environment for SDK clients (and handlers) to talk to this emulator. */
  awsEnv: Record<string, string>;
  /** Clears all emulated state. */
  reset(): Promise<void>;
  /** The server's recent output (its tracebacks explain an HTTP 500). */
  tail(chars?: number): string;
  stop(): Promise<void>;
}

export const AWS_REGION = 'us-east-1';

export async function startMoto(opts: { host?: string } = {}): Promise<Moto> {
  const host = opts.host ?? '127.0.0.1';
  const port = await freePort(host);
  const endpoint = `http://${host}:${port}`;
  const proc = new ManagedProcess({
    name: 'moto_server',
    command: component('MOTO_SERVER_BIN'),
    args: ['-H', host, '-p', String(port)],
  });
  await waitFor(async () => (await fetch(`${endpoint}/moto-api/data.json`)).ok, {
    what: `moto_server on ${endpoint}`,
    timeoutMs: 60000,
    abortIf: () => proc.assertRunning(),
  });
  return {
    endpoint,
    awsEnv: {
      AWS_ENDPOINT_URL: endpoint,
      AWS_REGION,
      AWS_DEFAULT_REGION: AWS_REGION,
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
    },
    async reset() {
      const res = await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
      if (!res.ok) throw new Error(`moto reset failed: ${res.status}`);
    },
    tail: (chars?: number) => proc.tail(chars),
    stop: () => proc.stop('SIGTERM', 5000),
  };
}

/** Sets moto's ECS task lifecycle transition (e.g. hold tasks RUNNING). */
export async function setEcsTaskTransition(endpoint: string, transition: { progression: 'manual' | 'immediate' | 'time'; times?: number; seconds?: number }): Promise<void> {
  const res = await fetch(`${endpoint}/moto-api/state-manager/set-transition`, {
    method: 'POST',
    body: JSON.stringify({ model_name: 'ecs::task', transition }),
  });
  if (!res.ok) throw new Error(`moto set-transition failed: ${res.status} ${await res.text()}`);
}
