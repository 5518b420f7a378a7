/**
 * The properties of Custom::SpiceDBMigration, validated into a typed value.
 * CloudFormation sends every scalar as a string; lists arrive as lists. An
 * unknown property is rejected with the list of known ones, and every
 * problem names its property.
 */
import { z } from 'zod';
import { ValidationError } from '../shared/errors';

const ECS_CLUSTER_ARN = /^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:cluster\/[A-Za-z0-9_-]{1,255}$/;
const TASK_DEFINITION_ARN = /^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:task-definition\/([A-Za-z0-9_-]{1,255}):\d+$/;

const text = (what: string) => z.string({ error: `expected ${what}` }).min(1, { error: `expected ${what}, got an empty string` });

const schema = z.strictObject({
  ServiceToken: z.string().optional(),
  ServiceTimeout: z.string().optional(),
  ClusterArn: text('an ECS cluster ARN').regex(ECS_CLUSTER_ARN, { error: 'expected an ECS cluster ARN (arn:aws:ecs:REGION:ACCOUNT:cluster/NAME)' }),
  TaskDefinitionArn: text('a task definition ARN').regex(TASK_DEFINITION_ARN, {
    error: 'expected a task definition ARN with its revision (arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY:REVISION)',
  }),
  ContainerName: text('a container name').default('migrate'),
  Subnets: z.array(text('a subnet id').regex(/^subnet-[0-9a-f]+$/, { error: 'expected a subnet id (subnet-...)' }), { error: 'expected a list of subnet ids' }).min(1, {
    error: 'expected at least one subnet id',
  }),
  SecurityGroups: z
    .array(text('a security group id').regex(/^sg-[0-9a-f]+$/, { error: 'expected a security group id (sg-...)' }), { error: 'expected a list of security group ids' })
    .min(1, { error: 'expected at least one security group id' }),
  AssignPublicIp: z.enum(['ENABLED', 'DISABLED'], { error: 'expected "ENABLED" or "DISABLED"' }).default('DISABLED'),
  PlatformVersion: text('a Fargate platform version').default('LATEST'),
  Image: text('the SpiceDB image the task definition runs'),
  DatastoreUriSecretArn: text('the ARN of the datastore URI secret'),
  LogGroupName: text('the log group of the migration container'),
  LogStreamPrefix: text('the awslogs-stream-prefix of the migration container'),
  ServeTaskDefinitionArn: z.string().optional(),
});

export const KNOWN_PROPERTIES = Object.keys(schema.shape) as readonly string[];

/** What a migration needs, typed. */
export interface MigrationProperties {
  clusterArn: string;
  taskDefinitionArn: string;
  /** The task definition's family: every migration task of this stack shares it. */
  family: string;
  containerName: string;
  subnets: string[];
  securityGroups: string[];
  assignPublicIp: 'ENABLED' | 'DISABLED';
  platformVersion: string;
  /** The SpiceDB image; a new one means a new migration. */
  image: string;
  /** Which datastore; another one means a new migration. */
  datastoreUriSecretArn: string;
  logGroupName: string;
  logStreamPrefix: string;
  /** Passed through to Data, so the service's task definition waits for the migration. */
  serveTaskDefinitionArn?: string;
}

const show = (v: unknown): string => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
};

function describeIssue(issue: z.core.$ZodIssue, raw: Record<string, unknown>): string {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => `unknown property ${show(k)}; known properties: ${KNOWN_PROPERTIES.join(', ')}`).join('; ');
  }
  const where = issue.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('');
  let value: unknown = raw;
  for (const p of issue.path) value = typeof value === 'object' && value !== null ? (value as Record<PropertyKey, unknown>)[p] : undefined;
  if (value === undefined) return `${where} is required (${issue.message})`;
  return `${where}: ${issue.message}, got ${show(value)}`;
}

/** Validates ResourceProperties; throws ValidationError naming every bad property. */
export function parseProperties(raw: unknown): MigrationProperties {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ValidationError('invalid properties: ResourceProperties must be an object');
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => describeIssue(i, raw as Record<string, unknown>));
    throw new ValidationError(`invalid properties: ${problems.join('; ')}`);
  }
  const p = parsed.data;
  const family = TASK_DEFINITION_ARN.exec(p.TaskDefinitionArn)?.[1] as string;
  return {
    clusterArn: p.ClusterArn,
    taskDefinitionArn: p.TaskDefinitionArn,
    family,
    containerName: p.ContainerName,
    subnets: p.Subnets,
    securityGroups: p.SecurityGroups,
    assignPublicIp: p.AssignPublicIp,
    platformVersion: p.PlatformVersion,
    image: p.Image,
    datastoreUriSecretArn: p.DatastoreUriSecretArn,
    logGroupName: p.LogGroupName,
    logStreamPrefix: p.LogStreamPrefix,
    ...(p.ServeTaskDefinitionArn ? { serveTaskDefinitionArn: p.ServeTaskDefinitionArn } : {}),
  };
}

/** The two properties whose change calls for a migration, read leniently from OldResourceProperties. */
export function migrationTarget(raw: unknown): { image?: string; datastoreUriSecretArn?: string } {
  if (typeof raw !== 'object' || raw === null) return {};
  const r = raw as Record<string, unknown>;
  return {
    ...(typeof r.Image === 'string' ? { image: r.Image } : {}),
    ...(typeof r.DatastoreUriSecretArn === 'string' ? { datastoreUriSecretArn: r.DatastoreUriSecretArn } : {}),
  };
}
