/**
 * One ECS task as the registrar and reconciler see it, read from either
 * source: the `detail` of an ECS Task State Change event or a task from
 * DescribeTasks. The two differ in small ways (attachment type `eni` vs
 * `ElasticNetworkInterface`, ISO strings vs Date/epoch timestamps, DescribeTasks
 * in moto carries no `version`), so both are parsed by one lenient schema that
 * ignores extra fields (ECS adds fields over time) and names the field that
 * does not fit.
 */
import { isIPv4 } from 'node:net';
import { z } from 'zod';
import { ValidationError } from '../errors';

const keyValue = z.object({ name: z.string().optional(), value: z.string().optional() });
const attachment = z.object({ type: z.string().optional(), status: z.string().optional(), details: z.array(keyValue).optional() });
const container = z.object({
  name: z.string().optional(),
  lastStatus: z.string().optional(),
  healthStatus: z.string().optional(),
  networkInterfaces: z.array(z.object({ privateIpv4Address: z.string().optional() })).optional(),
});

// ECS task ids: 32 hex digits (current ARN format) or a UUID (old format).
const TASK_ARN = /^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:task\/(?:[A-Za-z0-9_-]{1,255}\/)?([0-9a-f]{32}|[0-9a-f-]{36})$/;

/** The fields both sources share; everything else is ignored. */
export const taskSchema = z.object({
  taskArn: z.string().regex(TASK_ARN, 'expected an ECS task ARN (arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/TASK_ID)'),
  clusterArn: z.string().min(1),
  group: z.string().optional(),
  // Known values: PROVISIONING, PENDING, ACTIVATING, RUNNING, DEACTIVATING,
  // STOPPING, DEPROVISIONING, STOPPED, DELETED. Kept open so that a status
  // ECS adds later is handled (never registered) rather than dead-lettered.
  lastStatus: z.string().min(1),
  desiredStatus: z.string().min(1),
  healthStatus: z.string().optional(),
  version: z.number().int().nonnegative().optional(),
  availabilityZone: z.string().optional(),
  taskDefinitionArn: z.string().optional(),
  stopCode: z.string().optional(),
  stoppedReason: z.string().optional(),
  attachments: z.array(attachment).optional(),
  containers: z.array(container).optional(),
});

type RawTask = z.infer<typeof taskSchema>;

/** A task reduced to what discovery decides on. */
export interface TaskView {
  taskArn: string;
  /** The last ARN segment: the Cloud Map instance id. */
  taskId: string;
  clusterArn: string;
  group?: string;
  lastStatus: string;
  desiredStatus: string;
  /** HEALTHY, UNHEALTHY or UNKNOWN (also when absent). */
  healthStatus: string;
  /** ECS's per-task change counter; absent in moto's DescribeTasks. */
  version?: number;
  /** Private IPv4 of the task's ENI, once attached. */
  ip?: string;
  availabilityZone?: string;
  taskDefinitionArn?: string;
  stopCode?: string;
}

/** Where a task came from, for error messages. */
export type TaskSource = 'detail' | 'DescribeTasks task';

/** `service:NAME`, the group ECS gives a service's tasks. */
export const serviceGroup = (serviceName: string): string => `service:${serviceName}`;

/** The task id (last ARN segment). */
export function taskIdFromArn(taskArn: string): string {
  return taskArn.slice(taskArn.lastIndexOf('/') + 1);
}

/** Formats zod issues as `detail.field: message; ...`. */
export function describeIssues(prefix: string, error: z.ZodError): string {
  return error.issues.map((i) => `${[prefix, ...i.path.map(String)].join('.')}: ${i.message}`).join('; ');
}

// ENI attachment type: `eni` in events, `ElasticNetworkInterface` in DescribeTasks.
const ENI_TYPES = new Set(['eni', 'elasticnetworkinterface']);

function privateIp(raw: RawTask, source: TaskSource): string | undefined {
  const candidates: [string, string][] = [];
  raw.attachments?.forEach((a, i) => {
    if (!ENI_TYPES.has((a.type ?? '').toLowerCase())) return;
    a.details?.forEach((d, j) => {
      if (d.name === 'privateIPv4Address' && d.value) candidates.push([`attachments.${i}.details.${j}.value`, d.value]);
    });
  });
  raw.containers?.forEach((c, i) =>
    c.networkInterfaces?.forEach((n, j) => {
      if (n.privateIpv4Address) candidates.push([`containers.${i}.networkInterfaces.${j}.privateIpv4Address`, n.privateIpv4Address]);
    }),
  );
  const first = candidates[0];
  if (first === undefined) return undefined;
  const [field, ip] = first;
  if (!isIPv4(ip)) throw new ValidationError(`${source}.${field}: expected an IPv4 address, got "${ip}"`);
  return ip;
}

/** Validates one task (event detail or DescribeTasks task) and reduces it; throws ValidationError naming the field. */
export function parseTask(input: unknown, source: TaskSource): TaskView {
  const parsed = taskSchema.safeParse(input);
  if (!parsed.success) throw new ValidationError(`invalid ECS task: ${describeIssues(source, parsed.error)}`);
  const raw = parsed.data;
  return {
    taskArn: raw.taskArn,
    taskId: taskIdFromArn(raw.taskArn),
    clusterArn: raw.clusterArn,
    group: raw.group,
    lastStatus: raw.lastStatus,
    desiredStatus: raw.desiredStatus,
    healthStatus: raw.healthStatus ?? 'UNKNOWN',
    version: raw.version,
    ip: privateIp(raw, source),
    availabilityZone: raw.availabilityZone,
    taskDefinitionArn: raw.taskDefinitionArn,
    stopCode: raw.stopCode,
  };
}

const BEFORE_RUNNING = new Set(['PROVISIONING', 'PENDING', 'ACTIVATING']);
const AFTER_RUNNING = new Set(['DEACTIVATING', 'STOPPING', 'DEPROVISIONING', 'STOPPED', 'DELETED']);

/**
 * True once the task is on its way out: desiredStatus STOPPED, or lastStatus
 * past RUNNING. Both only move forward, so acting on them can never be stale.
 */
export function isStopping(task: TaskView): boolean {
  return task.desiredStatus === 'STOPPED' || AFTER_RUNNING.has(task.lastStatus);
}

/** True while the task has not reached RUNNING yet. */
export function isStarting(task: TaskView): boolean {
  return BEFORE_RUNNING.has(task.lastStatus);
}
