/**
 * The registrar against in-memory ECS and Cloud Map in the real API shapes
 * (aws-sdk-client-mock): which events register, deregister or change
 * nothing, with which AWS calls, under duplicates, reordering, races,
 * retries and failures. The same code against moto is in
 * test/integration/discovery-moto.test.ts.
 */
import { logger } from '../../../functions/shared/logger';
import { CloudMapOperationError } from '../../../functions/shared/discovery/cloud-map';
import { handleTaskStateChange, type DiscoveryDeps } from '../../../functions/shared/discovery/registrar';
import { ValidationError } from '../../../functions/shared/errors';
import { EcsTask, ESSENTIAL_EXITED } from '../../../scripts/rig/ecs-events';
import { awsError, callCount, callNames, duplicateRequest, FakeCloudMap, FakeEcs, FAKE_TARGET, FAST, instanceNotFound, requestLimitExceeded } from '../../helpers/discovery-fakes';
import { describeView, ecsEvent, type EcsEvent } from './fixtures';

let ecs: FakeEcs;
let cloudMap: FakeCloudMap;
let deps: DiscoveryDeps;

beforeAll(() => logger.setLogLevel('SILENT'));
beforeEach(() => {
  ecs = new FakeEcs();
  cloudMap = new FakeCloudMap(FAKE_TARGET.cloudMapServiceId);
  deps = { ecs: ecs.client, serviceDiscovery: cloudMap.client, target: FAKE_TARGET, options: FAST };
});

const handle = (event: EcsEvent) => handleTaskStateChange(event, deps);
const task = (opts: { healthChecked?: boolean; ip?: string } = {}) =>
  new EcsTask({ clusterArn: FAKE_TARGET.clusterArn, serviceName: FAKE_TARGET.serviceName, ip: opts.ip ?? '10.0.1.17', healthChecked: opts.healthChecked });
/** Applies the event's state in ECS (DescribeTasks' view) and returns the event. */
const inEcs = (t: EcsTask, event: EcsEvent): EcsEvent => {
  ecs.put(t.describe(), t.healthChecked);
  return event;
};
const mutations = () => callCount(cloudMap.stub, 'RegisterInstance') + callCount(cloudMap.stub, 'DeregisterInstance');

