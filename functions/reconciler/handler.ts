/**
 * Reconciler Lambda: runs on a schedule (EventBridge Scheduled Event) and on
 * demand (any payload, e.g. `{}` from `aws lambda invoke`). The payload is
 * not read: every run reconciles the whole service.
 */
import { ecsClient, serviceDiscoveryClient } from '../shared/aws-clients';
import { reconcile, type ReconcileSummary } from '../shared/discovery/reconciler';
import { targetFromEnv } from '../shared/discovery/target';
import { logger } from '../shared/logger';

const deps = { ecs: ecsClient(), serviceDiscovery: serviceDiscoveryClient(), target: targetFromEnv() };

export async function handler(event?: unknown): Promise<ReconcileSummary> {
  const trigger = isScheduled(event) ? 'schedule' : 'manual';
  logger.appendKeys({ trigger });
  try {
    return await reconcile(deps);
  } finally {
    logger.removeKeys(['trigger']);
  }
}

function isScheduled(event: unknown): boolean {
  return typeof event === 'object' && event !== null && (event as Record<string, unknown>)['detail-type'] === 'Scheduled Event';
}
