/**
 * The migration custom resource with the real `spicedb datastore migrate
 * head` on the rig's PostgreSQL. ECS is faked (aws-sdk-client-mock) by a
 * runner that does what Fargate would with template.yaml's migration task
 * definition: runs the image's entrypoint (`spicedb`) with the container's
 * Command and Environment, the datastore URI injected as its secret, and
 * ships the output to the container's log stream (in the emulator's
 * CloudWatch Logs, as awslogs would). So the template's migration container
 * is exercised against the real binary, and the resource's Reason carries
 * SpiceDB's real words.
 */
import path from 'node:path';
import { DescribeTasksCommand, ECSClient, ListTasksCommand, RunTaskCommand, type Task } from '@aws-sdk/client-ecs';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CloudWatchLogsClient, CreateLogGroupCommand, CreateLogStreamCommand, PutLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { cloudWatchLogTail } from '../../functions/migration-resource/cloudwatch-logs';
import { handleMigration } from '../../functions/migration-resource/migrate';
import { customResourceHandler, type CustomResourceResponse } from '../../functions/shared/custom-resource';
import { component, ROOT } from '../../scripts/rig/components';
import { freePort, loopbackHost } from '../../scripts/rig/net';
import { startMoto, type Moto } from '../../scripts/rig/moto';
import { startPostgres, type Postgres } from '../../scripts/rig/postgres';
import { ManagedProcess, run } from '../../scripts/rig/process';
import { startSpiceDB } from '../../scripts/rig/spicedb';
import { loadTemplate, type Json } from '../../scripts/rig/template';
import { logger } from '../../functions/shared/logger';
import { Evaluator } from '../helpers/cfn';
import { lambdaContext } from '../helpers/lambda-context';
import { startResponseServer, type ResponseServer } from '../helpers/response-server';
import { Cleanup, randomKey, uniqueName } from '../helpers/rig';

const cleanup = new Cleanup();
const CLUSTER = 'arn:aws:ecs:us-east-1:123456789012:cluster/mystack-Cluster-AbCdEfGh1234';
const URI_SECRET = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:DatastoreUriSecret-AbCdEf';
let moto: Moto;
let pg: Postgres;
let responses: ResponseServer;
let logs: CloudWatchLogsClient;
let logGroup: string;
let container: { Command: string[]; Environment: { Name: string; Value: string }[]; Secrets: { Name: string; ValueFrom: string }[] };

/** What the fake ECS runs; the secret store maps the secret ARN to a URI. */
const secrets = new Map<string, string>();
const tasks = new Map<string, { task: Task; done: Promise<void>; exitCode?: number }>();

const fakeEcs = new ECSClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
const ecsMock = mockClient(fakeEcs);

function runFakeTask(input: { cluster?: string; taskDefinition?: string; startedBy?: string }): Task {
  const taskId = randomBytes(16).toString('hex');
  const taskArn = `${CLUSTER.replace(':cluster/', ':task/')}/${taskId}`;
  const env: NodeJS.ProcessEnv = { PATH: '/usr/bin:/bin', HOME: '/tmp' };
  for (const e of container.Environment) env[e.Name] = e.Value;
  // ECS resolves each secret's valueFrom and sets it as the variable.
  for (const s of container.Secrets) env[s.Name] = secrets.get(s.ValueFrom);
  const proc = new ManagedProcess({ name: `migrate ${taskId}`, command: component('SPICEDB_BIN'), args: container.Command, env });
  const task: Task = {
    taskArn,
    clusterArn: input.cluster,
    taskDefinitionArn: input.taskDefinition,
    startedBy: input.startedBy,
    group: 'family:mystack-spicedb-migrate',
    launchType: 'FARGATE',
    lastStatus: 'RUNNING',
    desiredStatus: 'RUNNING',
    createdAt: new Date(),
    containers: [{ name: 'migrate', lastStatus: 'RUNNING', taskArn }],
  };
  const entry: { task: Task; done: Promise<void>; exitCode?: number } = { task, done: Promise.resolve() };
  entry.done = (async () => {
    const code = await proc.wait();
    // awslogs: every line of output becomes an event of migrate/migrate/<task id>.
    const lines = proc.tail(1_000_000).split('\n').filter((l) => l.trim() !== '');
    const logStreamName = `migrate/migrate/${taskId}`;
    await logs.send(new CreateLogStreamCommand({ logGroupName: logGroup, logStreamName }));
    if (lines.length > 0) {
      const t0 = Date.now() - lines.length;
      await logs.send(new PutLogEventsCommand({ logGroupName: logGroup, logStreamName, logEvents: lines.map((message, i) => ({ timestamp: t0 + i, message })) }));
    }
    entry.exitCode = code ?? -1;
    task.lastStatus = 'STOPPED';
    task.desiredStatus = 'STOPPED';
    task.stopCode = 'EssentialContainerExited';
    task.stoppedReason = 'Essential container in task exited';
    task.containers = [{ name: 'migrate', lastStatus: 'STOPPED', exitCode: entry.exitCode, taskArn }];
  })();
  tasks.set(taskArn, entry);
  return task;
}

