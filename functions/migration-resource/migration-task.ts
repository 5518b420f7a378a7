/**
 * The ECS side of a migration: the family's tasks (to find the one this
 * request started and any other migration still running), starting the
 * one-off task, and waiting for it to stop. Every wait is bounded by the
 * time the invocation has left.
 */
import { DescribeTasksCommand, ListTasksCommand, RunTaskCommand, type DesiredStatus, type ECSClient, type Task } from '@aws-sdk/client-ecs';
import { logger } from '../shared/logger';
import type { MigrationProperties } from './properties';

/** How long waiting may take: the custom resource wrapper's budget. */
export interface Budget {
  remainingMs(): number;
  signal: AbortSignal;
}

/** The migration ran out of the invocation's time. */
export class MigrationTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MigrationTimeoutError';
  }
}

/**
 * The `startedBy` tag of the task a request starts. A re-delivered request
 * (same RequestId) finds its task by it instead of starting a second one.
 */
export const startedByFor = (requestId: string): string => `cfn-${requestId}`.replace(/[^A-Za-z0-9_/-]/g, '-').slice(0, 128);

export const taskIdOf = (taskArn: string): string => taskArn.slice(taskArn.lastIndexOf('/') + 1);

/** Waits `ms`, or rejects at once when the budget's signal aborts. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Every task of the migration family in the cluster, running or recently
 * stopped (ECS lists stopped tasks for about an hour). `startedBy` cannot be
 * combined with other ListTasks filters, so tasks are listed by family and
 * told apart by their `startedBy`.
 */
export async function familyTasks(ecs: ECSClient, props: MigrationProperties, signal: AbortSignal): Promise<Task[]> {
  const arns = new Set<string>();
  for (const desiredStatus of ['RUNNING', 'STOPPED'] as DesiredStatus[]) {
    let nextToken: string | undefined;
    do {
      const page = await ecs.send(new ListTasksCommand({ cluster: props.clusterArn, family: props.family, desiredStatus, nextToken }), { abortSignal: signal });
      for (const arn of page.taskArns ?? []) arns.add(arn);
      nextToken = page.nextToken;
    } while (nextToken);
  }
  const all = [...arns];
  const tasks: Task[] = [];
  for (let i = 0; i < all.length; i += 100) {
    const out = await ecs.send(new DescribeTasksCommand({ cluster: props.clusterArn, tasks: all.slice(i, i + 100) }), { abortSignal: signal });
    tasks.push(...(out.tasks ?? []));
  }
  return tasks;
}

/** Waits until no migration task other than this request's is running: SpiceDB has no migration lock. */
export async function waitForOtherMigrations(ecs: ECSClient, props: MigrationProperties, startedBy: string, budget: Budget, pollMs: number): Promise<void> {
  for (;;) {
    const others = (await familyTasks(ecs, props, budget.signal)).filter((t) => t.startedBy !== startedBy && t.lastStatus !== 'STOPPED');
    if (others.length === 0) return;
    const ids = others.map((t) => taskIdOf(t.taskArn ?? '?'));
    if (budget.remainingMs() < pollMs + 1000) {
      throw new MigrationTimeoutError(`another migration task (${ids.join(', ')}) is still running; not starting a second one: retry when it has stopped`);
    }
    logger.info('waiting for another migration task to stop first', { tasks: ids });
    await pause(pollMs, budget.signal);
  }
}

/** Starts the one-off migration task; returns its ARN. */
export async function startMigrationTask(ecs: ECSClient, props: MigrationProperties, startedBy: string, requestId: string, signal: AbortSignal): Promise<string> {
  const out = await ecs.send(
    new RunTaskCommand({
      cluster: props.clusterArn,
      taskDefinition: props.taskDefinitionArn,
      launchType: 'FARGATE',
      platformVersion: props.platformVersion,
      count: 1,
      startedBy,
      // ECS's own idempotency for a retried call; startedBy covers a re-delivered request.
      clientToken: requestId.slice(0, 64),
      networkConfiguration: {
        awsvpcConfiguration: { subnets: props.subnets, securityGroups: props.securityGroups, assignPublicIp: props.assignPublicIp },
      },
    }),
    { abortSignal: signal },
  );
  const taskArn = out.tasks?.[0]?.taskArn;
  if (!taskArn) {
    const why = (out.failures ?? []).map((f) => [f.reason, f.detail, f.arn].filter(Boolean).join(' ')).join('; ');
    throw new Error(`ECS did not start the migration task: ${why || 'no task and no failure in the RunTask response'}`);
  }
  logger.info('migration task started', { taskArn, image: props.image });
  return taskArn;
}

/** Polls the task until it is STOPPED; logs each status it passes through. */
export async function waitUntilStopped(ecs: ECSClient, props: MigrationProperties, taskArn: string, budget: Budget, pollMs: number): Promise<Task> {
  const started = Date.now();
  let last: string | undefined;
  for (;;) {
    const out = await ecs.send(new DescribeTasksCommand({ cluster: props.clusterArn, tasks: [taskArn] }), { abortSignal: budget.signal });
    // Right after RunTask a task may not be visible yet (MISSING): keep polling.
    const task = out.tasks?.find((t) => t.taskArn === taskArn);
    const status = task?.lastStatus ?? 'NOT_VISIBLE_YET';
    if (status !== last) {
      logger.info('migration task status', { taskArn, lastStatus: status, desiredStatus: task?.desiredStatus });
      last = status;
    }
    if (task && status === 'STOPPED') return task;
    if (budget.remainingMs() < pollMs + 1000) {
      const seconds = Math.round((Date.now() - started) / 1000);
      throw new MigrationTimeoutError(
        `the migration task ${taskIdOf(taskArn)} is still ${status} after ${seconds} s and this function's time is up; ` +
          `it keeps running: see its log stream ${props.logStreamPrefix}/${props.containerName}/${taskIdOf(taskArn)} in ${props.logGroupName}, then deploy again`,
      );
    }
    await pause(pollMs, budget.signal);
  }
}
