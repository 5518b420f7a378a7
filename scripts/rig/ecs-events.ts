/**
 * ECS Task State Change events in the real shape, for a Fargate service
 * task walking through its lifecycle, plus the matching DescribeTasks view.
 * Built from the examples in AWS's "Amazon ECS task state change events"
 * page: `detail` is the task (attachment type `eni` with
 * `privateIPv4Address` once the ENI is attached, containers with
 * `networkInterfaces[].privateIpv4Address`), ISO timestamps, and a
 * `version` that grows by one per state change. DescribeTasks spells the
 * attachment `ElasticNetworkInterface` and returns Date timestamps.
 *
 * Two levels:
 * - `EcsTaskEventStream`: one event per `next(state)` for an existing task
 *   (the local ECS of scripts/rig/local-ecs.ts drives it with real time).
 * - `EcsTask`: named lifecycle steps on a fake clock (tests), in ECS's order:
 *   PROVISIONING, PENDING, RUNNING (UNKNOWN), HEALTHY; on scale-in
 *   desiredStatus STOPPED while lastStatus is RUNNING, then DEACTIVATING,
 *   STOPPING, DEPROVISIONING, STOPPED.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Task } from '@aws-sdk/client-ecs';
import type { EventBridgeEvent } from 'aws-lambda';

export type EcsTaskStateChangeEvent = EventBridgeEvent<'ECS Task State Change', EcsTaskDetail>;

/** Task statuses (lastStatus, and the RUNNING/STOPPED/PENDING subset for desiredStatus). */
export type EcsTaskStatus = 'PROVISIONING' | 'PENDING' | 'ACTIVATING' | 'RUNNING' | 'DEACTIVATING' | 'STOPPING' | 'DEPROVISIONING' | 'STOPPED' | 'DELETED';
export type EcsHealthStatus = 'HEALTHY' | 'UNHEALTHY' | 'UNKNOWN';

/** The event `detail` (the fields ECS sends for a Fargate task; ECS may add more). */
export interface EcsTaskDetail {
  attachments: { id: string; type: string; status: string; details: { name: string; value: string }[] }[];
  attributes: { name: string; value: string }[];
  availabilityZone: string;
  capacityProviderName: string;
  clusterArn: string;
  connectivity: string;
  connectivityAt?: string;
  containers: EcsContainerDetail[];
  cpu: string;
  createdAt: string;
  desiredStatus: string;
  enableExecuteCommand: boolean;
  ephemeralStorage: { sizeInGiB: number };
  group: string;
  healthStatus: string;
  launchType: string;
  lastStatus: string;
  memory: string;
  overrides: { containerOverrides: { name: string }[] };
  platformVersion: string;
  pullStartedAt?: string;
  pullStoppedAt?: string;
  startedAt?: string;
  startedBy: string;
  stopCode?: string;
  stoppedAt?: string;
  stoppedReason?: string;
  stoppingAt?: string;
  executionStoppedAt?: string;
  taskArn: string;
  taskDefinitionArn: string;
  updatedAt: string;
  version: number;
}

export interface EcsContainerDetail {
  containerArn: string;
  lastStatus: string;
  name: string;
  image: string;
  runtimeId?: string;
  taskArn: string;
  networkInterfaces: { attachmentId: string; privateIpv4Address: string }[];
  cpu: string;
  exitCode?: number;
  healthStatus: string;
}

/** A random ECS task id (32 hex digits). */
export const randomTaskId = (): string => randomBytes(16).toString('hex');

/** A service deployment's `startedBy` (`ecs-svc/` and 19 digits). */
export const serviceStartedBy = (): string => `ecs-svc/${Array.from(randomBytes(19), (b) => String(b % 10)).join('')}`;

/** The task an event stream describes. */
export interface EcsTaskIdentity {
  clusterArn: string;
  taskArn: string;
  taskDefinitionArn: string;
  /** `service:NAME` for a service task. */
  group: string;
  startedBy?: string;
  availabilityZone?: string;
  /** The first (essential, health-checked) container. */
  containerName?: string;
  image?: string;
  /** Further containers (e.g. the drain sidecar). */
  sidecars?: { name: string; image: string }[];
  subnetId?: string;
  createdAt?: Date;
  /** Event timestamps (default: the real clock). */
  clock?: () => Date;
}

