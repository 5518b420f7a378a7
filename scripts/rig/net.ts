/** Loopback addresses, free ports and bounded waiting. */
import { createServer } from 'node:net';
import { randomInt } from 'node:crypto';

/**
 * A random loopback address other than 127.0.0.1, standing in for a task's
 * private IP. Distinct suites get distinct addresses, so parallel tests do
 * not collide on ports.
 */
export function loopbackHost(): string {
  return `127.${randomInt(1, 255)}.${randomInt(1, 255)}.${randomInt(2, 255)}`;
}

/** A port that is free on `host` right now (the OS picks it). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('no port assigned'));
        return;
      }
      srv.close(() => resolve(addr.port));
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface WaitOptions {
  /** What is awaited, for the error message. */
  what: string;
  timeoutMs: number;
  intervalMs?: number;
  /** Called between attempts; throw from it to stop waiting early (e.g. the process died). */
  abortIf?: () => void;
}

/** Polls `probe` until it returns a value other than undefined/false, or the time is up. */
export async function waitFor<T>(probe: () => Promise<T | undefined | false>, opts: WaitOptions): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let interval = opts.intervalMs ?? 50;
  let lastError: unknown;
  for (;;) {
    opts.abortIf?.();
    try {
      const result = await probe();
      if (result !== undefined && result !== false) return result;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const cause = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what}${cause}`);
    }
    await sleep(interval);
    interval = Math.min(interval * 2, 500);
  }
}
