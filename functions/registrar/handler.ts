/**
 * Registrar Lambda: EventBridge rule on `aws.ecs` / `ECS Task State Change`.
 * Thin: checks the envelope, hands the event to the domain function, returns
 * its outcome. Errors propagate, so EventBridge retries and then dead-letters.
 */
import type { EventBridgeEvent } from 'aws-lambda';
import { ecsClient, serviceDiscoveryClient } from '../shared/aws-clients';
import { handleTaskStateChange, type RegistrarOutcome } from '../shared/discovery/registrar';
import { targetFromEnv } from '../shared/discovery/target';
import { ValidationError } from '../shared/errors';
import { logger } from '../shared/logger';

const deps = { ecs: ecsClient(), serviceDiscovery: serviceDiscoveryClient(), target: targetFromEnv() };

export async function handler(event: EventBridgeEvent<string, unknown>): Promise<RegistrarOutcome> {
  if (event.source !== 'aws.ecs' || event['detail-type'] !== 'ECS Task State Change') {
    throw new ValidationError(`expected source "aws.ecs" and detail-type "ECS Task State Change", got "${String(event.source)}" / "${String(event['detail-type'])}"`);
  }
  logger.appendKeys({ eventId: event.id });
  try {
    return await handleTaskStateChange(event as EventBridgeEvent<'ECS Task State Change', unknown>, deps);
  } finally {
    logger.removeKeys(['eventId']);
  }
}