/** The state carried by the next event. */
export interface EcsTaskState {
  lastStatus: EcsTaskStatus;
  desiredStatus: EcsTaskStatus;
  /** The ENI's private IP; absent until the ENI is attached. */
  ip?: string;
  /** Task health; default UNKNOWN. */
  healthStatus?: EcsHealthStatus;
  stopCode?: string;
  stoppedReason?: string;
  /** Exit code of the containers once they stopped. */
  exitCode?: number;
}

const arnParts = (arn: string): { partition: string; region: string; account: string } => {
  const m = /^arn:(aws[a-z-]*):ecs:([a-z0-9-]+):(\d{12}):/.exec(arn);
  if (!m) throw new Error(`not an ECS ARN: ${arn}`);
  return { partition: m[1] as string, region: m[2] as string, account: m[3] as string };
};

const CONTAINER_PENDING = new Set(['PROVISIONING', 'PENDING', 'ACTIVATING']);
const CONTAINER_STOPPED = new Set(['STOPPING', 'DEPROVISIONING', 'STOPPED', 'DELETED']);

/** The event stream of one task: each `next` is the next state change (version + 1). */
export class EcsTaskEventStream {
  /** ECS's change counter; 0 before the first event. */
  version = 0;
  readonly taskId: string;
  private readonly region: string;
  private readonly account: string;
  private readonly eniAttachmentId = randomUUID();
  private readonly eniId = `eni-${randomBytes(9).toString('hex').slice(0, 17)}`;
  private readonly containers: { name: string; image: string; id: string }[];
  private readonly clock: () => Date;
  private readonly createdAt: string;
  private readonly times: Partial<Record<'connectivityAt' | 'pullStartedAt' | 'pullStoppedAt' | 'startedAt' | 'stoppingAt' | 'executionStoppedAt' | 'stoppedAt', string>> = {};
  private state: EcsTaskState = { lastStatus: 'PROVISIONING', desiredStatus: 'RUNNING' };
  private ip?: string;
  private updatedAt: string;

  constructor(private readonly id: EcsTaskIdentity) {
    const { region, account } = arnParts(id.taskArn);
    this.region = region;
    this.account = account;
    this.taskId = id.taskArn.slice(id.taskArn.lastIndexOf('/') + 1);
    this.clock = id.clock ?? (() => new Date());
    this.createdAt = this.updatedAt = (id.createdAt ?? this.clock()).toISOString();
    this.containers = [{ name: id.containerName ?? 'spicedb', image: id.image ?? 'authzed/spicedb:v1.56.2' }, ...(id.sidecars ?? [])].map((c) => ({ ...c, id: randomUUID() }));
  }

  /** Applies a state change and returns its event. */
  next(state: EcsTaskState): EcsTaskStateChangeEvent {
    const now = this.clock().toISOString();
    const { lastStatus, desiredStatus } = state;
    this.ip = state.ip ?? this.ip;
    if (this.ip && lastStatus !== 'PROVISIONING') this.times.connectivityAt ??= now;
    if (lastStatus !== 'PROVISIONING') this.times.pullStartedAt ??= now;
    if (!CONTAINER_PENDING.has(lastStatus)) {
      this.times.pullStoppedAt ??= now;
      this.times.startedAt ??= now;
    }
    if (desiredStatus === 'STOPPED') this.times.stoppingAt ??= now;
    if (CONTAINER_STOPPED.has(lastStatus)) this.times.executionStoppedAt ??= now;
    if (lastStatus === 'STOPPED') this.times.stoppedAt ??= now;
    this.state = { ...state, healthStatus: state.healthStatus ?? 'UNKNOWN' };
    this.version += 1;
    this.updatedAt = now;
    return this.event();
  }

  /** The event of the current state again: a duplicate delivery (same version, new event id). */
  event(): EcsTaskStateChangeEvent {
    return {
      version: '0',
      id: randomUUID(),
      'detail-type': 'ECS Task State Change',
      source: 'aws.ecs',
      account: this.account,
      time: this.updatedAt.replace(/\.\d{3}Z$/, 'Z'),
      region: this.region,
      resources: [this.id.taskArn],
      detail: this.detail(),
    };
  }

