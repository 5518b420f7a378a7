/**
 * ECS reads: the service's tasks (ListTasks + DescribeTasks in batches of
 * 100) and whether a task definition has container health checks (cached:
 * task definition revisions are immutable).
 */
import { DescribeTaskDefinitionCommand, DescribeTasksCommand, ListTasksCommand, type ECSClient } from '@aws-sdk/client-ecs';
import type { Caller } from './deps';
import { parseTask, type TaskView } from './task';
import type { DiscoveryTarget } from './target';

/** DescribeTasks accepts at most 100 tasks per call. */
export const DESCRIBE_TASKS_BATCH = 100;

export interface DescribedTasks {
  tasks: TaskView[];
  /** ARNs ECS no longer knows (stopped more than about an hour ago). */
  missing: string[];
}

/** DescribeTasks for any number of ARNs, in batches of 100. */
export async function describeTasks(ecs: ECSClient, caller: Caller, clusterArn: string, taskArns: readonly string[]): Promise<DescribedTasks> {
  const out: DescribedTasks = { tasks: [], missing: [] };
  for (let i = 0; i < taskArns.length; i += DESCRIBE_TASKS_BATCH) {
    const batch = taskArns.slice(i, i + DESCRIBE_TASKS_BATCH);
    const res = await caller.call('DescribeTasks', () => ecs.send(new DescribeTasksCommand({ cluster: clusterArn, tasks: batch })));
    for (const task of res.tasks ?? []) out.tasks.push(parseTask(task, 'DescribeTasks task'));
    for (const failure of res.failures ?? []) {
      if (failure.reason !== 'MISSING') throw new Error(`DescribeTasks failed for ${failure.arn ?? '?'}: ${failure.reason ?? '?'} ${failure.detail ?? ''}`.trim());
      if (failure.arn) out.missing.push(failure.arn);
    }
  }
  return out;
}

/** The current state of one task, or undefined when ECS no longer knows it. */
export async function describeTask(ecs: ECSClient, caller: Caller, clusterArn: string, taskArn: string): Promise<TaskView | undefined> {
  const { tasks } = await describeTasks(ecs, caller, clusterArn, [taskArn]);
  // Match on the ARN: moto matches task ids by substring.
  return tasks.find((t) => t.taskArn === taskArn);
}

/** ARNs of the service's tasks whose desiredStatus is RUNNING, all pages. */
export async function listServiceTaskArns(ecs: ECSClient, caller: Caller, target: DiscoveryTarget): Promise<string[]> {
  const arns: string[] = [];
  let nextToken: string | undefined;
  do {
    const token = nextToken;
    const res = await caller.call('ListTasks', () =>
      ecs.send(new ListTasksCommand({ cluster: target.clusterArn, serviceName: target.serviceName, desiredStatus: 'RUNNING', maxResults: 100, nextToken: token })),
    );
    arns.push(...(res.taskArns ?? []));
    nextToken = res.nextToken;
  } while (nextToken);
  return arns;
}

const healthCheckCache = new WeakMap<ECSClient, Map<string, boolean>>();

/**
 * True when an essential container of the task definition defines a health
 * check, so that ECS's task healthStatus UNKNOWN means "not yet healthy"
 * rather than "not checked". Cached per client and ARN.
 */
export async function hasHealthCheck(ecs: ECSClient, caller: Caller, taskDefinitionArn: string): Promise<boolean> {
  let cache = healthCheckCache.get(ecs);
  if (!cache) healthCheckCache.set(ecs, (cache = new Map()));
  const known = cache.get(taskDefinitionArn);
  if (known !== undefined) return known;
  const res = await caller.call('DescribeTaskDefinition', () => ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: taskDefinitionArn })));
  const checked = (res.taskDefinition?.containerDefinitions ?? []).some((c) => c.essential !== false && c.healthCheck?.command !== undefined && c.healthCheck.command.length > 0);
  cache.set(taskDefinitionArn, checked);
  return checked;
}
