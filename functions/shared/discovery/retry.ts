/**
 * Backoff for the errors worth waiting out. The SDK already retries
 * throttling a few times inside each `send`; this outer loop also covers
 * Cloud Map's DuplicateRequest ("an operation on this instance is still in
 * progress"), which the SDK does not retry, and throttling that outlasts the
 * SDK's attempts.
 */
import { awsErrorName, isError } from '../errors';

/** How hard to retry; the defaults suit a Lambda with a 60 s+ timeout. */
export interface RetryOptions {
  /** Total attempts, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryOptions = { attempts: 8, baseDelayMs: 200, maxDelayMs: 5000 };

const THROTTLING = new Set(['ThrottlingException', 'Throttling', 'RequestLimitExceeded', 'TooManyRequestsException', 'RequestThrottled', 'RequestThrottledException']);

/** Errors that a later identical request may not meet: throttling and Cloud Map's DuplicateRequest. */
export function isRetryable(err: unknown): boolean {
  const name = awsErrorName(err);
  if (name === 'DuplicateRequest' || (name !== undefined && THROTTLING.has(name))) return true;
  if (!isError(err)) return false;
  const meta = err as { $retryable?: { throttling?: boolean }; $metadata?: { httpStatusCode?: number } };
  return meta.$retryable?.throttling === true || meta.$metadata?.httpStatusCode === 429;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `call`, retrying retryable errors with jittered exponential backoff; rethrows the last error. */
export async function withRetry<T>(what: string, call: () => Promise<T>, opts: RetryOptions = DEFAULT_RETRY, onRetry?: (what: string, err: unknown, attempt: number) => void): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (attempt >= opts.attempts || !isRetryable(err)) throw err;
      onRetry?.(what, err, attempt);
      const cap = Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** (attempt - 1));
      // Equal jitter: never less than half the step, so a DuplicateRequest gets time to clear.
      await sleep(cap / 2 + Math.random() * (cap / 2));
    }
  }
}
