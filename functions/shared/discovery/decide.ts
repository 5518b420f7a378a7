/**
 * The one rule both the registrar and the reconciler apply: a task belongs
 * in Cloud Map iff it is this service's, RUNNING, meant to run (desiredStatus
 * RUNNING), has an IP, and is healthy where ECS checks its health. Its
 * instance then carries exactly `instanceAttributes(task)`.
 */
import { isStarting, isStopping, serviceGroup, type TaskView } from './task';
import type { DiscoveryTarget } from './target';

/** Cloud Map attribute names. AWS_* are Cloud Map's; the rest mirror ECS's own service-discovery integration. */
export const ATTR = {
  IPV4: 'AWS_INSTANCE_IPV4',
  PORT: 'AWS_INSTANCE_PORT',
  AZ: 'AVAILABILITY_ZONE',
  CLUSTER: 'ECS_CLUSTER_NAME',
  SERVICE: 'ECS_SERVICE_NAME',
  FAMILY: 'ECS_TASK_DEFINITION_FAMILY',
  REVISION: 'ECS_TASK_DEFINITION_REVISION',
  /** ECS's `version` of the state registered; orders events, not compared. */
  VERSION: 'ECS_TASK_VERSION',
} as const;

export type Attributes = Record<string, string>;

export type Decision = { register: true; attributes: Attributes; reason: string } | { register: false; reason: string };

/** What a task's health says, given whether its task definition has health checks. */
export type HealthCheckLookup = (taskDefinitionArn: string) => Promise<boolean>;

/** True when the task is of the target's cluster and service. */
export function isTargetTask(task: Pick<TaskView, 'clusterArn' | 'group'>, target: DiscoveryTarget): boolean {
  return task.clusterArn === target.clusterArn && task.group === serviceGroup(target.serviceName);
}

/** The attributes a task's instance should carry. */
export function instanceAttributes(task: TaskView & { ip: string }, target: DiscoveryTarget): Attributes {
  const attrs: Attributes = {
    [ATTR.IPV4]: task.ip,
    [ATTR.PORT]: String(target.dispatchPort),
    [ATTR.CLUSTER]: target.clusterArn.slice(target.clusterArn.lastIndexOf('/') + 1),
    [ATTR.SERVICE]: target.serviceName,
  };
  if (task.availabilityZone) attrs[ATTR.AZ] = task.availabilityZone;
  // arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY:REVISION
  const def = /task-definition\/([^:]+):(\d+)$/.exec(task.taskDefinitionArn ?? '');
  if (def?.[1] && def[2]) {
    attrs[ATTR.FAMILY] = def[1];
    attrs[ATTR.REVISION] = def[2];
  }
  if (task.version !== undefined) attrs[ATTR.VERSION] = String(task.version);
  return attrs;
}

/** Equal apart from ECS_TASK_VERSION: a newer version of the same state needs no update. */
export function attributesMatch(current: Attributes | undefined, wanted: Attributes): boolean {
  if (!current) return false;
  const keys = new Set([...Object.keys(current), ...Object.keys(wanted)]);
  keys.delete(ATTR.VERSION);
  for (const k of keys) if (current[k] !== wanted[k]) return false;
  return true;
}

/** The ECS version recorded on an instance, if any. */
export function registeredVersion(attrs: Attributes | undefined): number | undefined {
  const raw = attrs?.[ATTR.VERSION];
  if (raw === undefined || !/^\d+$/.test(raw)) return undefined;
  return Number(raw);
}

/**
 * Decides whether `task` belongs in Cloud Map. Health: HEALTHY registers,
 * UNHEALTHY does not; UNKNOWN registers only if the task definition has no
 * essential container with a health check (looked up only in that case).
 */
export async function decide(task: TaskView, target: DiscoveryTarget, healthChecked: HealthCheckLookup): Promise<Decision> {
  if (!isTargetTask(task, target)) return { register: false, reason: 'not a task of this service' };
  if (isStopping(task)) return { register: false, reason: `task is stopping (lastStatus ${task.lastStatus}, desiredStatus ${task.desiredStatus})` };
  if (task.lastStatus !== 'RUNNING') {
    return { register: false, reason: isStarting(task) ? `task is ${task.lastStatus}, not RUNNING yet` : `task is ${task.lastStatus}` };
  }
  if (task.desiredStatus !== 'RUNNING') return { register: false, reason: `desiredStatus is ${task.desiredStatus}` };
  if (!task.ip) return { register: false, reason: 'no IP yet' };
  if (task.healthStatus === 'UNHEALTHY') return { register: false, reason: 'task is UNHEALTHY' };
  if (task.healthStatus !== 'HEALTHY') {
    if (!task.taskDefinitionArn) return { register: false, reason: `health ${task.healthStatus} and no task definition to tell whether it is checked` };
    if (await healthChecked(task.taskDefinitionArn)) return { register: false, reason: `waiting for health check (healthStatus ${task.healthStatus})` };
  }
  return { register: true, attributes: instanceAttributes({ ...task, ip: task.ip }, target), reason: `RUNNING, ${task.healthStatus === 'HEALTHY' ? 'HEALTHY' : 'no health check'}` };
}
