/**
 * Custom::SpiceDBMigration end to end against the emulator: the bundled
 * MigrationFunction (esbuild, from the template's build metadata) answering
 * a local ResponseURL, moto's ECS running the migration task definition of
 * template.yaml in a VPC subnet, and moto's CloudWatch Logs holding the
 * container's log. moto ends every task with exit code 0, so the failure
 * paths fake only ECS (aws-sdk-client-mock, DescribeTasks in the real
 * shape) and still read the log from the emulator.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CreateSecurityGroupCommand, CreateSubnetCommand, CreateVpcCommand, EC2Client, ModifyVpcAttributeCommand } from '@aws-sdk/client-ec2';
import { CreateClusterCommand, DescribeTasksCommand, ECSClient, ListTasksCommand, RegisterTaskDefinitionCommand, RunTaskCommand, type Task } from '@aws-sdk/client-ecs';
import type { CloudFormationCustomResourceEvent, Context } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { build } from 'esbuild';
import { CloudWatchLogsClient, CreateLogGroupCommand, CreateLogStreamCommand, PutLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { cloudWatchLogTail } from '../../functions/migration-resource/cloudwatch-logs';
import { handleMigration, runMigration } from '../../functions/migration-resource/migrate';
import { parseProperties } from '../../functions/migration-resource/properties';
import { customResourceHandler, MAX_RESPONSE_BYTES, type CustomResourceResponse } from '../../functions/shared/custom-resource';
import { functionBuilds } from '../../scripts/build';
import { ROOT } from '../../scripts/rig/components';
import { loopbackHost } from '../../scripts/rig/net';
import { setEcsTaskTransition, startMoto, type Moto } from '../../scripts/rig/moto';
import { loadTemplate, type Json } from '../../scripts/rig/template';
import { logger } from '../../functions/shared/logger';
import { Evaluator } from '../helpers/cfn';
import { lambdaContext } from '../helpers/lambda-context';
import { startResponseServer, type ResponseServer } from '../helpers/response-server';
import { Cleanup, uniqueName } from '../helpers/rig';

type Handler = (event: CloudFormationCustomResourceEvent, context: Context) => Promise<void>;

const EVENTS = path.join(ROOT, 'test', 'events', 'migration-resource');
const cleanup = new Cleanup();
let moto: Moto;
let responses: ResponseServer;
let bundled: Handler;
let ecs: ECSClient;
let logs: CloudWatchLogsClient;
let props: Record<string, Json>;
const savedEnv = { ...process.env };

/** CloudFormation's PascalCase container definition as the ECS API's camelCase (option maps kept as they are). */
function apiShape(value: Json, key = ''): Json {
  if (Array.isArray(value)) return value.map((v) => apiShape(v));
  if (typeof value !== 'object' || value === null || key === 'Options') return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k.charAt(0).toLowerCase() + k.slice(1), apiShape(v, k)]));
}

async function bundleMigrationFunction(): Promise<string> {
  const fn = functionBuilds().find((b) => b.logicalId === 'MigrationFunction');
  if (!fn) throw new Error('template.yaml has no MigrationFunction');
  const outdir = mkdtempSync(path.join(tmpdir(), 'spicedb-ecs-migration-bundle-'));
  cleanup.defer(() => rmSync(outdir, { recursive: true, force: true }));
  await build({ ...fn.options, outdir });
  return path.join(outdir, path.basename(fn.bundle));
}

function createEvent(changes: Record<string, Json> = {}): CloudFormationCustomResourceEvent {
  const base = JSON.parse(readFileSync(path.join(EVENTS, 'create.json'), 'utf8')) as CloudFormationCustomResourceEvent;
  return { ...base, RequestId: `${uniqueName('req')}-0000-4000-8000-000000000000`.slice(0, 36), ResponseURL: responses.url('migration'), ResourceProperties: { ...base.ResourceProperties, ...props, ...changes } };
}

