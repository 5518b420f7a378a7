/**
 * The registrar and reconciler against the AWS emulator: Cloud Map and ECS
 * in moto (tasks started with RunTask, held RUNNING), events in the real
 * shape built for those tasks. moto's Cloud Map appends a second entry when
 * an id is registered again (real Cloud Map upserts), so "no second entry"
 * here proves that no needless RegisterInstance was sent. Cases moto cannot
 * represent (task health, versions, races, throttling) are in
 * test/unit/discovery/.
 */
import { CreateSecurityGroupCommand, CreateSubnetCommand, CreateVpcCommand, EC2Client, ModifyVpcAttributeCommand } from '@aws-sdk/client-ec2';
import { CreateClusterCommand, DescribeTasksCommand, ECSClient, ListTasksCommand, RegisterTaskDefinitionCommand, RunTaskCommand, StopTaskCommand, type Task } from '@aws-sdk/client-ecs';
import {
  CreatePrivateDnsNamespaceCommand,
  CreateServiceCommand,
  GetOperationCommand,
  ListInstancesCommand,
  RegisterInstanceCommand,
  ServiceDiscoveryClient,
} from '@aws-sdk/client-servicediscovery';
import fc from 'fast-check';
import type * as ReconcilerModule from '../../functions/reconciler/handler';
import type * as RegistrarModule from '../../functions/registrar/handler';
import { logger } from '../../functions/shared/logger';
import { reconcile } from '../../functions/shared/discovery/reconciler';
import { handleTaskStateChange, type DiscoveryDeps } from '../../functions/shared/discovery/registrar';
import type { DiscoveryTarget } from '../../functions/shared/discovery/target';
import { EcsTaskEventStream, type EcsTaskStateChangeEvent } from '../../scripts/rig/ecs-events';
import { AWS_REGION, setEcsTaskTransition, startMoto, type Moto } from '../../scripts/rig/moto';
import { FakeEcs, FAKE_TARGET } from '../helpers/discovery-fakes';
import { play, scenarioArb, shouldBeRegistered } from '../helpers/lifecycle-model';
import { Cleanup, uniqueName } from '../helpers/rig';

const cleanup = new Cleanup();
let moto: Moto;
let ec2: EC2Client;
let ecs: ECSClient;
let sd: ServiceDiscoveryClient;
let net: { subnetId: string; securityGroupId: string };
let namespaceId: string;
let clusterArn: string;
let plainTaskDef: string;
let checkedTaskDef: string;
const SERVICE = 'spicedb';
// Tight polling: moto finishes operations at once.
const options = { retry: { attempts: 4, baseDelayMs: 20, maxDelayMs: 100 }, operationPollMs: 20, operationTimeoutMs: 10000 };

