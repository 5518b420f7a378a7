/**
 * The registrar: one ECS Task State Change event in, at most one Cloud Map
 * change out (two when a stop races the registration and it is undone).
 *
 * - Another cluster's or service's task: ignored, no AWS call.
 * - Stopping (desiredStatus STOPPED, or lastStatus past RUNNING): deregister
 *   if registered. Both fields only move forward, so this is never stale; it
 *   fires on the first stop event, while the task still serves, and is a
 *   read-only no-op on the later ones.
 * - Otherwise the event can only ask for a registration. Nothing is called
 *   while the task is not RUNNING or has no IP; a duplicate or an event older
 *   than the registered ECS version (ECS_TASK_VERSION) stops at GetInstance.
 *   A change is confirmed with DescribeTasks first (the current state wins:
 *   a late RUNNING event after a stop never re-registers), and re-checked
 *   after registering, so a stop that raced the registration is undone here
 *   rather than left for the reconciler.
 */
import type { EventBridgeEvent } from 'aws-lambda';
import { z } from 'zod';
import { ValidationError } from '../errors';
import { logger } from '../logger';
import { CloudMapService } from './cloud-map';
import { attributesMatch, decide, isTargetTask, registeredVersion, ATTR, type Attributes, type Decision } from './decide';
import { Caller, tuning, type ApiCalls, type DiscoveryDeps } from './deps';
import { describeTask, hasHealthCheck } from './ecs-tasks';
import { describeIssues, isStopping, parseTask, serviceGroup, type TaskView } from './task';

export type { DiscoveryDeps, DiscoveryOptions } from './deps';

/** What the registrar did with one event. */
export interface RegistrarOutcome {
  action: 'registered' | 'deregistered' | 'unchanged' | 'ignored';
  taskId?: string;
  reason: string;
  /** AWS requests made, by operation. */
  calls?: ApiCalls;
}

// Just enough to tell whether the event is ours, before validating the rest.
const scope = z.object({ clusterArn: z.string().min(1), group: z.string().optional() });

/**
 * Handles one ECS Task State Change event. Throws on bad input or AWS failure:
 * Lambda retries the (asynchronous) invocation, then dead-letters it.
 */
export async function handleTaskStateChange(event: EventBridgeEvent<'ECS Task State Change', unknown>, deps: DiscoveryDeps): Promise<RegistrarOutcome> {
  const { target } = deps;
  const scoped = scope.safeParse(event.detail);
  if (!scoped.success) throw new ValidationError(`invalid ECS Task State Change event: ${describeIssues('detail', scoped.error)}`);
  if (!isTargetTask(scoped.data, target)) {
    const reason =
      scoped.data.clusterArn !== target.clusterArn
        ? `cluster ${scoped.data.clusterArn} is not ${target.clusterArn}`
        : `group ${scoped.data.group ?? '(none)'} is not ${serviceGroup(target.serviceName)}`;
    return outcome({ action: 'ignored', reason });
  }

  const task = parseTask(event.detail, 'detail');
  if (task.version === undefined) throw new ValidationError('invalid ECS Task State Change event: detail.version: expected an integer (ECS sets it on every event)');
  const caller = new Caller(tuning(deps.options));
  const cloudMap = new CloudMapService(deps.serviceDiscovery, caller, target.cloudMapServiceId);
  const done = (o: Omit<RegistrarOutcome, 'taskId' | 'calls'>) => outcome({ ...o, taskId: task.taskId, calls: caller.calls }, task);

  if (isStopping(task)) {
    // Read first: most stop events (DEACTIVATING ... STOPPED) find it gone.
    if ((await cloudMap.get(task.taskId)) === undefined) return done({ action: 'unchanged', reason: `${stopReason(task)}; not registered` });
    const removed = await cloudMap.deregister(task.taskId);
    return done({ action: removed ? 'deregistered' : 'unchanged', reason: removed ? stopReason(task) : `${stopReason(task)}; already gone` });
  }
  if (task.lastStatus !== 'RUNNING') return done({ action: 'unchanged', reason: `task is ${task.lastStatus}, not RUNNING yet` });
  if (!task.ip) return done({ action: 'unchanged', reason: 'no IP yet' });

  const healthChecked = (arn: string) => hasHealthCheck(deps.ecs, caller, arn);
  const current = await cloudMap.get(task.taskId);
  const known = registeredVersion(current);
  if (current && known !== undefined && task.version < known) {
    return done({ action: 'unchanged', reason: `stale event: version ${task.version} is older than the registered version ${known}` });
  }
  const fromEvent = await decide(task, target, healthChecked);
  if (fromEvent.register && attributesMatch(current, fromEvent.attributes)) return done({ action: 'unchanged', reason: 'already registered' });
  if (!fromEvent.register && current === undefined) return done({ action: 'unchanged', reason: fromEvent.reason });

  // The event asks for a change: the current state decides.
  const latest = await describeTask(deps.ecs, caller, target.clusterArn, task.taskArn);
  const decision: Decision = latest ? await decide(latest, target, healthChecked) : { register: false, reason: 'ECS no longer knows the task' };
  if (!decision.register) {
    if (current === undefined) return done({ action: 'unchanged', reason: `current state: ${decision.reason}` });
    const removed = await cloudMap.deregister(task.taskId);
    return done({ action: removed ? 'deregistered' : 'unchanged', reason: `current state: ${decision.reason}` });
  }
  if (attributesMatch(current, decision.attributes)) return done({ action: 'unchanged', reason: 'already registered' });

  const attributes = withVersion(decision.attributes, Math.max(task.version, latest?.version ?? 0));
  await cloudMap.register(task.taskId, attributes);
  // A stop that ECS applied while we registered must not leave the task in DNS.
  const after = await describeTask(deps.ecs, caller, target.clusterArn, task.taskArn);
  if (!after || isStopping(after)) {
    await cloudMap.deregister(task.taskId);
    return done({ action: 'deregistered', reason: 'task began stopping while it was being registered' });
  }
  return done({ action: 'registered', reason: decision.reason });
}

function withVersion(attrs: Attributes, version: number): Attributes {
  return { ...attrs, [ATTR.VERSION]: String(version) };
}

function stopReason(task: TaskView): string {
  const why = task.stopCode ? `, ${task.stopCode}` : '';
  return `task is stopping (lastStatus ${task.lastStatus}, desiredStatus ${task.desiredStatus}${why})`;
}

function outcome(o: RegistrarOutcome, task?: TaskView): RegistrarOutcome {
  logger.info('registrar decision', {
    action: o.action,
    taskId: o.taskId,
    reason: o.reason,
    lastStatus: task?.lastStatus,
    desiredStatus: task?.desiredStatus,
    healthStatus: task?.healthStatus,
    version: task?.version,
    calls: o.calls,
  });
  return o;
}