function updateOf(previous: CloudFormationCustomResourceEvent, changes: Record<string, Json>): CloudFormationCustomResourceEvent {
  return {
    ...previous,
    RequestType: 'Update',
    RequestId: `${uniqueName('req')}-0000-4000-8000-000000000000`.slice(0, 36),
    ResponseURL: responses.url('migration'),
    PhysicalResourceId: 'mystack/DatastoreMigration',
    ResourceProperties: { ...previous.ResourceProperties, ...changes },
    OldResourceProperties: previous.ResourceProperties,
  } as CloudFormationCustomResourceEvent;
}

async function invoke(handler: Handler, event: CloudFormationCustomResourceEvent, remainingMs = 120_000): Promise<CustomResourceResponse> {
  await handler(event, lambdaContext(remainingMs, 'MigrationFunction'));
  const answers = await responses.waitFor(event.ResponseURL);
  return answers[answers.length - 1] as CustomResourceResponse;
}

async function migrationTasks(): Promise<Task[]> {
  const arns = new Set<string>();
  for (const desiredStatus of ['RUNNING', 'STOPPED'] as const) {
    for (const arn of (await ecs.send(new ListTasksCommand({ cluster: String(props.ClusterArn), family: 'mystack-spicedb-migrate', desiredStatus }))).taskArns ?? []) arns.add(arn);
  }
  if (arns.size === 0) return [];
  return (await ecs.send(new DescribeTasksCommand({ cluster: String(props.ClusterArn), tasks: [...arns] }))).tasks ?? [];
}

beforeAll(async () => {
  // The functions' decision logs are not what these tests read.
  logger.setLogLevel('SILENT');
  moto = cleanup.add(await startMoto({ host: loopbackHost() }));
  responses = cleanup.add(await startResponseServer());
  const config = { endpoint: moto.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
  ecs = new ECSClient(config);
  const ec2 = new EC2Client(config);
  cleanup.defer(() => {
    ecs.destroy();
    ec2.destroy();
  });
  logs = new CloudWatchLogsClient(config);
  cleanup.defer(() => logs.destroy());

  // A VPC as the stack's: DNS hostnames on (ECS RunTask with awsvpc needs it in the emulator), a subnet, groups.
  const vpcId = (await ec2.send(new CreateVpcCommand({ CidrBlock: '10.64.0.0/16' }))).Vpc?.VpcId as string;
  await ec2.send(new ModifyVpcAttributeCommand({ VpcId: vpcId, EnableDnsHostnames: { Value: true } }));
  const subnetId = (await ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: '10.64.128.0/19' }))).Subnet?.SubnetId as string;
  const groups = await Promise.all(
    ['migration', 'datastore-clients'].map(async (n) => (await ec2.send(new CreateSecurityGroupCommand({ GroupName: uniqueName(n), Description: n, VpcId: vpcId }))).GroupId as string),
  );

  // The migration task definition exactly as template.yaml declares it (with the cpu/memory the emulator wants per container).
  const resources = new Evaluator(loadTemplate(path.join(ROOT, 'template.yaml')), {
    VpcId: vpcId,
    PrivateSubnetIds: subnetId,
    ClientCidr: '10.0.0.0/16',
  }).resources();
  const td = resources.MigrationTaskDefinition?.Properties as Record<string, Json>;
  const uriSecret = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:DatastoreUriSecret-AbCdEf';
  const container = apiShape((td.ContainerDefinitions as Json[])[0] as Json) as Record<string, Json>;
  container.secrets = [{ name: 'SPICEDB_DATASTORE_CONN_URI', valueFrom: uriSecret }];
  const logGroup = uniqueName('mystack-SpiceDBLogGroup');
  container.logConfiguration = { logDriver: 'awslogs', options: { 'awslogs-group': logGroup, 'awslogs-region': 'us-east-1', 'awslogs-stream-prefix': 'migrate' } };
  const registered = await ecs.send(
    new RegisterTaskDefinitionCommand({
      family: String(td.Family),
      requiresCompatibilities: ['FARGATE'],
      networkMode: 'awsvpc',
      cpu: String(td.Cpu),
      memory: String(td.Memory),
      containerDefinitions: [{ ...(container as object), cpu: 256, memory: 512 }],
    }),
  );
  const cluster = (await ecs.send(new CreateClusterCommand({ clusterName: uniqueName('mystack-Cluster') }))).cluster?.clusterArn as string;
  await logs.send(new CreateLogGroupCommand({ logGroupName: logGroup }));
  props = {
    ClusterArn: cluster,
    TaskDefinitionArn: registered.taskDefinition?.taskDefinitionArn as string,
    Subnets: [subnetId],
    SecurityGroups: groups,
    DatastoreUriSecretArn: uriSecret,
    LogGroupName: logGroup,
  };

  // The function as Lambda runs it: the esbuild bundle, its module-scope clients pointed at the emulator.
  Object.assign(process.env, moto.awsEnv, { POWERTOOLS_LOG_LEVEL: 'SILENT' });
  const file = await bundleMigrationFunction();
  // As the Node runtime loads `handler.handler`.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  bundled = (require(file) as { handler: Handler }).handler;
});