function event(uri: string, changes: Record<string, Json> = {}): CloudFormationCustomResourceEvent {
  secrets.set(URI_SECRET, uri);
  const base = JSON.parse(readFileSync(path.join(ROOT, 'test', 'events', 'migration-resource', 'create.json'), 'utf8')) as CloudFormationCustomResourceEvent;
  return {
    ...base,
    RequestId: `${randomBytes(4).toString('hex')}-1111-4222-8333-${randomBytes(6).toString('hex')}`,
    ResponseURL: responses.url('migration'),
    ResourceProperties: { ...base.ResourceProperties, ClusterArn: CLUSTER, DatastoreUriSecretArn: URI_SECRET, LogGroupName: logGroup, ...changes },
  };
}

const handler = customResourceHandler((e, ctx) =>
  handleMigration(e, ctx, { ecs: fakeEcs, logs: cloudWatchLogTail(logs) }, { pollMs: 100, logAttempts: 3, logRetryMs: 200, tailLines: 50 }),
);

async function answer(e: CloudFormationCustomResourceEvent): Promise<CustomResourceResponse> {
  await handler(e, lambdaContext(120_000, 'MigrationFunction'));
  return (await responses.waitFor(e.ResponseURL))[0] as CustomResourceResponse;
}

async function psql(uri: string, sql: string): Promise<string> {
  return (await run({ name: 'psql', command: path.join(component('POSTGRES_BIN_DIR'), 'psql'), args: [uri, '-Atc', sql] })).trim();
}