  private eniStatus(): string {
    if (!this.ip) return 'PRECREATED';
    return this.state.lastStatus === 'STOPPED' || this.state.lastStatus === 'DELETED' ? 'DELETED' : 'ATTACHED';
  }

  /** The current `detail`. */
  detail(): EcsTaskDetail {
    const { lastStatus, desiredStatus, stopCode, stoppedReason, exitCode } = this.state;
    const healthStatus = this.state.healthStatus ?? 'UNKNOWN';
    const subnet = { name: 'subnetId', value: this.id.subnetId ?? 'subnet-0a1b2c3d4e5f60718' };
    const eniDetails = this.ip
      ? [
          subnet,
          { name: 'networkInterfaceId', value: this.eniId },
          { name: 'macAddress', value: '0a:1b:2c:3d:4e:5f' },
          { name: 'privateDnsName', value: `ip-${this.ip.replace(/\./g, '-')}.${this.region}.compute.internal` },
          { name: 'privateIPv4Address', value: this.ip },
        ]
      : [subnet];
    const containerStatus = CONTAINER_PENDING.has(lastStatus) ? 'PENDING' : CONTAINER_STOPPED.has(lastStatus) ? 'STOPPED' : 'RUNNING';
    const t = this.times;
    return {
      attachments: [{ id: this.eniAttachmentId, type: 'eni', status: this.eniStatus(), details: eniDetails }],
      attributes: [{ name: 'ecs.cpu-architecture', value: 'x86_64' }],
      availabilityZone: this.id.availabilityZone ?? `${this.region}a`,
      capacityProviderName: 'FARGATE',
      clusterArn: this.id.clusterArn,
      connectivity: 'CONNECTED',
      ...(t.connectivityAt ? { connectivityAt: t.connectivityAt } : {}),
      containers: this.containers.map((c, i) => ({
        containerArn: `arn:aws:ecs:${this.region}:${this.account}:container/${this.taskId}/${c.id}`,
        lastStatus: containerStatus,
        name: c.name,
        image: c.image,
        ...(containerStatus !== 'PENDING' ? { runtimeId: `${this.taskId}-${i}` } : {}),
        taskArn: this.id.taskArn,
        networkInterfaces: this.ip ? [{ attachmentId: this.eniAttachmentId, privateIpv4Address: this.ip }] : [],
        cpu: '0',
        ...(containerStatus === 'STOPPED' ? { exitCode: exitCode ?? 0 } : {}),
        healthStatus: i === 0 ? healthStatus : 'UNKNOWN',
      })),
      cpu: '1024',
      createdAt: this.createdAt,
      desiredStatus,
      enableExecuteCommand: false,
      ephemeralStorage: { sizeInGiB: 20 },
      group: this.id.group,
      healthStatus,
      launchType: 'FARGATE',
      lastStatus,
      memory: '2048',
      overrides: { containerOverrides: this.containers.map((c) => ({ name: c.name })) },
      platformVersion: '1.4.0',
      ...(t.pullStartedAt ? { pullStartedAt: t.pullStartedAt } : {}),
      ...(t.pullStoppedAt ? { pullStoppedAt: t.pullStoppedAt } : {}),
      ...(t.startedAt ? { startedAt: t.startedAt } : {}),
      startedBy: this.id.startedBy ?? 'ecs-svc/5169280574093855189',
      ...(stopCode ? { stopCode } : {}),
      ...(stoppedReason ? { stoppedReason } : {}),
      ...(t.stoppingAt ? { stoppingAt: t.stoppingAt } : {}),
      ...(t.executionStoppedAt ? { executionStoppedAt: t.executionStoppedAt } : {}),
      ...(t.stoppedAt ? { stoppedAt: t.stoppedAt } : {}),
      taskArn: this.id.taskArn,
      taskDefinitionArn: this.id.taskDefinitionArn,
      updatedAt: this.updatedAt,
      version: this.version,
    };
  }

