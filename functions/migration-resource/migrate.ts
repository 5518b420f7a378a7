/**
 * Custom::SpiceDBMigration: `spicedb datastore migrate head` exactly once per
 * image version and datastore, before any task of that version serves. The
 * resource starts a one-off ECS task with the new image, waits for its exit
 * code and answers: SUCCESS on 0, FAILED with the task's log tail otherwise.
 * Never two migrations at once (SpiceDB has no migration lock), never a
 * second task for a re-delivered request, never a migration on Delete.
 *
 * Data.ServeTaskDefinitionArn passes the serving task definition through, so
 * the ECS service (which reads it) is updated only after the migration.
 */
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import type { ECSClient, Task } from '@aws-sdk/client-ecs';
import type { HandleResult } from '../shared/custom-resource';
import { logger } from '../shared/logger';
import type { LogTail } from './cloudwatch-logs';
import { decide } from './decide';
import { familyTasks, pause, startMigrationTask, startedByFor, taskIdOf, waitForOtherMigrations, waitUntilStopped, type Budget } from './migration-task';
import { evaluate } from './outcome';
import { parseProperties, type MigrationProperties } from './properties';

export interface MigrationDeps {
  ecs: ECSClient;
  logs: LogTail;
}

/** Waits, with production defaults; tests shorten them. */
export interface MigrationTuning {
  /** Between two DescribeTasks calls. */
  pollMs: number;
  /** Log reads after a failure (CloudWatch Logs may lag the container's exit by seconds). */
  logAttempts: number;
  logRetryMs: number;
  /** Log events read from the end of the stream. */
  tailLines: number;
}

export const DEFAULT_TUNING: MigrationTuning = { pollMs: 5000, logAttempts: 4, logRetryMs: 2500, tailLines: 50 };

/** The migration task ended without exit code 0; the message is the Reason CloudFormation shows. */
export class MigrationFailedError extends Error {
  readonly datastoreAhead: boolean;
  constructor(message: string, datastoreAhead: boolean) {
    super(message);
    this.name = 'MigrationFailedError';
    this.datastoreAhead = datastoreAhead;
  }
}

/** `STACK/LOGICAL_ID`: stable for the resource's life. */
export function physicalIdFor(event: CloudFormationCustomResourceEvent): string {
  if (event.RequestType !== 'Create') return event.PhysicalResourceId;
  const stackName = /:stack\/([^/]+)\//.exec(event.StackId)?.[1] ?? 'stack';
  return `${stackName}/${event.LogicalResourceId}`;
}

async function readTail(deps: MigrationDeps, props: MigrationProperties, taskArn: string, budget: Budget, tuning: MigrationTuning): Promise<string[] | undefined> {
  const stream = `${props.logStreamPrefix}/${props.containerName}/${taskIdOf(taskArn)}`;
  let messages: string[] | undefined;
  for (let attempt = 1; attempt <= tuning.logAttempts; attempt++) {
    try {
      messages = await deps.logs.lastMessages(props.logGroupName, stream, tuning.tailLines);
    } catch (err) {
      // The failure is the task's; a log read error must not hide it.
      logger.warn('could not read the migration log', { stream, error: err instanceof Error ? err.message : String(err) });
      return [`(the log stream ${stream} could not be read)`];
    }
    if (messages !== undefined && messages.length > 0) return messages;
    if (attempt < tuning.logAttempts && budget.remainingMs() > tuning.logRetryMs + 1000) await pause(tuning.logRetryMs, budget.signal);
  }
  return messages;
}

/** Runs the migration task for this request (or finds the one it already started) and waits for its outcome. */
export async function runMigration(
  deps: MigrationDeps,
  props: MigrationProperties,
  requestId: string,
  budget: Budget,
  tuning: MigrationTuning = DEFAULT_TUNING,
): Promise<Task> {
  const startedBy = startedByFor(requestId);
  const previous = (await familyTasks(deps.ecs, props, budget.signal))
    .filter((t) => t.startedBy === startedBy)
    .sort((a, b) => (b.createdAt?.getTime() ?? 0) - (a.createdAt?.getTime() ?? 0))[0];
  let taskArn: string;
  if (previous?.taskArn) {
    taskArn = previous.taskArn;
    logger.info('this request already started a migration task (re-delivered request): waiting for it', { taskArn });
  } else {
    await waitForOtherMigrations(deps.ecs, props, startedBy, budget, tuning.pollMs);
    taskArn = await startMigrationTask(deps.ecs, props, startedBy, requestId, budget.signal);
  }
  const stopped = await waitUntilStopped(deps.ecs, props, taskArn, budget, tuning.pollMs);
  const succeeded = stopped.containers?.find((c) => c.name === props.containerName)?.exitCode === 0;
  const messages = succeeded ? [] : await readTail(deps, props, taskArn, budget, tuning);
  const outcome = evaluate(stopped, props.containerName, props.image, messages);
  if (!outcome.ok) {
    logger.error('migration failed', { taskArn, image: props.image, datastoreAhead: outcome.datastoreAhead });
    throw new MigrationFailedError(outcome.message, outcome.datastoreAhead);
  }
  logger.info('migration succeeded', { taskArn, image: props.image });
  return stopped;
}

/** The custom resource's handle: decide, migrate when due, answer with Data. */
export async function handleMigration(
  event: CloudFormationCustomResourceEvent,
  budget: Budget,
  deps: MigrationDeps,
  tuning: MigrationTuning = DEFAULT_TUNING,
): Promise<HandleResult> {
  const physicalResourceId = physicalIdFor(event);
  // A Delete must succeed whatever the properties: there is nothing to undo.
  if (event.RequestType === 'Delete') {
    logger.info('no migration', { reason: 'delete: migrations are never reverted' });
    return { physicalResourceId };
  }
  const props = parseProperties(event.ResourceProperties);
  const decision = decide(event, props);
  const data: Record<string, string> = { Image: props.image };
  if (props.serveTaskDefinitionArn) data.ServeTaskDefinitionArn = props.serveTaskDefinitionArn;
  if (!decision.migrate) {
    logger.info('no migration', { reason: decision.reason });
    return { physicalResourceId, data: { ...data, Migrated: 'false' } };
  }
  logger.info('migrating', { reason: decision.reason, image: props.image });
  const task = await runMigration(deps, props, event.RequestId, budget, tuning);
  return { physicalResourceId, data: { ...data, Migrated: 'true', TaskArn: task.taskArn ?? '' } };
}