beforeAll(async () => {
  logger.setLogLevel('SILENT');
  moto = cleanup.add(await startMoto());
  const config = { endpoint: moto.endpoint, region: AWS_REGION, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
  ec2 = new EC2Client(config);
  ecs = new ECSClient(config);
  sd = new ServiceDiscoveryClient({ ...config, disableHostPrefix: true });
  // Each DescribeTasks would otherwise move moto's tasks one step towards STOPPED.
  await setEcsTaskTransition(moto.endpoint, { progression: 'manual', times: 1_000_000 });

  const vpc = await ec2.send(new CreateVpcCommand({ CidrBlock: '10.0.0.0/16' }));
  const vpcId = vpc.Vpc?.VpcId as string;
  await ec2.send(new ModifyVpcAttributeCommand({ VpcId: vpcId, EnableDnsHostnames: { Value: true } }));
  const subnet = await ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: '10.0.1.0/24' }));
  const sg = await ec2.send(new CreateSecurityGroupCommand({ VpcId: vpcId, GroupName: 'tasks', Description: 'tasks' }));
  net = { subnetId: subnet.Subnet?.SubnetId as string, securityGroupId: sg.GroupId as string };

  const ns = await sd.send(new CreatePrivateDnsNamespaceCommand({ Name: `${uniqueName('ns').replace('_', '-')}.internal`, Vpc: vpcId, Properties: { DnsProperties: { SOA: { TTL: 5 } } } }));
  const op = await sd.send(new GetOperationCommand({ OperationId: ns.OperationId }));
  namespaceId = op.Operation?.Targets?.NAMESPACE as string;

  const cluster = await ecs.send(new CreateClusterCommand({ clusterName: 'spicedb-cluster' }));
  clusterArn = cluster.cluster?.clusterArn as string;
  const taskDef = async (family: string, healthCheck: boolean) => {
    const res = await ecs.send(
      new RegisterTaskDefinitionCommand({
        family,
        networkMode: 'awsvpc',
        requiresCompatibilities: ['FARGATE'],
        cpu: '256',
        memory: '512',
        containerDefinitions: [
          {
            name: 'spicedb',
            image: 'authzed/spicedb:v1.56.2',
            essential: true,
            cpu: 256,
            memory: 512,
            ...(healthCheck ? { healthCheck: { command: ['CMD', 'grpc_health_probe', '-addr=localhost:50051'] } } : {}),
          },
        ],
      }),
    );
    return res.taskDefinition?.taskDefinitionArn as string;
  };
  plainTaskDef = await taskDef('spicedb', false);
  checkedTaskDef = await taskDef('spicedb-checked', true);
});
afterAll(() => cleanup.runAll());

/** A fresh Cloud Map service (A records, MULTIVALUE, TTL 5) and the target for it. */
async function freshTarget(): Promise<DiscoveryTarget> {
  const svc = await sd.send(
    new CreateServiceCommand({ Name: uniqueName('spicedb').replace('_', '-'), NamespaceId: namespaceId, DnsConfig: { RoutingPolicy: 'MULTIVALUE', DnsRecords: [{ Type: 'A', TTL: 5 }] } }),
  );
  return { clusterArn, serviceName: SERVICE, cloudMapServiceId: svc.Service?.Id as string, dispatchPort: 50053 };
}

async function instances(serviceId: string): Promise<{ id: string; ip: string | undefined }[]> {
  const res = await sd.send(new ListInstancesCommand({ ServiceId: serviceId }));
  return (res.Instances ?? []).map((i) => ({ id: i.Id as string, ip: i.Attributes?.AWS_INSTANCE_IPV4 }));
}

interface MotoTask {
  task: Task;
  taskArn: string;
  taskId: string;
  ip: string;
  events: EcsTaskEventStream;
}

/** RunTask in moto, with the event stream of that task. */
async function runTask(opts: { group?: string; taskDefinition?: string } = {}): Promise<MotoTask> {
  const group = opts.group ?? `service:${SERVICE}`;
  const taskDefinitionArn = opts.taskDefinition ?? plainTaskDef;
  const res = await ecs.send(
    new RunTaskCommand({
      cluster: clusterArn,
      taskDefinition: taskDefinitionArn,
      launchType: 'FARGATE',
      group,
      startedBy: 'ecs-svc/5169280574093855189',
      networkConfiguration: { awsvpcConfiguration: { subnets: [net.subnetId], securityGroups: [net.securityGroupId] } },
    }),
  );
  const task = res.tasks?.[0] as Task;
  const taskArn = task.taskArn as string;
  const ip = task.attachments?.[0]?.details?.find((d) => d.name === 'privateIPv4Address')?.value as string;
  const events = new EcsTaskEventStream({ clusterArn, taskArn, taskDefinitionArn, group, subnetId: net.subnetId, availabilityZone: 'us-east-1a' });
  return { task, taskArn, taskId: taskArn.slice(taskArn.lastIndexOf('/') + 1), ip, events };
}

const running = (t: MotoTask): EcsTaskStateChangeEvent => t.events.next({ lastStatus: 'RUNNING', desiredStatus: 'RUNNING', ip: t.ip });
const stopRequested = (t: MotoTask): EcsTaskStateChangeEvent =>
  t.events.next({ lastStatus: 'RUNNING', desiredStatus: 'STOPPED', ip: t.ip, stopCode: 'ServiceSchedulerInitiated', stoppedReason: 'Scaling activity initiated by (deployment ecs-svc/5169280574093855189)' });
