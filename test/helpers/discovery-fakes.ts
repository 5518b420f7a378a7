/**
 * In-memory ECS and Cloud Map behind real SDK clients (aws-sdk-client-mock
 * on one client instance), answering in the real API shapes: ListTasks and
 * ListInstances paginate, DescribeTasks reports unknown ARNs as MISSING
 * failures, RegisterInstance upserts (as real Cloud Map does, unlike moto),
 * DeregisterInstance of an absent id raises InstanceNotFound, operations
 * succeed unless a fault is queued. Faults (DuplicateRequest, throttling,
 * FAIL operations) are queued per operation.
 */
import {
  DescribeTaskDefinitionCommand,
  DescribeTasksCommand,
  ECSClient,
  ListTasksCommand,
  type DescribeTasksCommandOutput,
  type ListTasksCommandOutput,
  type Task,
} from '@aws-sdk/client-ecs';
import {
  DeregisterInstanceCommand,
  DuplicateRequest,
  GetInstanceCommand,
  GetOperationCommand,
  InstanceNotFound,
  ListInstancesCommand,
  RegisterInstanceCommand,
  RequestLimitExceeded,
  ServiceDiscoveryClient,
  type Operation,
} from '@aws-sdk/client-servicediscovery';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import type { DiscoveryTarget } from '../../functions/shared/discovery/target';

type Attrs = Record<string, string>;

/** An SDK-shaped service error (what the SDK throws for an error response). */
export function awsError(name: string, message = name, httpStatusCode = 400): Error {
  const err = new Error(message) as Error & { $metadata: { httpStatusCode: number }; $fault: string };
  err.name = name;
  err.$metadata = { httpStatusCode };
  err.$fault = 'client';
  return err;
}

export const duplicateRequest = (): Error => new DuplicateRequest({ message: 'An operation on this instance is already in progress', $metadata: { httpStatusCode: 400 } });
export const requestLimitExceeded = (): Error => new RequestLimitExceeded({ message: 'Rate exceeded', $metadata: { httpStatusCode: 400 } });
export const instanceNotFound = (id: string): Error => new InstanceNotFound({ message: `Instance not found: ${id}`, $metadata: { httpStatusCode: 404 } });

class Faults {
  private readonly queued = new Map<string, (() => Error)[]>();
  /** The next `times` calls of `operation` fail with `make()`. */
  add(operation: string, make: () => Error, times = 1): void {
    const q = this.queued.get(operation) ?? [];
    for (let i = 0; i < times; i++) q.push(make);
    this.queued.set(operation, q);
  }
  take(operation: string): void {
    const make = this.queued.get(operation)?.shift();
    if (make) throw make();
  }
}

function page<T>(items: readonly T[], token: string | undefined, max: number | undefined): { items: T[]; next?: string } {
  const start = token ? Number(token) : 0;
  const size = max ?? 100;
  const end = start + size;
  return { items: items.slice(start, end), next: end < items.length ? String(end) : undefined };
}

/** ECS: tasks as DescribeTasks would return them, keyed by ARN. */
export class FakeEcs {
  readonly client = new ECSClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  readonly stub: AwsClientStub<ECSClient>;
  readonly faults = new Faults();
  private readonly tasks = new Map<string, Task>();
  private readonly healthChecked = new Map<string, boolean>();
  /** When true, ListTasks ignores serviceName and desiredStatus (as moto does). */
  ignoreListFilters = false;

  constructor() {
    const stub = mockClient(this.client);
    stub.on(ListTasksCommand).callsFake((input: { cluster?: string; serviceName?: string; desiredStatus?: string; nextToken?: string; maxResults?: number }): ListTasksCommandOutput => {
      this.faults.take('ListTasks');
      const arns = [...this.tasks.values()]
        .filter((t) => t.clusterArn === input.cluster || t.clusterArn?.endsWith(`/${input.cluster ?? ''}`))
        .filter((t) => this.ignoreListFilters || !input.serviceName || t.group === `service:${input.serviceName}`)
        .filter((t) => this.ignoreListFilters || !input.desiredStatus || t.desiredStatus === input.desiredStatus)
        .map((t) => t.taskArn as string);
      const p = page(arns, input.nextToken, input.maxResults);
      return { taskArns: p.items, nextToken: p.next, $metadata: {} };
    });
    stub.on(DescribeTasksCommand).callsFake((input: { tasks?: string[] }): DescribeTasksCommandOutput => {
      this.faults.take('DescribeTasks');
      const asked = input.tasks ?? [];
      if (asked.length > 100) throw awsError('InvalidParameterException', 'Tasks cannot contain more than 100 items');
      const found = asked.map((arn) => this.tasks.get(arn)).filter((t): t is Task => t !== undefined);
      const failures = asked.filter((arn) => !this.tasks.has(arn)).map((arn) => ({ arn, reason: 'MISSING' }));
      return { tasks: structuredClone(found), failures, $metadata: {} };
    });
    stub.on(DescribeTaskDefinitionCommand).callsFake((input: { taskDefinition?: string }) => {
      this.faults.take('DescribeTaskDefinition');
      const checked = this.healthChecked.get(input.taskDefinition ?? '');
      if (checked === undefined) throw awsError('ClientException', 'Unable to describe task definition.');
      return {
        taskDefinition: {
          taskDefinitionArn: input.taskDefinition,
          containerDefinitions: [
            { name: 'spicedb', essential: true, ...(checked ? { healthCheck: { command: ['CMD', 'grpc_health_probe', '-addr=localhost:50051'] } } : {}) },
            { name: 'drain', essential: false },
          ],
        },
        $metadata: {},
      };
    });
    this.stub = stub;
  }