  /** The task as DescribeTasks returns it now: `ElasticNetworkInterface`, Date timestamps, same version. */
  describe(): Task {
    const d = this.detail();
    const date = (iso: string | undefined) => (iso === undefined ? undefined : new Date(iso));
    return {
      attachments: d.attachments.map((a) => ({ ...a, type: 'ElasticNetworkInterface' })),
      attributes: d.attributes,
      availabilityZone: d.availabilityZone,
      capacityProviderName: d.capacityProviderName,
      clusterArn: d.clusterArn,
      connectivity: 'CONNECTED',
      connectivityAt: date(d.connectivityAt),
      containers: d.containers.map((c) => ({ ...c, healthStatus: c.healthStatus as EcsHealthStatus })),
      cpu: d.cpu,
      createdAt: date(d.createdAt),
      desiredStatus: d.desiredStatus,
      enableExecuteCommand: false,
      ephemeralStorage: d.ephemeralStorage,
      group: d.group,
      healthStatus: d.healthStatus as EcsHealthStatus,
      lastStatus: d.lastStatus,
      launchType: 'FARGATE',
      memory: d.memory,
      overrides: d.overrides,
      platformVersion: d.platformVersion,
      pullStartedAt: date(d.pullStartedAt),
      pullStoppedAt: date(d.pullStoppedAt),
      startedAt: date(d.startedAt),
      startedBy: d.startedBy,
      stopCode: d.stopCode as Task['stopCode'],
      stoppedReason: d.stoppedReason,
      stoppingAt: date(d.stoppingAt),
      executionStoppedAt: date(d.executionStoppedAt),
      stoppedAt: date(d.stoppedAt),
      taskArn: d.taskArn,
      taskDefinitionArn: d.taskDefinitionArn,
      version: d.version,
    };
  }
}

/** A service task to build events for (tests). */
export interface TaskSpec {
  /** arn:aws:ecs:REGION:ACCOUNT:cluster/NAME (region and account are taken from it). */
  clusterArn: string;
  serviceName: string;
  /** The private IP of the task's ENI. */
  ip: string;
  /** 32 hex digits; random when absent. */
  taskId?: string;
  availabilityZone?: string;
  /** Default: arn:aws:ecs:REGION:ACCOUNT:task-definition/spicedb:1 */
  taskDefinitionArn?: string;
  /** Whether the SpiceDB container has a health check (then health goes UNKNOWN, then HEALTHY). Default true. */
  healthChecked?: boolean;
  /** Event timestamps start here (default now) and advance 2 s per step. */
  startAt?: Date;
}

/** Named lifecycle steps, in ECS's order. */
export const START_STEPS = ['PROVISIONING', 'PENDING', 'RUNNING', 'HEALTHY'] as const;
export const STOP_STEPS = ['STOP_REQUESTED', 'DEACTIVATING', 'STOPPING', 'DEPROVISIONING', 'STOPPED'] as const;
export type LifecycleStep = (typeof START_STEPS)[number] | (typeof STOP_STEPS)[number] | 'ACTIVATING' | 'UNHEALTHY';

export interface StopCause {
  stopCode: string;
  stoppedReason: string;
}

/** How the service scheduler words a scale-in stop. */
export const SCALE_IN: StopCause = { stopCode: 'ServiceSchedulerInitiated', stoppedReason: 'Scaling activity initiated by (deployment ecs-svc/5169280574093855189)' };
/** An essential container exited (the first stop event comes after the exit). */
export const ESSENTIAL_EXITED: StopCause = { stopCode: 'EssentialContainerExited', stoppedReason: 'Essential container in task exited' };

/** One task on a fake clock: each `step` changes its state and returns the event ECS would send. */
export class EcsTask {
  readonly taskArn: string;
  readonly taskId: string;
  readonly ip: string;
  readonly clusterArn: string;
  readonly group: string;
  readonly taskDefinitionArn: string;
  readonly healthChecked: boolean;
  readonly stream: EcsTaskEventStream;
  private clock: number;
  private state: EcsTaskState = { lastStatus: 'PROVISIONING', desiredStatus: 'RUNNING', healthStatus: 'UNKNOWN' };

