/** Waiting for SERVING with backoff, against a scripted health checker (the real one: test/integration). */
import { credentials } from '@grpc/grpc-js';
import type { HealthChecker, ServingStatus } from '../../../functions/shared/grpc-health';
import { NotServingError, waitUntilServing } from '../../../functions/shared/spicedb-client';

/** A checker answering the script in turn (an Error entry rejects), then the last entry forever. */
function scripted(...script: (ServingStatus | Error)[]): HealthChecker & { checks: number } {
  const c = {
    checks: 0,
    check: () => {
      const next = script[Math.min(c.checks++, script.length - 1)] as ServingStatus | Error;
      return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
    },
    close: () => undefined,
  };
  return c;
}

const creds = credentials.createInsecure();

describe('waitUntilServing', () => {
  it('keeps checking through errors and NOT_SERVING until SERVING, and says how many checks it took', async () => {
    const checker = scripted(new Error('14 UNAVAILABLE: connect ECONNREFUSED'), 'NOT_SERVING', 'SERVING');
    await expect(waitUntilServing('spicedb:50051', creds, Date.now() + 10_000, { checker, initialDelayMs: 1 })).resolves.toBe(3);
  });

  it('gives up at the deadline, naming the endpoint and the last answer', async () => {
    const checker = scripted('NOT_SERVING');
    const err = await waitUntilServing('spicedb:50051', creds, Date.now() + 300, { checker, initialDelayMs: 10, maxDelayMs: 50 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotServingError);
    expect((err as Error).message).toMatch(/^SpiceDB at spicedb:50051 did not report SERVING within 0\.\d s \(\d+ checks; last: NOT_SERVING\)$/);
    expect(checker.checks).toBeGreaterThan(2);
  });

  it('backs off: far fewer checks than a tight loop would make', async () => {
    const checker = scripted('NOT_SERVING');
    await waitUntilServing('spicedb:50051', creds, Date.now() + 1000, { checker, initialDelayMs: 50, maxDelayMs: 400 }).catch(() => undefined);
    // 50 + 100 + 200 + 400 + 400 ... ms (with jitter): at most about 6 checks in a second.
    expect(checker.checks).toBeLessThanOrEqual(8);
  });

  it('stops when the signal is aborted', async () => {
    const checker = scripted('NOT_SERVING');
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await expect(waitUntilServing('spicedb:50051', creds, Date.now() + 60_000, { checker, signal: controller.signal, initialDelayMs: 10_000 })).rejects.toThrow(
      /^stopped waiting for SpiceDB at spicedb:50051 to report SERVING \(last: NOT_SERVING\)$/,
    );
  });
});