describe('registrar: ECS Task State Change → Cloud Map', () => {
  it('registers a RUNNING, HEALTHY service task with its IP, the dispatch port and ECS attributes', async () => {
    // Arrange
    const event = ecsEvent('task-running');
    ecs.put(describeView(event.detail));
    // Act
    const out = await handle(event);
    // Assess
    expect(out).toMatchObject({ action: 'registered', taskId: 'c13b4cb40f1f4fe4a2971f76ae5a47ad' });
    expect(cloudMap.instances.get('c13b4cb40f1f4fe4a2971f76ae5a47ad')).toEqual({
      AWS_INSTANCE_IPV4: '10.0.0.139',
      AWS_INSTANCE_PORT: '50053',
      AVAILABILITY_ZONE: 'us-west-2c',
      ECS_CLUSTER_NAME: 'spicedb-cluster',
      ECS_SERVICE_NAME: 'spicedb',
      ECS_TASK_DEFINITION_FAMILY: 'spicedb',
      ECS_TASK_DEFINITION_REVISION: '7',
      ECS_TASK_VERSION: '5',
    });
    // Confirmed with DescribeTasks before, re-checked after.
    expect(callNames(ecs.stub)).toEqual(['DescribeTasks', 'DescribeTasks']);
    expect(callNames(cloudMap.stub)).toEqual(['GetInstance', 'RegisterInstance', 'GetOperation']);
  });

  it.each<[string, (e: EcsEvent) => void]>([
    ['another cluster', (e) => (e.detail.clusterArn = 'arn:aws:ecs:us-west-2:111122223333:cluster/other')],
    ['the same cluster name in another account', (e) => (e.detail.clusterArn = 'arn:aws:ecs:us-west-2:444455556666:cluster/spicedb-cluster')],
    ['another service', (e) => (e.detail.group = 'service:spicedb-canary')],
    ['a standalone task of the same family', (e) => (e.detail.group = 'family:spicedb')],
    ['a task without group', (e) => delete (e.detail as Partial<EcsEvent['detail']>).group],
  ])('ignores a task of %s without any AWS call', async (_case, mutate) => {
    const event = ecsEvent('task-running');
    mutate(event);
    const out = await handle(event);
    expect(out.action).toBe('ignored');
    expect(ecs.stub.calls()).toHaveLength(0);
    expect(cloudMap.stub.calls()).toHaveLength(0);
  });

  it('ignores another service even when its detail would not validate', async () => {
    const event = ecsEvent('task-running');
    event.detail.group = 'service:other';
    (event.detail as unknown as Record<string, unknown>).lastStatus = 42;
    await expect(handle(event)).resolves.toMatchObject({ action: 'ignored' });
  });

  it('does nothing, without error or call, for a task whose ENI has no IP yet (PROVISIONING)', async () => {
    const out = await handle(ecsEvent('task-provisioning'));
    expect(out).toMatchObject({ action: 'unchanged', reason: 'task is PROVISIONING, not RUNNING yet' });
    expect(ecs.stub.calls()).toHaveLength(0);
    expect(cloudMap.stub.calls()).toHaveLength(0);
  });

  it('does nothing, without error or call, for a RUNNING event that carries no IP', async () => {
    const event = ecsEvent('task-running');
    event.detail.attachments[0]!.details = event.detail.attachments[0]!.details.filter((d) => d.name !== 'privateIPv4Address');
    for (const c of event.detail.containers) c.networkInterfaces = [];
    const out = await handle(event);
    expect(out).toMatchObject({ action: 'unchanged', reason: 'no IP yet' });
    expect(ecs.stub.calls()).toHaveLength(0);
    expect(cloudMap.stub.calls()).toHaveLength(0);
  });

  it('takes the IP from containers[].networkInterfaces when the attachment lacks it (event and DescribeTasks)', async () => {
    const event = ecsEvent('task-running');
    event.detail.attachments = [];
    for (const c of event.detail.containers) c.networkInterfaces = [{ attachmentId: 'x', privateIpv4Address: '10.0.3.3' }];
    ecs.put(describeView(event.detail));
    await expect(handle(event)).resolves.toMatchObject({ action: 'registered' });
    expect(cloudMap.instances.get('c13b4cb40f1f4fe4a2971f76ae5a47ad')?.AWS_INSTANCE_IPV4).toBe('10.0.3.3');
  });

  it('treats a duplicate delivery as already registered: no DescribeTasks, no Cloud Map mutation', async () => {
    const event = ecsEvent('task-running');
    ecs.put(describeView(event.detail));
    await handle(event);
    ecs.stub.resetHistory();
    cloudMap.stub.resetHistory();
    const again = await handle(ecsEvent('task-running'));
    expect(again).toMatchObject({ action: 'unchanged', reason: 'already registered' });
    expect(callNames(cloudMap.stub)).toEqual(['GetInstance']);
    expect(ecs.stub.calls()).toHaveLength(0);
  });

  it('ignores an event older than the registered version without asking ECS', async () => {
    const t = task();
    const [, pending, runningUnknown] = t.start();
    const healthy = inEcs(t, t.event());
    await expect(handle(healthy)).resolves.toMatchObject({ action: 'registered' });
    ecs.stub.resetHistory();
    cloudMap.stub.resetHistory();
    // RUNNING (UNKNOWN) v3 after HEALTHY v4: stale.
    await expect(handle(runningUnknown as EcsEvent)).resolves.toMatchObject({ action: 'unchanged', reason: expect.stringMatching(/^stale event: version 3 is older than the registered version 4/) });
    // PENDING v2: not RUNNING, nothing to ask.
    await expect(handle(pending as EcsEvent)).resolves.toMatchObject({ action: 'unchanged' });
    expect(ecs.stub.calls()).toHaveLength(0);
    expect(mutations()).toBe(0);
    expect(cloudMap.instances.has(t.taskId)).toBe(true);
  });

  it('never re-registers on a late RUNNING event after the stop: the current state wins', async () => {
    const t = task();
    t.start();
    const healthy = inEcs(t, t.event());
    await handle(healthy);
    const stopRequested = inEcs(t, t.step('STOP_REQUESTED'));
    await expect(handle(stopRequested)).resolves.toMatchObject({ action: 'deregistered' });
    cloudMap.stub.resetHistory();
    // The HEALTHY event delivered again, late.
    const late = await handle(healthy);
    expect(late).toMatchObject({ action: 'unchanged', reason: expect.stringMatching(/^current state: task is stopping/) });
    expect(callCount(cloudMap.stub, 'RegisterInstance')).toBe(0);
    expect(cloudMap.instances.size).toBe(0);
  });

  it('deregisters on the first event with desiredStatus STOPPED while the task still runs, without asking ECS', async () => {
    const event = ecsEvent('task-running');
    ecs.put(describeView(event.detail));
    await handle(event);
    ecs.stub.resetHistory();
    cloudMap.stub.resetHistory();
    const stop = ecsEvent('task-stop-requested');
    expect(stop.detail).toMatchObject({ lastStatus: 'RUNNING', desiredStatus: 'STOPPED' });
    const out = await handle(stop);
    expect(out).toMatchObject({ action: 'deregistered', reason: expect.stringContaining('ServiceSchedulerInitiated') });
    expect(cloudMap.instances.size).toBe(0);
    // GetInstance, deregister, its operation, and the read that confirms the id is gone.
    expect(callNames(cloudMap.stub)).toEqual(['GetInstance', 'DeregisterInstance', 'GetOperation', 'GetInstance']);
    expect(ecs.stub.calls()).toHaveLength(0);
  });

  it('handles the later stop events (DEACTIVATING ... STOPPED) with one read and no mutation', async () => {
    const t = task();
    t.start();
    await handle(inEcs(t, t.event()));
    const [stopRequested, ...rest] = t.stop();
    ecs.put(t.describe());
    await expect(handle(stopRequested as EcsEvent)).resolves.toMatchObject({ action: 'deregistered' });
    cloudMap.stub.resetHistory();
    for (const e of rest) await expect(handle(e)).resolves.toMatchObject({ action: 'unchanged', reason: expect.stringContaining('not registered') });
    expect(callNames(cloudMap.stub)).toEqual(rest.map(() => 'GetInstance'));
  });

  it('deregisters on STOPPED when every earlier stop event was lost', async () => {
    const event = ecsEvent('task-running');
    ecs.put(describeView(event.detail));
    await handle(event);
    await expect(handle(ecsEvent('task-stopped'))).resolves.toMatchObject({ action: 'deregistered' });
    expect(cloudMap.instances.size).toBe(0);
  });

  it('deregisters a crashed task whose first stop event is already STOPPING', async () => {
    const t = task();
    t.start();
    await handle(inEcs(t, t.event()));
    const stopping = t.step('STOPPING', ESSENTIAL_EXITED);
    await expect(handle(stopping)).resolves.toMatchObject({ action: 'deregistered', reason: expect.stringContaining('EssentialContainerExited') });
  });

  it('waits for HEALTHY when the task definition has a health check', async () => {
    const t = task({ healthChecked: true });
    const events = t.steps(['PROVISIONING', 'PENDING', 'RUNNING']);
    ecs.put(t.describe(), true);
    const out = await handle(events[2] as EcsEvent);
    expect(out).toMatchObject({ action: 'unchanged', reason: 'waiting for health check (healthStatus UNKNOWN)' });
    expect(callNames(ecs.stub)).toEqual(['DescribeTaskDefinition']);
    expect(mutations()).toBe(0);
    // Then HEALTHY registers.
    await expect(handle(inEcs(t, t.step('HEALTHY')))).resolves.toMatchObject({ action: 'registered' });
  });

  it('registers on RUNNING when no essential container has a health check', async () => {
    const t = task({ healthChecked: false });
    const events = t.start();
    ecs.put(t.describe(), false);
    await expect(handle(events[events.length - 1] as EcsEvent)).resolves.toMatchObject({ action: 'registered', reason: 'RUNNING, no health check' });
  });

  it('reads the task definition once per revision (cached across events)', async () => {
    const a = task();
    const b = task();
    for (const t of [a, b]) {
      const events = t.steps(['PROVISIONING', 'PENDING', 'RUNNING']);
      ecs.put(t.describe(), true);
      await handle(events[2] as EcsEvent);
    }
    expect(callCount(ecs.stub, 'DescribeTaskDefinition')).toBe(1);
  });

  it('deregisters a registered task that ECS confirms UNHEALTHY', async () => {
    const t = task();
    t.start();
    await handle(inEcs(t, t.event()));
    const out = await handle(inEcs(t, t.step('UNHEALTHY')));
    expect(out).toMatchObject({ action: 'deregistered', reason: 'current state: task is UNHEALTHY' });
    expect(cloudMap.instances.size).toBe(0);
  });

  it('asks ECS when the event asks for a registration, and follows the current state', async () => {
    // The RUNNING event arrives after ECS already decided to stop the task.
    const t = task();
    t.start();
    const healthy = t.event();
    t.step('STOP_REQUESTED');
    ecs.put(t.describe());
    const out = await handle(healthy);
    expect(out).toMatchObject({ action: 'unchanged', reason: expect.stringMatching(/^current state: task is stopping/) });
    expect(callNames(ecs.stub)).toEqual(['DescribeTasks']);
    expect(mutations()).toBe(0);
  });

  it('does not register a task ECS no longer knows', async () => {
    const out = await handle(ecsEvent('task-running'));
    expect(out).toMatchObject({ action: 'unchanged', reason: 'current state: ECS no longer knows the task' });
    expect(mutations()).toBe(0);
  });

  it('undoes a registration when the task began stopping while it was registered', async () => {
    const t = task();
    t.start();
    const healthy = inEcs(t, t.event());
    cloudMap.afterRegister = () => {
      t.step('STOP_REQUESTED');
      ecs.put(t.describe());
    };
    const out = await handle(healthy);
    expect(out).toMatchObject({ action: 'deregistered', reason: 'task began stopping while it was being registered' });
    expect(cloudMap.instances.size).toBe(0);
  });

  it('updates an instance whose attributes differ (e.g. the dispatch port changed)', async () => {
    const event = ecsEvent('task-running');
    ecs.put(describeView(event.detail));
    await handle(event);
    deps = { ...deps, target: { ...FAKE_TARGET, dispatchPort: 50054 } };
    await expect(handle(ecsEvent('task-running'))).resolves.toMatchObject({ action: 'registered' });
    expect(cloudMap.instances.get('c13b4cb40f1f4fe4a2971f76ae5a47ad')?.AWS_INSTANCE_PORT).toBe('50054');
  });

  describe('retries and failures', () => {
    it('retries DuplicateRequest with backoff until the earlier operation is done', async () => {
      const event = ecsEvent('task-running');
      ecs.put(describeView(event.detail));
      cloudMap.faults.add('RegisterInstance', duplicateRequest, 2);
      await expect(handle(event)).resolves.toMatchObject({ action: 'registered' });
      expect(callCount(cloudMap.stub, 'RegisterInstance')).toBe(3);
    });

    it('retries throttling from ECS and Cloud Map', async () => {
      const event = ecsEvent('task-running');
      ecs.put(describeView(event.detail));
      ecs.faults.add('DescribeTasks', () => awsError('ThrottlingException', 'Rate exceeded'), 2);
      cloudMap.faults.add('GetInstance', requestLimitExceeded, 1);
      await expect(handle(event)).resolves.toMatchObject({ action: 'registered' });
      expect(callCount(ecs.stub, 'DescribeTasks')).toBe(4);
      expect(callCount(cloudMap.stub, 'GetInstance')).toBe(2);
    });

    it('throws DuplicateRequest once the retries are used up', async () => {
      const event = ecsEvent('task-running');
      ecs.put(describeView(event.detail));
      cloudMap.faults.add('RegisterInstance', duplicateRequest, 50);
      await expect(handle(event)).rejects.toMatchObject({ name: 'DuplicateRequest' });
      expect(callCount(cloudMap.stub, 'RegisterInstance')).toBe(FAST.retry.attempts);
    });

    it('throws, without retrying, an error that another attempt cannot fix', async () => {
      const event = ecsEvent('task-running');
      ecs.put(describeView(event.detail));
      cloudMap.faults.add('RegisterInstance', () => awsError('AccessDeniedException', 'not authorized to perform route53:ChangeResourceRecordSets'));
      await expect(handle(event)).rejects.toMatchObject({ name: 'AccessDeniedException' });
      expect(callCount(cloudMap.stub, 'RegisterInstance')).toBe(1);
    });

    it('throws when the Cloud Map operation ends in FAIL', async () => {
      const event = ecsEvent('task-running');
      ecs.put(describeView(event.detail));
      cloudMap.operationOutcomes.push({ Status: 'FAIL', ErrorCode: 'INTERNAL_FAILURE', ErrorMessage: 'Route 53 change failed' });
      const err = await handle(event).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CloudMapOperationError);
      expect(err).toMatchObject({ code: 'INTERNAL_FAILURE', message: expect.stringContaining('Route 53 change failed') });
    });

    it('submits the registration again when its operation was throttled (THROTTLED_REQUEST)', async () => {
      const event = ecsEvent('task-running');
      ecs.put(describeView(event.detail));
      cloudMap.operationOutcomes.push({ Status: 'FAIL', ErrorCode: 'THROTTLED_REQUEST', ErrorMessage: 'Rate exceeded' });
      await expect(handle(event)).resolves.toMatchObject({ action: 'registered' });
      expect(callCount(cloudMap.stub, 'RegisterInstance')).toBe(2);
    });

    it('throws when the operation does not finish in time', async () => {
      const event = ecsEvent('task-running');
      ecs.put(describeView(event.detail));
      cloudMap.operationOutcomes.push({ Status: 'PENDING' });
      deps = { ...deps, options: { ...FAST, operationTimeoutMs: 50 } };
      await expect(handle(event)).rejects.toMatchObject({ code: 'TIMEOUT' });
    });

    it('throws when a deregistration fails, so EventBridge retries it', async () => {
      const event = ecsEvent('task-running');
      ecs.put(describeView(event.detail));
      await handle(event);
      cloudMap.faults.add('DeregisterInstance', () => awsError('InternalServiceError', 'internal error', 500));
      await expect(handle(ecsEvent('task-stop-requested'))).rejects.toMatchObject({ name: 'InternalServiceError' });
      // The retry (EventBridge redelivers) succeeds.
      await expect(handle(ecsEvent('task-stop-requested'))).resolves.toMatchObject({ action: 'deregistered' });
    });

    it('counts a deregistration that another invocation finished first (InstanceNotFound) as done', async () => {
      const event = ecsEvent('task-running');
      ecs.put(describeView(event.detail));
      await handle(event);
      // Gone between our GetInstance and our DeregisterInstance.
      cloudMap.faults.add('DeregisterInstance', () => {
        cloudMap.instances.clear();
        return instanceNotFound('c13b4cb40f1f4fe4a2971f76ae5a47ad');
      });
      await expect(handle(ecsEvent('task-stop-requested'))).resolves.toMatchObject({ action: 'unchanged', reason: expect.stringContaining('already gone') });
    });
  });

  describe('bad input', () => {
    it.each<[string, (e: EcsEvent) => void, RegExp]>([
      ['no lastStatus', (e) => delete (e.detail as Partial<EcsEvent['detail']>).lastStatus, /detail\.lastStatus: .*expected string/],
      ['a taskArn that is not one', (e) => (e.detail.taskArn = 'task-123'), /detail\.taskArn: expected an ECS task ARN/],
      ['no version', (e) => delete (e.detail as Partial<EcsEvent['detail']>).version, /detail\.version: expected an integer/],
      ['a version that is not an integer', (e) => ((e.detail as unknown as Record<string, unknown>).version = '5'), /detail\.version: .*expected number/],
      ['an IP that is not IPv4', (e) => (e.detail.attachments[0]!.details[4]!.value = '10.0.0.999'), /detail\.attachments\.0\.details\.4\.value: expected an IPv4 address, got "10\.0\.0\.999"/],
    ])('rejects an event of this service with %s, naming the field', async (_case, mutate, message) => {
      const event = ecsEvent('task-running');
      mutate(event);
      const err = await handle(event).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as Error).message).toMatch(message);
    });

    it('rejects an event without detail.clusterArn', async () => {
      const event = ecsEvent('task-running');
      delete (event.detail as Partial<EcsEvent['detail']>).clusterArn;
      await expect(handle(event)).rejects.toThrow(/detail\.clusterArn/);
    });

    it('accepts fields it does not know (ECS adds fields over time)', async () => {
      const event = ecsEvent('task-running');
      Object.assign(event.detail, { someNewField: { nested: true }, capacityProviderName: 'FARGATE_SPOT' });
      ecs.put(describeView(event.detail));
      await expect(handle(event)).resolves.toMatchObject({ action: 'registered' });
    });
  });
});
