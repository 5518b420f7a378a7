/**
 * The reconciler against in-memory ECS and Cloud Map in the real API shapes:
 * registers the missing, removes the stale, changes nothing when nothing
 * changed, pages through hundreds of tasks and instances, and never
 * registers a task meant to stop.
 */
import { logger } from '../../../functions/shared/logger';
import { reconcile, type DiscoveryDeps } from '../../../functions/shared/discovery/reconciler';
import { EcsTask, type LifecycleStep } from '../../../scripts/rig/ecs-events';
import { awsError, callCount, FakeCloudMap, FakeEcs, FAKE_TARGET, FAST } from '../../helpers/discovery-fakes';

let ecs: FakeEcs;
let cloudMap: FakeCloudMap;
let deps: DiscoveryDeps;

beforeAll(() => logger.setLogLevel('SILENT'));
beforeEach(() => {
  ecs = new FakeEcs();
  cloudMap = new FakeCloudMap(FAKE_TARGET.cloudMapServiceId);
  deps = { ecs: ecs.client, serviceDiscovery: cloudMap.client, target: FAKE_TARGET, options: FAST };
});

let ipSeq = 0;
/** A task of the target service brought through `steps`, put in ECS. */
function ecsTask(steps: readonly LifecycleStep[] = ['PROVISIONING', 'PENDING', 'RUNNING', 'HEALTHY'], opts: { serviceName?: string; healthChecked?: boolean; taskDefinitionArn?: string } = {}): EcsTask {
  ipSeq++;
  const t = new EcsTask({
    clusterArn: FAKE_TARGET.clusterArn,
    serviceName: opts.serviceName ?? FAKE_TARGET.serviceName,
    ip: `10.0.${Math.floor(ipSeq / 250)}.${(ipSeq % 250) + 1}`,
    healthChecked: opts.healthChecked,
    taskDefinitionArn: opts.taskDefinitionArn,
  });
  t.steps(steps);
  ecs.put(t.describe(), t.healthChecked);
  return t;
}
const attrsOf = (t: EcsTask) => ({
  AWS_INSTANCE_IPV4: t.ip,
  AWS_INSTANCE_PORT: '50053',
  AVAILABILITY_ZONE: 'us-west-2a',
  ECS_CLUSTER_NAME: 'spicedb-cluster',
  ECS_SERVICE_NAME: 'spicedb',
  ECS_TASK_DEFINITION_FAMILY: 'spicedb',
  ECS_TASK_DEFINITION_REVISION: '1',
  ECS_TASK_VERSION: String(t.version),
});
const mutations = () => callCount(cloudMap.stub, 'RegisterInstance') + callCount(cloudMap.stub, 'DeregisterInstance');
const sorted = (ids: string[]) => [...ids].sort();