beforeAll(async () => {
  // The functions' decision logs are not what these tests read.
  logger.setLogLevel('SILENT');
  moto = cleanup.add(await startMoto({ host: loopbackHost() }));
  pg = cleanup.add(await startPostgres({ host: loopbackHost() }));
  responses = cleanup.add(await startResponseServer());
  logs = new CloudWatchLogsClient({ endpoint: moto.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  cleanup.defer(() => logs.destroy());
  logGroup = uniqueName('mystack-SpiceDBLogGroup');
  await logs.send(new CreateLogGroupCommand({ logGroupName: logGroup }));

  // The migration container of template.yaml (an existing-PostgreSQL stack).
  const resources = new Evaluator(loadTemplate(path.join(ROOT, 'template.yaml')), {
    VpcId: 'vpc-0123456789abcdef0',
    PrivateSubnetIds: 'subnet-0aaaaaaaaaaaaaaa1',
    ClientCidr: '10.0.0.0/16',
    Datastore: 'postgres',
    DatastoreUriSecretArn: URI_SECRET,
  }).resources();
  container = ((resources.MigrationTaskDefinition?.Properties?.ContainerDefinitions ?? []) as unknown as (typeof container)[])[0] as typeof container;
  expect(container.Secrets).toEqual([{ Name: 'SPICEDB_DATASTORE_CONN_URI', ValueFrom: URI_SECRET }]);

  ecsMock.on(ListTasksCommand).callsFake((input: { family?: string }) => ({
    taskArns: input.family === 'mystack-spicedb-migrate' ? [...tasks.keys()] : [],
  }));
  ecsMock.on(RunTaskCommand).callsFake((input: { cluster?: string; taskDefinition?: string; startedBy?: string }) => ({ tasks: [runFakeTask(input)], failures: [] }));
  ecsMock.on(DescribeTasksCommand).callsFake((input: { tasks?: string[] }) => ({
    tasks: (input.tasks ?? []).map((arn) => tasks.get(arn)?.task).filter((t): t is Task => t !== undefined).map((t) => structuredClone(t)),
    failures: [],
  }));
  cleanup.defer(async () => {
    await Promise.all([...tasks.values()].map((t) => t.done));
    ecsMock.restore();
  });
});

afterAll(() => cleanup.runAll());

describe('with the real spicedb datastore migrate head', () => {
  it('migrates a fresh database to the binary\'s head revision, after which spicedb serve reports SERVING', async () => {
    const uri = await pg.createDatabase(uniqueName('fresh'));
    expect(await answer(event(uri))).toMatchObject({ Status: 'SUCCESS', Data: { Migrated: 'true' } });
    const head = (await run({ name: 'spicedb datastore head', command: component('SPICEDB_BIN'), args: ['datastore', 'head', '--datastore-engine=postgres', '--skip-release-check'] }))
      .trim()
      .split('\n')
      .pop();
    expect(await psql(uri, 'select version_num from alembic_version')).toBe(head);
    // SpiceDB serves only a datastore at its head (rig: waits for SERVING, or throws).
    const spicedb = await startSpiceDB({ host: loopbackHost(), presharedKey: randomKey(), datastoreUri: uri });
    await spicedb.stop();
  });

  it('is a no-op success on a database already at head (a new image without migrations)', async () => {
    const uri = await pg.createDatabase(uniqueName('athead'));
    expect(await answer(event(uri))).toMatchObject({ Status: 'SUCCESS' });
    const before = await psql(uri, 'select version_num from alembic_version');
    expect(await answer(event(uri, { Image: 'ghcr.io/authzed/spicedb:v1.56.3' }))).toMatchObject({ Status: 'SUCCESS', Data: { Migrated: 'true' } });
    expect(await psql(uri, 'select version_num from alembic_version')).toBe(before);
  });

  it('answers FAILED naming the newer release when the database is ahead of the image (a rollback after a migration)', async () => {
    const uri = await pg.createDatabase(uniqueName('ahead'));
    expect(await answer(event(uri))).toMatchObject({ Status: 'SUCCESS' });
    await psql(uri, "update alembic_version set version_num = 'add-a-future-release-table'");
    const out = await answer(event(uri, { Image: 'ghcr.io/authzed/spicedb:v1.56.2' }));
    expect(out.Status).toBe('FAILED');
    expect(out.Reason).toMatch(/^the datastore was migrated by a newer SpiceDB release than ghcr\.io\/authzed\/spicedb:v1\.56\.2/);
    expect(out.Reason).toContain('exited with code 1');
    expect(out.Reason).toContain('unable to find migration for revision');
  });

  it('answers FAILED with SpiceDB\'s connection error for an unreachable database, never showing the password', async () => {
    const host = loopbackHost();
    const port = await freePort(host);
    const password = `pw_${randomBytes(8).toString('hex')}`;
    const out = await answer(event(`postgres://spicedb:${password}@${host}:${port}/spicedb?sslmode=disable`));
    expect(out.Status).toBe('FAILED');
    expect(out.Reason).toMatch(/datastore migration with ghcr\.io\/authzed\/spicedb:v1\.56\.2 failed: .*exited with code 1/);
    expect(out.Reason).toContain('connection refused');
    expect(JSON.stringify(out)).not.toContain(password);
  });
});