const stopped = (t: MotoTask): EcsTaskStateChangeEvent => t.events.next({ lastStatus: 'STOPPED', desiredStatus: 'STOPPED', ip: t.ip, stopCode: 'ServiceSchedulerInitiated', exitCode: 0 });
/** Stops every task moto runs in the cluster. */
async function stopAll(): Promise<void> {
  const res = await ecs.send(new ListTasksCommand({ cluster: clusterArn, desiredStatus: 'RUNNING' }));
  for (const arn of res.taskArns ?? []) await ecs.send(new StopTaskCommand({ cluster: clusterArn, task: arn, reason: 'test clean-up' }));
}
const stopInMoto = (t: MotoTask) => ecs.send(new StopTaskCommand({ cluster: clusterArn, task: t.taskArn, reason: 'Scaling activity' }));

describe('registrar against moto', () => {
  let target: DiscoveryTarget;
  let deps: DiscoveryDeps;
  beforeEach(async () => {
    target = await freshTarget();
    deps = { ecs, serviceDiscovery: sd, target, options };
  });

  it('moto holds its tasks RUNNING and reports them in the DescribeTasks shape (the test premise)', async () => {
    const t = await runTask();
    for (let i = 0; i < 3; i++) {
      const res = await ecs.send(new DescribeTasksCommand({ cluster: clusterArn, tasks: [t.taskArn] }));
      expect(res.tasks?.[0]).toMatchObject({ lastStatus: 'RUNNING', desiredStatus: 'RUNNING', group: 'service:spicedb' });
      expect(res.tasks?.[0]?.attachments?.[0]?.type).toBe('ElasticNetworkInterface');
    }
    expect(t.ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  });

  it('registers a RUNNING service task with the IP ECS reports and the dispatch port', async () => {
    const t = await runTask();
    t.events.next({ lastStatus: 'PROVISIONING', desiredStatus: 'RUNNING' });
    const out = await handleTaskStateChange(running(t), deps);
    expect(out).toMatchObject({ action: 'registered', taskId: t.taskId });
    const res = await sd.send(new ListInstancesCommand({ ServiceId: target.cloudMapServiceId }));
    expect(res.Instances).toEqual([
      {
        Id: t.taskId,
        Attributes: expect.objectContaining({ AWS_INSTANCE_IPV4: t.ip, AWS_INSTANCE_PORT: '50053', ECS_SERVICE_NAME: SERVICE, ECS_TASK_DEFINITION_FAMILY: 'spicedb', ECS_TASK_VERSION: '2' }),
      },
    ]);
  });

  it('adds no second entry for a duplicate event (moto would append one per RegisterInstance)', async () => {
    const t = await runTask();
    const event = running(t);
    await handleTaskStateChange(event, deps);
    const again = await handleTaskStateChange(structuredClone(event), deps);
    expect(again).toMatchObject({ action: 'unchanged', reason: 'already registered' });
    expect(await instances(target.cloudMapServiceId)).toEqual([{ id: t.taskId, ip: t.ip }]);
  });

  it("ignores another service's task and a standalone task", async () => {
    const other = await runTask({ group: 'service:other' });
    const standalone = await runTask({ group: 'family:spicedb' });
    await expect(handleTaskStateChange(running(other), deps)).resolves.toMatchObject({ action: 'ignored' });
    await expect(handleTaskStateChange(running(standalone), deps)).resolves.toMatchObject({ action: 'ignored' });
    expect(await instances(target.cloudMapServiceId)).toEqual([]);
  });

  it('does nothing for a task with no IP yet', async () => {
    const t = await runTask();
    const provisioning = t.events.next({ lastStatus: 'PROVISIONING', desiredStatus: 'RUNNING' });
    expect(provisioning.detail.attachments[0]?.details.some((d) => d.name === 'privateIPv4Address')).toBe(false);
    await expect(handleTaskStateChange(provisioning, deps)).resolves.toMatchObject({ action: 'unchanged' });
    expect(await instances(target.cloudMapServiceId)).toEqual([]);
  });

  it('deregisters on desiredStatus STOPPED, and STOPPED afterwards is harmless', async () => {
    const t = await runTask();
    await handleTaskStateChange(running(t), deps);
    await stopInMoto(t);
    await expect(handleTaskStateChange(stopRequested(t), deps)).resolves.toMatchObject({ action: 'deregistered', taskId: t.taskId });
    expect(await instances(target.cloudMapServiceId)).toEqual([]);
    await expect(handleTaskStateChange(stopped(t), deps)).resolves.toMatchObject({ action: 'unchanged' });
  });

  it('does not re-register on a stale RUNNING event after the stop (DescribeTasks says STOPPED)', async () => {
    const t = await runTask();
    const late = running(t);
    await handleTaskStateChange(late, deps);
    await stopInMoto(t);
    await handleTaskStateChange(stopRequested(t), deps);
    const out = await handleTaskStateChange(structuredClone(late), deps);
    expect(out).toMatchObject({ action: 'unchanged', reason: expect.stringMatching(/^current state: task is stopping/) });
    expect(await instances(target.cloudMapServiceId)).toEqual([]);
  });

  it('waits for health when the task definition has a health check (moto never reports task health)', async () => {
    const t = await runTask({ taskDefinition: checkedTaskDef });
    const out = await handleTaskStateChange(running(t), deps);
    expect(out).toMatchObject({ action: 'unchanged', reason: expect.stringMatching(/^waiting for health check/) });
    expect(await instances(target.cloudMapServiceId)).toEqual([]);
  });

  it('removes every entry of an id that moto holds twice', async () => {
    const t = await runTask();
    for (const ip of [t.ip, '10.0.1.250']) {
      await sd.send(new RegisterInstanceCommand({ ServiceId: target.cloudMapServiceId, InstanceId: t.taskId, Attributes: { AWS_INSTANCE_IPV4: ip, AWS_INSTANCE_PORT: '50053' } }));
    }
    expect(await instances(target.cloudMapServiceId)).toHaveLength(2);
    await stopInMoto(t);
    await expect(handleTaskStateChange(stopRequested(t), deps)).resolves.toMatchObject({ action: 'deregistered' });
    expect(await instances(target.cloudMapServiceId)).toEqual([]);
  });
});

describe('reconciler against moto', () => {
  it('registers the missing, removes the stale, and then changes nothing', async () => {
    const target = await freshTarget();
    const deps = { ecs, serviceDiscovery: sd, target, options };
    // Earlier tests share the cluster: start from no running task.
    await stopAll();
    const mine = [await runTask(), await runTask(), await runTask()];
    await runTask({ group: 'service:other' });
    const gone = await runTask();
    await stopInMoto(gone);
    await sd.send(new RegisterInstanceCommand({ ServiceId: target.cloudMapServiceId, InstanceId: gone.taskId, Attributes: { AWS_INSTANCE_IPV4: gone.ip, AWS_INSTANCE_PORT: '50053' } }));

    const first = await reconcile(deps);
    const ids = (ts: MotoTask[]) => ts.map((t) => t.taskId).sort();
    expect({ added: [...first.added].sort(), removed: first.removed }).toEqual({ added: ids(mine), removed: [gone.taskId] });
    expect(first.kept).toEqual([]);

    const second = await reconcile(deps);
    expect({ added: second.added, removed: second.removed, kept: [...second.kept].sort() }).toEqual({ added: [], removed: [], kept: ids(mine) });
    expect(second.calls.RegisterInstance ?? 0).toBe(0);
    expect(second.calls.DeregisterInstance ?? 0).toBe(0);
    // Exactly one entry per running task: no needless re-registration piled up in moto.
    const now = await instances(target.cloudMapServiceId);
    expect(now.map((i) => i.id).sort()).toEqual(ids(mine));
    expect(now.map((i) => i.ip).sort()).toEqual(mine.map((t) => t.ip).sort());

    // A task stopped without its events reaching the registrar leaves at the next run.
    const [lost] = mine;
    await stopInMoto(lost as MotoTask);
    const third = await reconcile(deps);
    expect(third).toMatchObject({ added: [], removed: [lost?.taskId] });
    for (const t of mine) await stopInMoto(t).catch(() => undefined);
  });
});

describe('handlers wired to moto', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  async function loadHandlers(target: DiscoveryTarget) {
    Object.assign(process.env, moto.awsEnv, {
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      ECS_CLUSTER_ARN: target.clusterArn,
      ECS_SERVICE_NAME: target.serviceName,
      CLOUD_MAP_SERVICE_ID: target.cloudMapServiceId,
      DISPATCH_PORT: String(target.dispatchPort),
    });
    let mods: { registrar: typeof RegistrarModule; reconciler: typeof ReconcilerModule } | undefined;
    // Fresh modules: the handlers read the environment and build clients at load.
    await jest.isolateModulesAsync(async () => {
      mods = { registrar: await import('../../functions/registrar/handler'), reconciler: await import('../../functions/reconciler/handler') };
    });
    return mods as NonNullable<typeof mods>;
  }

  it('the registrar handler registers from an EventBridge event, and refuses another event type', async () => {
    const target = await freshTarget();
    const { registrar } = await loadHandlers(target);
    const t = await runTask();
    await expect(registrar.handler(running(t))).resolves.toMatchObject({ action: 'registered', taskId: t.taskId });
    expect(await instances(target.cloudMapServiceId)).toEqual([{ id: t.taskId, ip: t.ip }]);
    await expect(registrar.handler({ ...running(t), 'detail-type': 'ECS Container Instance State Change' })).rejects.toThrow(/expected source "aws.ecs" and detail-type "ECS Task State Change"/);
    await stopInMoto(t);
  });

  it('the reconciler handler runs on a scheduled event and on a manual invocation', async () => {
    const target = await freshTarget();
    const { reconciler } = await loadHandlers(target);
    const scheduled = { version: '0', id: 'e1', 'detail-type': 'Scheduled Event', source: 'aws.events', account: '123456789012', time: '2026-01-01T00:00:00Z', region: AWS_REGION, resources: [], detail: {} };
    await stopAll();
    const t = await runTask();
    const first = await reconciler.handler(scheduled);
    expect(first.added).toEqual([t.taskId]);
    const second = await reconciler.handler({});
    expect(second).toMatchObject({ added: [], removed: [], kept: [t.taskId] });
    await expect(reconciler.handler(undefined)).resolves.toMatchObject({ added: [], kept: [t.taskId] });
    await stopInMoto(t);
  });
});

describe('property against moto Cloud Map (ECS lifecycles in memory: moto has no task health or versions)', () => {
  it('after one reconcile, moto holds exactly the running tasks', async () => {
    const fakeEcs = new FakeEcs();
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (scenario) => {
        fakeEcs.reset();
        const target = { ...FAKE_TARGET, cloudMapServiceId: (await freshTarget()).cloudMapServiceId };
        const deps: DiscoveryDeps = { ecs: fakeEcs.client, serviceDiscovery: sd, target, options };
        const tasks = await play(scenario, target, {
          emitted: (t) => fakeEcs.put(t.describe(), t.healthChecked),
          deliver: async (e) => void (await handleTaskStateChange(e, deps)),
          registered: async () => new Set((await instances(target.cloudMapServiceId)).map((i) => i.id)),
        });
        await reconcile(deps);
        const now = await instances(target.cloudMapServiceId);
        const expected = tasks.filter(shouldBeRegistered);
        expect(now.map((i) => i.id).sort()).toEqual(expected.map((t) => t.taskId).sort());
        expect(now.map((i) => i.ip).sort()).toEqual(expected.map((t) => t.ip).sort());
      }),
      { numRuns: 15 },
    );
  });
});