afterAll(async () => {
  process.env = savedEnv;
  await cleanup.runAll();
});

describe('the bundled function against the emulator', () => {
  let created: CloudFormationCustomResourceEvent;

  beforeAll(() => setEcsTaskTransition(moto.endpoint, { progression: 'immediate' }));

  it('Create: runs one migration task in the stack\'s subnet and answers SUCCESS with the serving task definition', async () => {
    created = createEvent();
    const answer = await invoke(bundled, created);
    expect(answer).toMatchObject({
      Status: 'SUCCESS',
      PhysicalResourceId: 'mystack/DatastoreMigration',
      Data: { Migrated: 'true', Image: 'ghcr.io/authzed/spicedb:v1.56.2', ServeTaskDefinitionArn: 'arn:aws:ecs:us-east-1:123456789012:task-definition/mystack-spicedb:7' },
    });
    const tasks = await migrationTasks();
    expect(tasks).toHaveLength(1);
    expect(tasks[0]).toMatchObject({
      taskArn: answer.Data?.TaskArn,
      startedBy: `cfn-${created.RequestId}`,
      launchType: 'FARGATE',
      lastStatus: 'STOPPED',
      taskDefinitionArn: props.TaskDefinitionArn,
    });
    const eni = tasks[0]?.attachments?.[0]?.details?.find((d) => d.name === 'subnetId');
    expect(eni?.value).toBe((props.Subnets as string[])[0]);
  });

  it('a re-delivered Create finds its task and starts no second one', async () => {
    const again = { ...created, ResponseURL: responses.url('migration') };
    expect(await invoke(bundled, again)).toMatchObject({ Status: 'SUCCESS', Data: { Migrated: 'true' } });
    expect(await migrationTasks()).toHaveLength(1);
  });

  it('an Update that keeps image and datastore starts nothing and passes the new serving task definition through', async () => {
    const update = updateOf(created, { ServeTaskDefinitionArn: 'arn:aws:ecs:us-east-1:123456789012:task-definition/mystack-spicedb:8' });
    expect(await invoke(bundled, update)).toMatchObject({
      Status: 'SUCCESS',
      Data: { Migrated: 'false', ServeTaskDefinitionArn: 'arn:aws:ecs:us-east-1:123456789012:task-definition/mystack-spicedb:8' },
    });
    expect(await migrationTasks()).toHaveLength(1);
  });

  it('an Update to a new image migrates again, once', async () => {
    const update = updateOf(created, { Image: 'ghcr.io/authzed/spicedb:v1.57.0' });
    expect(await invoke(bundled, update)).toMatchObject({ Status: 'SUCCESS', Data: { Migrated: 'true', Image: 'ghcr.io/authzed/spicedb:v1.57.0' } });
    expect(await migrationTasks()).toHaveLength(2);
  });

  it('a Delete answers SUCCESS and runs nothing', async () => {
    const del = { ...updateOf(created, {}), RequestType: 'Delete' } as CloudFormationCustomResourceEvent;
    expect(await invoke(bundled, del)).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: 'mystack/DatastoreMigration' });
    expect(await migrationTasks()).toHaveLength(2);
  });

  it('bad properties answer FAILED naming them, without a task', async () => {
    const answer = await invoke(bundled, createEvent({ Subnets: ['vpc-0123'] }));
    expect(answer).toMatchObject({ Status: 'FAILED', Reason: expect.stringContaining('Subnets[0]: expected a subnet id (subnet-...), got "vpc-0123"') });
    expect(await migrationTasks()).toHaveLength(2);
  });
});