  /** Puts (or replaces) a task's current DescribeTasks view. */
  put(task: Task, healthChecked = true): void {
    if (!task.taskArn) throw new Error('task without taskArn');
    this.tasks.set(task.taskArn, structuredClone(task));
    if (task.taskDefinitionArn && !this.healthChecked.has(task.taskDefinitionArn)) this.healthChecked.set(task.taskDefinitionArn, healthChecked);
  }

  /** Empties the fake (the client and its task-definition cache stay). */
  reset(): void {
    this.tasks.clear();
    this.healthChecked.clear();
    this.stub.resetHistory();
  }

  /** Forgets a task (ECS drops stopped tasks after about an hour). */
  forget(taskArn: string): void {
    this.tasks.delete(taskArn);
  }
}

/** Cloud Map: one service's instances; operations complete at once unless a fault is queued. */
export class FakeCloudMap {
  readonly client = new ServiceDiscoveryClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  readonly stub: AwsClientStub<ServiceDiscoveryClient>;
  readonly faults = new Faults();
  readonly instances = new Map<string, Attrs>();
  private readonly operations = new Map<string, Operation>();
  private nextOp = 0;
  /** Operation outcomes to hand out next (default SUCCESS). */
  readonly operationOutcomes: Operation[] = [];
  /** Called after each successful RegisterInstance (to change the world in between). */
  afterRegister?: (instanceId: string) => void;

  constructor(readonly serviceId: string) {
    const stub = mockClient(this.client);
    stub.on(GetInstanceCommand).callsFake((input: { ServiceId?: string; InstanceId?: string }) => {
      this.faults.take('GetInstance');
      this.checkService(input.ServiceId);
      const attrs = this.instances.get(input.InstanceId ?? '');
      if (!attrs) throw instanceNotFound(input.InstanceId ?? '');
      return { Instance: { Id: input.InstanceId, Attributes: { ...attrs } }, $metadata: {} };
    });
    stub.on(ListInstancesCommand).callsFake((input: { ServiceId?: string; NextToken?: string; MaxResults?: number }) => {
      this.faults.take('ListInstances');
      this.checkService(input.ServiceId);
      const all = [...this.instances].map(([Id, Attributes]) => ({ Id, Attributes: { ...Attributes } }));
      const p = page(all, input.NextToken, input.MaxResults);
      return { Instances: p.items, NextToken: p.next, $metadata: {} };
    });
    stub.on(RegisterInstanceCommand).callsFake((input: { ServiceId?: string; InstanceId?: string; Attributes?: Attrs }) => {
      this.faults.take('RegisterInstance');
      this.checkService(input.ServiceId);
      const id = input.InstanceId ?? '';
      if (!/^[0-9a-zA-Z_/:.@-]{1,64}$/.test(id)) throw awsError('InvalidInput', `bad instance id ${id}`);
      const op = this.operation('REGISTER_INSTANCE', id);
      if (op.Status === 'SUCCESS') this.instances.set(id, { ...(input.Attributes ?? {}) });
      this.afterRegister?.(id);
      return { OperationId: op.Id, $metadata: {} };
    });
    stub.on(DeregisterInstanceCommand).callsFake((input: { ServiceId?: string; InstanceId?: string }) => {
      this.faults.take('DeregisterInstance');
      this.checkService(input.ServiceId);
      const id = input.InstanceId ?? '';
      if (!this.instances.has(id)) throw instanceNotFound(id);
      const op = this.operation('DEREGISTER_INSTANCE', id);
      if (op.Status === 'SUCCESS') this.instances.delete(id);
      return { OperationId: op.Id, $metadata: {} };
    });
    stub.on(GetOperationCommand).callsFake((input: { OperationId?: string }) => {
      this.faults.take('GetOperation');
      const op = this.operations.get(input.OperationId ?? '');
      if (!op) throw awsError('OperationNotFound', `no operation ${input.OperationId ?? ''}`, 404);
      return { Operation: { ...op }, $metadata: {} };
    });
    this.stub = stub;
  }

  /** Empties the fake. */
  reset(): void {
    this.instances.clear();
    this.operations.clear();
    this.operationOutcomes.length = 0;
    this.afterRegister = undefined;
    this.stub.resetHistory();
  }

  private checkService(id: string | undefined): void {
    if (id !== this.serviceId) throw awsError('ServiceNotFound', `no service ${id ?? ''}`, 404);
  }

  private operation(type: string, instanceId: string): Operation {
    const outcome = this.operationOutcomes.shift() ?? { Status: 'SUCCESS' };
    const op: Operation = { Id: `op-${++this.nextOp}`, Type: type as Operation['Type'], Targets: { INSTANCE: instanceId }, ...outcome };
    this.operations.set(op.Id as string, op);
    return op;
  }
}

/** What a stub records: each `send` with its command. */
export interface CallLog {
  calls(): { args: readonly unknown[] }[];
}

/** Number of calls of an operation recorded by a stub. */
export function callCount(stub: CallLog, operation: string): number {
  return callNames(stub).filter((n) => n === operation).length;
}

/** Operations called on a stub, in order. */
export function callNames(stub: CallLog): string[] {
  return stub.calls().map((c) => (c.args[0] as { constructor: { name: string } }).constructor.name.replace(/Command$/, ''));
}

/** A target for the fakes. */
export const FAKE_TARGET: DiscoveryTarget = {
  clusterArn: 'arn:aws:ecs:us-west-2:111122223333:cluster/spicedb-cluster',
  serviceName: 'spicedb',
  cloudMapServiceId: 'srv-fake0000spicedb',
  dispatchPort: 50053,
};

/** Retry and polling without waits, for tests. */
export const FAST = { retry: { attempts: 5, baseDelayMs: 1, maxDelayMs: 2 }, operationPollMs: 1, operationTimeoutMs: 2000 };