  constructor(spec: TaskSpec) {
    const m = /^arn:(aws[a-z-]*):ecs:([a-z0-9-]+):(\d{12}):cluster\/(.+)$/.exec(spec.clusterArn);
    if (!m) throw new Error(`not an ECS cluster ARN: ${spec.clusterArn}`);
    const [, partition, region, account, cluster] = m;
    this.taskId = spec.taskId ?? randomTaskId();
    this.taskArn = `arn:${partition}:ecs:${region}:${account}:task/${cluster}/${this.taskId}`;
    this.clusterArn = spec.clusterArn;
    this.group = `service:${spec.serviceName}`;
    this.ip = spec.ip;
    this.taskDefinitionArn = spec.taskDefinitionArn ?? `arn:${partition}:ecs:${region}:${account}:task-definition/spicedb:1`;
    this.healthChecked = spec.healthChecked ?? true;
    this.clock = (spec.startAt ?? new Date()).getTime();
    this.stream = new EcsTaskEventStream({
      clusterArn: spec.clusterArn,
      taskArn: this.taskArn,
      taskDefinitionArn: this.taskDefinitionArn,
      group: this.group,
      availabilityZone: spec.availabilityZone,
      sidecars: [{ name: 'drain', image: 'public.ecr.aws/docker/library/busybox:stable' }],
      createdAt: new Date(this.clock),
      clock: () => new Date(this.clock),
    });
  }

  /** ECS's change counter of the last event. */
  get version(): number {
    return this.stream.version;
  }

  /** Current lastStatus / desiredStatus / healthStatus. */
  get status(): { lastStatus: string; desiredStatus: string; healthStatus: string } {
    return { lastStatus: this.state.lastStatus, desiredStatus: this.state.desiredStatus, healthStatus: this.state.healthStatus ?? 'UNKNOWN' };
  }

  /** Applies one lifecycle step and returns its event (version + 1). */
  step(step: LifecycleStep, cause: StopCause = SCALE_IN): EcsTaskStateChangeEvent {
    this.clock += 2000;
    const s: EcsTaskState = { ...this.state };
    const stopping = () => {
      s.desiredStatus = 'STOPPED';
      s.stopCode ??= cause.stopCode;
      s.stoppedReason ??= cause.stoppedReason;
    };
    switch (step) {
      case 'PROVISIONING':
        s.lastStatus = 'PROVISIONING';
        break;
      case 'PENDING':
      case 'ACTIVATING':
      case 'RUNNING':
        s.lastStatus = step;
        s.ip = this.ip;
        break;
      case 'HEALTHY':
      case 'UNHEALTHY':
        if (!this.healthChecked) throw new Error(`task ${this.taskId} has no health check: it never reports ${step}`);
        s.healthStatus = step;
        break;
      case 'STOP_REQUESTED':
        stopping();
        break;
      case 'DEACTIVATING':
      case 'STOPPING':
      case 'DEPROVISIONING':
      case 'STOPPED':
        stopping();
        s.lastStatus = step;
        break;
    }
    this.state = s;
    return this.stream.next(s);
  }

  /** The event of the current state again (a duplicate delivery). */
  event(): EcsTaskStateChangeEvent {
    return this.stream.event();
  }

  /** Runs `steps` and returns their events in order. */
  steps(steps: readonly LifecycleStep[], cause?: StopCause): EcsTaskStateChangeEvent[] {
    return steps.map((s) => this.step(s, cause));
  }

  /** PROVISIONING, PENDING, RUNNING (and HEALTHY when health-checked). */
  start(): EcsTaskStateChangeEvent[] {
    return this.steps(this.healthChecked ? START_STEPS : START_STEPS.filter((s) => s !== 'HEALTHY'));
  }

  /** desiredStatus STOPPED, then DEACTIVATING ... STOPPED. */
  stop(cause: StopCause = SCALE_IN): EcsTaskStateChangeEvent[] {
    return this.steps(STOP_STEPS, cause);
  }

  /** The task as DescribeTasks returns it now. */
  describe(): Task {
    return this.stream.describe();
  }
}