describe('waiting on a running task in the emulator', () => {
  beforeAll(() => setEcsTaskTransition(moto.endpoint, { progression: 'manual', times: 1 }));

  it('polls through the lifecycle (each DescribeTasks moves the task on) until STOPPED', async () => {
    const event = createEvent({ Image: 'ghcr.io/authzed/spicedb:v1.58.0' });
    const p = parseProperties(event.ResourceProperties);
    const end = Date.now() + 60_000;
    const task = await runMigration({ ecs, logs: cloudWatchLogTail(logs) }, p, event.RequestId, { remainingMs: () => end - Date.now(), signal: new AbortController().signal }, {
      pollMs: 20,
      logAttempts: 1,
      logRetryMs: 10,
      tailLines: 50,
    });
    expect(task.lastStatus).toBe('STOPPED');
    expect(task.startedBy).toBe(`cfn-${event.RequestId}`);
  });
});

describe('failures, with the log in the emulator (ECS faked: its tasks always exit 0)', () => {
  // Only this client is faked; the emulator's stays real.
  const fakeEcs = new ECSClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
  const ecsMock = mockClient(fakeEcs);
  afterAll(() => ecsMock.restore());

  function failedTask(taskId: string, exitCode: number): Task {
    const t = (JSON.parse(readFileSync(path.join(EVENTS, 'describe-tasks-stopped-exit-1.json'), 'utf8')) as { tasks: Task[] }).tasks[0] as Task;
    const taskArn = `${String(props.ClusterArn).replace(':cluster/', ':task/')}/${taskId}`;
    return { ...t, taskArn, clusterArn: String(props.ClusterArn), createdAt: new Date(), containers: [{ ...t.containers![0], taskArn, exitCode }] };
  }

  async function writeLog(taskId: string, lines: string[]): Promise<void> {
    const logStreamName = `migrate/migrate/${taskId}`;
    await logs.send(new CreateLogStreamCommand({ logGroupName: String(props.LogGroupName), logStreamName }));
    const start = Date.now() - lines.length;
    await logs.send(new PutLogEventsCommand({ logGroupName: String(props.LogGroupName), logStreamName, logEvents: lines.map((message, i) => ({ timestamp: start + i, message })) }));
  }

  const handler = customResourceHandler((event, ctx) =>
    handleMigration(event, ctx, { ecs: fakeEcs, logs: cloudWatchLogTail(logs) }, { pollMs: 10, logAttempts: 2, logRetryMs: 10, tailLines: 50 }),
  );

  beforeEach(() => ecsMock.reset());

  it('a non-zero exit answers FAILED with the end of the container\'s log, within 4096 bytes, credentials masked', async () => {
    const taskId = 'c0ffee00000000000000000000000001';
    const filler = Array.from({ length: 300 }, (_, i) => JSON.stringify({ level: 'info', message: `migrating step ${i}`, time: 't' }));
    const last = readFileSync(path.join(EVENTS, 'log-connection-refused.jsonl'), 'utf8').trim().split('\n');
    const leaky = JSON.stringify({ level: 'warn', message: 'retrying postgres://spicedb:Sup3rSecretPw@db.internal:5432/spicedb', time: 't' });
    await writeLog(taskId, [...filler, leaky, ...last]);
    ecsMock.on(ListTasksCommand).resolves({ taskArns: [] });
    ecsMock.on(RunTaskCommand).resolves({ tasks: [{ taskArn: failedTask(taskId, 1).taskArn }] });
    ecsMock.on(DescribeTasksCommand).resolves({ tasks: [failedTask(taskId, 1)] });

    const event = createEvent();
    await handler(event, lambdaContext(60_000, 'MigrationFunction'));
    const [raw] = responses.requests.filter((r) => r.url.startsWith(new URL(event.ResponseURL).pathname));
    const answer = JSON.parse(raw!.body.toString('utf8')) as CustomResourceResponse;
    expect(raw!.body.length).toBeLessThanOrEqual(MAX_RESPONSE_BYTES);
    expect(answer.Status).toBe('FAILED');
    expect(answer.Reason).toContain(`task ${taskId}: container migrate exited with code 1`);
    expect(answer.Reason).toMatch(/error terminated with errors error: unable to create migration driver for postgres: .*connection refused$/);
    expect(answer.Reason).toContain('retrying postgres://spicedb:***@db.internal:5432/spicedb');
    expect(answer.Reason).not.toContain('Sup3rSecretPw');
    expect(answer.Reason).not.toContain('[truncated]');
  });

  it('reads the last lines of the log stream, and nothing for a stream that does not exist', async () => {
    const taskId = 'c0ffee00000000000000000000000004';
    await writeLog(taskId, ['first', 'second', 'third']);
    const tail = cloudWatchLogTail(logs);
    expect(await tail.lastMessages(String(props.LogGroupName), `migrate/migrate/${taskId}`, 2)).toEqual(['second', 'third']);
    expect(await tail.lastMessages(String(props.LogGroupName), 'migrate/migrate/no-such-task', 2)).toBeUndefined();
  });

  it('a task that never started answers FAILED with ECS\'s reason (the emulator has no stream for it)', async () => {
    const t = (JSON.parse(readFileSync(path.join(EVENTS, 'describe-tasks-failed-to-start.json'), 'utf8')) as { tasks: Task[] }).tasks[0] as Task;
    const taskArn = `${String(props.ClusterArn).replace(':cluster/', ':task/')}/deadbeef000000000000000000000002`;
    ecsMock.on(ListTasksCommand).resolves({ taskArns: [] });
    ecsMock.on(RunTaskCommand).resolves({ tasks: [{ taskArn }] });
    ecsMock.on(DescribeTasksCommand).resolves({ tasks: [{ ...t, taskArn }] });
    const answer = await invoke(handler, createEvent());
    expect(answer.Status).toBe('FAILED');
    expect(answer.Reason).toContain('stop code TaskFailedToStart');
    expect(answer.Reason).toContain('CannotPullContainerError');
    expect(answer.Reason).toContain('(no log stream: the container never started)');
  });

  it('a datastore ahead of the image answers FAILED saying so, in SpiceDB\'s words', async () => {
    const taskId = 'c0ffee00000000000000000000000003';
    await writeLog(taskId, readFileSync(path.join(EVENTS, 'log-datastore-ahead.jsonl'), 'utf8').trim().split('\n'));
    ecsMock.on(ListTasksCommand).resolves({ taskArns: [] });
    ecsMock.on(RunTaskCommand).resolves({ tasks: [{ taskArn: failedTask(taskId, 1).taskArn }] });
    ecsMock.on(DescribeTasksCommand).resolves({ tasks: [failedTask(taskId, 1)] });
    const answer = await invoke(handler, createEvent({ Image: 'ghcr.io/authzed/spicedb:v1.55.0' }));
    expect(answer.Status).toBe('FAILED');
    expect(answer.Reason).toMatch(/^the datastore was migrated by a newer SpiceDB release than ghcr\.io\/authzed\/spicedb:v1\.55\.0/);
    expect(answer.Reason).toContain('unable to find migration for revision');
  });
});