describe('reconciler', () => {
  it('registers running tasks that are missing from Cloud Map', async () => {
    const tasks = [ecsTask(), ecsTask(), ecsTask()];
    const summary = await reconcile(deps);
    expect(sorted(summary.added)).toEqual(sorted(tasks.map((t) => t.taskId)));
    expect(summary).toMatchObject({ removed: [], kept: [] });
    for (const t of tasks) expect(cloudMap.instances.get(t.taskId)).toEqual(attrsOf(t));
  });

  it('removes instances of tasks that stopped or that ECS does not know', async () => {
    const running = ecsTask();
    const stopped = ecsTask(['PROVISIONING', 'PENDING', 'RUNNING', 'HEALTHY', 'STOP_REQUESTED', 'DEACTIVATING', 'STOPPING', 'DEPROVISIONING', 'STOPPED']);
    cloudMap.instances.set(running.taskId, attrsOf(running));
    cloudMap.instances.set(stopped.taskId, attrsOf(stopped));
    cloudMap.instances.set('0123456789abcdef0123456789abcdef', { AWS_INSTANCE_IPV4: '10.9.9.9', AWS_INSTANCE_PORT: '50053' });
    const summary = await reconcile(deps);
    expect(summary).toMatchObject({ added: [], kept: [running.taskId] });
    expect(sorted(summary.removed)).toEqual(sorted([stopped.taskId, '0123456789abcdef0123456789abcdef']));
    expect([...cloudMap.instances.keys()]).toEqual([running.taskId]);
  });

  it('makes no mutating call when Cloud Map already matches, and says so in the summary', async () => {
    const tasks = [ecsTask(), ecsTask()];
    await reconcile(deps);
    cloudMap.stub.resetHistory();
    const summary = await reconcile(deps);
    expect(summary).toMatchObject({ added: [], removed: [] });
    expect(sorted(summary.kept)).toEqual(sorted(tasks.map((t) => t.taskId)));
    expect(mutations()).toBe(0);
    expect(summary.calls).toEqual({ ListInstances: 1, ListTasks: 1, DescribeTasks: 1 });
  });

  it('keeps an instance whose only difference is an older ECS version', async () => {
    const t = ecsTask();
    cloudMap.instances.set(t.taskId, { ...attrsOf(t), ECS_TASK_VERSION: '2' });
    const summary = await reconcile(deps);
    expect(summary.kept).toEqual([t.taskId]);
    expect(mutations()).toBe(0);
  });

  it('re-registers an instance whose attributes are wrong', async () => {
    const t = ecsTask();
    cloudMap.instances.set(t.taskId, { ...attrsOf(t), AWS_INSTANCE_IPV4: '10.255.0.1' });
    const summary = await reconcile(deps);
    expect(summary.added).toEqual([t.taskId]);
    expect(cloudMap.instances.get(t.taskId)?.AWS_INSTANCE_IPV4).toBe(t.ip);
  });

  it('pages through hundreds of tasks and instances', async () => {
    // 350 running (200 already registered), 30 stopping, 120 stale instances.
    const running = Array.from({ length: 350 }, () => ecsTask());
    const stopping = Array.from({ length: 30 }, () => ecsTask(['PROVISIONING', 'PENDING', 'RUNNING', 'HEALTHY', 'STOP_REQUESTED']));
    for (const t of running.slice(0, 200)) cloudMap.instances.set(t.taskId, attrsOf(t));
    for (const t of stopping) cloudMap.instances.set(t.taskId, attrsOf(t));
    for (let i = 0; i < 90; i++) cloudMap.instances.set(`gone${String(i).padStart(28, '0')}`, { AWS_INSTANCE_IPV4: '10.200.0.1' });

    const summary = await reconcile({ ...deps, options: { ...FAST, concurrency: 10 } });

    expect(summary.kept).toHaveLength(200);
    expect(sorted(summary.added)).toEqual(sorted(running.slice(200).map((t) => t.taskId)));
    expect(summary.removed).toHaveLength(120);
    expect(sorted([...cloudMap.instances.keys()])).toEqual(sorted(running.map((t) => t.taskId)));
    // ListTasks: 350 RUNNING-desired arns in pages of 100; DescribeTasks: batches of 100, plus
    // one re-check batch for the 150 added (2 calls); ListInstances: 320 in pages of 100.
    expect(summary.calls).toMatchObject({ ListTasks: 4, ListInstances: 4, DescribeTasks: 4 + 2 });
    expect(callCount(cloudMap.stub, 'RegisterInstance')).toBe(150);
  });

  it('never registers a task whose desiredStatus is STOPPED, even when ListTasks returns it (as moto does)', async () => {
    ecs.ignoreListFilters = true;
    const stopping = ecsTask(['PROVISIONING', 'PENDING', 'RUNNING', 'HEALTHY', 'STOP_REQUESTED']);
    const running = ecsTask();
    cloudMap.instances.set(stopping.taskId, attrsOf(stopping));
    const summary = await reconcile(deps);
    expect(summary).toMatchObject({ added: [running.taskId], removed: [stopping.taskId] });
    expect(cloudMap.instances.has(stopping.taskId)).toBe(false);
  });

  it("leaves out another service's tasks when ListTasks ignores serviceName (as moto does)", async () => {
    ecs.ignoreListFilters = true;
    const other = ecsTask(undefined, { serviceName: 'other' });
    const mine = ecsTask();
    const summary = await reconcile(deps);
    expect(summary.added).toEqual([mine.taskId]);
    expect(cloudMap.instances.has(other.taskId)).toBe(false);
  });

  it('does not register a task still waiting for its health check, nor one that is UNHEALTHY', async () => {
    ecsTask(['PROVISIONING', 'PENDING', 'RUNNING']);
    ecsTask(['PROVISIONING', 'PENDING', 'RUNNING', 'HEALTHY', 'UNHEALTHY']);
    // A revision without health check: UNKNOWN is all ECS will ever report.
    const unchecked = ecsTask(['PROVISIONING', 'PENDING', 'RUNNING'], { healthChecked: false, taskDefinitionArn: 'arn:aws:ecs:us-west-2:111122223333:task-definition/spicedb:2' });
    const summary = await reconcile(deps);
    expect(summary.added).toEqual([unchecked.taskId]);
  });

  it('removes again a task that began stopping while it was being registered', async () => {
    const t = ecsTask();
    cloudMap.afterRegister = () => {
      t.step('STOP_REQUESTED');
      ecs.put(t.describe());
    };
    const summary = await reconcile(deps);
    expect(summary).toMatchObject({ added: [t.taskId], removed: [t.taskId] });
    expect(cloudMap.instances.size).toBe(0);
  });

  it('finishes the other changes when one fails, then throws', async () => {
    const tasks = [ecsTask(), ecsTask(), ecsTask()];
    cloudMap.faults.add('RegisterInstance', () => awsError('AccessDeniedException', 'denied'));
    await expect(reconcile(deps)).rejects.toMatchObject({ name: 'AccessDeniedException' });
    expect(cloudMap.instances.size).toBe(2);
    // The next run repairs the rest.
    const summary = await reconcile(deps);
    expect(summary.added).toHaveLength(1);
    expect(cloudMap.instances.size).toBe(tasks.length);
  });

  it('throws when ECS cannot be read, changing nothing', async () => {
    ecsTask();
    ecs.faults.add('ListTasks', () => awsError('AccessDeniedException', 'denied'));
    await expect(reconcile(deps)).rejects.toMatchObject({ name: 'AccessDeniedException' });
    expect(mutations()).toBe(0);
  });
});
