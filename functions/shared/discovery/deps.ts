/**
 * What discovery code is handed: the two AWS clients, the target, and
 * optional tuning (tests shorten the waits). `Caller` counts every AWS
 * request an invocation makes, by operation name, for the logs and the
 * returned summary.
 */
import type { ECSClient } from '@aws-sdk/client-ecs';
import type { ServiceDiscoveryClient } from '@aws-sdk/client-servicediscovery';
import { logger } from '../logger';
import { awsErrorName } from '../errors';
import { DEFAULT_RETRY, withRetry, type RetryOptions } from './retry';
import type { DiscoveryTarget } from './target';

/** Tuning with production defaults; tests shorten the waits. */
export interface DiscoveryOptions {
  /** Backoff for throttling and DuplicateRequest. */
  retry?: RetryOptions;
  /** How long to wait for a Cloud Map operation to leave SUBMITTED/PENDING (default 45 s). */
  operationTimeoutMs?: number;
  /** First poll interval of GetOperation, doubled up to 2 s (default 250 ms). */
  operationPollMs?: number;
  /** Cloud Map mutations the reconciler runs at once (default 5; Cloud Map is rate-limited). */
  concurrency?: number;
}

/** The clients and target the registrar and reconciler work with. */
export interface DiscoveryDeps {
  ecs: ECSClient;
  serviceDiscovery: ServiceDiscoveryClient;
  target: DiscoveryTarget;
  options?: DiscoveryOptions;
}

/** Resolved options. */
export interface Tuning {
  retry: RetryOptions;
  operationTimeoutMs: number;
  operationPollMs: number;
  concurrency: number;
}

export function tuning(options: DiscoveryOptions = {}): Tuning {
  return {
    retry: options.retry ?? DEFAULT_RETRY,
    operationTimeoutMs: options.operationTimeoutMs ?? 45000,
    operationPollMs: options.operationPollMs ?? 250,
    concurrency: options.concurrency ?? 5,
  };
}

/** AWS requests made, by operation name (each attempt counts). */
export type ApiCalls = Record<string, number>;

/** Sends through retry and counts each attempt. */
export class Caller {
  readonly calls: ApiCalls = {};
  constructor(readonly tuning: Tuning) {}

  call<T>(operation: string, send: () => Promise<T>): Promise<T> {
    return withRetry(
      operation,
      () => {
        this.calls[operation] = (this.calls[operation] ?? 0) + 1;
        return send();
      },
      this.tuning.retry,
      (what, err, attempt) => logger.warn('retrying AWS call', { operation: what, error: awsErrorName(err), attempt }),
    );
  }
}
