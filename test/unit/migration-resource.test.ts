/**
 * The migration custom resource's decisions and edge cases, with ECS faked
 * by aws-sdk-client-mock (responses in DescribeTasks' real shape,
 * test/events/migration-resource) and the log reader faked in memory. The
 * happy path against the emulator and the real `spicedb datastore migrate`
 * are in test/integration/migration-resource*.test.ts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DescribeTasksCommand, ECSClient, ListTasksCommand, RunTaskCommand, type Task } from '@aws-sdk/client-ecs';
import type { CloudFormationCustomResourceEvent, CloudFormationCustomResourceUpdateEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import type { LogTail } from '../../functions/migration-resource/cloudwatch-logs';
import { decide } from '../../functions/migration-resource/decide';
import { handleMigration, MigrationFailedError, physicalIdFor, runMigration, type MigrationTuning } from '../../functions/migration-resource/migrate';
import { MigrationTimeoutError, startedByFor } from '../../functions/migration-resource/migration-task';
import { evaluate, formatLogLine, redact, tailText, TAIL_BUDGET_CHARS } from '../../functions/migration-resource/outcome';
import { KNOWN_PROPERTIES, parseProperties } from '../../functions/migration-resource/properties';
import { ValidationError } from '../../functions/shared/errors';

const EVENTS = path.join(__dirname, '..', 'events', 'migration-resource');
const fixture = <T>(name: string): T => structuredClone(JSON.parse(readFileSync(path.join(EVENTS, name), 'utf8')) as T);
const logLines = (name: string): string[] => readFileSync(path.join(EVENTS, name), 'utf8').trim().split('\n');

/** DescribeTasks JSON as the SDK hands it over: timestamps as Dates. */
function describedTasks(name: string): Task[] {
  const out = fixture<{ tasks: Record<string, unknown>[] }>(name);
  return out.tasks.map((t) => {
    const task: Record<string, unknown> = { ...t };
    for (const k of ['createdAt', 'startedAt', 'stoppedAt', 'stoppingAt', 'pullStartedAt', 'pullStoppedAt', 'executionStoppedAt', 'connectivityAt']) {
      if (typeof task[k] === 'string') task[k] = new Date(task[k]);
    }
    return task as Task;
  });
}

const createEvent = (): CloudFormationCustomResourceEvent => fixture('create.json');

function updateEvent(changes: Record<string, unknown>): CloudFormationCustomResourceUpdateEvent {
  const create = createEvent();
  return {
    ...create,
    RequestType: 'Update',
    PhysicalResourceId: 'mystack/DatastoreMigration',
    ResourceProperties: { ...create.ResourceProperties, ...changes },
    OldResourceProperties: { ...create.ResourceProperties },
  } as CloudFormationCustomResourceUpdateEvent;
}

const FAST: MigrationTuning = { pollMs: 5, logAttempts: 3, logRetryMs: 5, tailLines: 50 };

function budget(ms = 60_000): { remainingMs(): number; signal: AbortSignal } {
  const end = Date.now() + ms;
  return { remainingMs: () => Math.max(0, end - Date.now()), signal: new AbortController().signal };
}

function logs(streams: Record<string, string[][]> = {}): LogTail & { reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    lastMessages(group, stream) {
      reads.push(`${group}/${stream}`);
      const answers = streams[stream];
      if (!answers) return Promise.resolve(undefined);
      return Promise.resolve(answers.length > 1 ? answers.shift() : answers[0]);
    },
  };
}

const props = () => parseProperties(createEvent().ResourceProperties);
const ecsMock = mockClient(ECSClient);
const ecs = new ECSClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });

beforeEach(() => ecsMock.reset());

describe('properties', () => {
  it('reads what the template sends, with the family from the task definition ARN', () => {
    expect(props()).toMatchObject({
      clusterArn: 'arn:aws:ecs:us-east-1:123456789012:cluster/mystack-Cluster-AbCdEfGh1234',
      family: 'mystack-spicedb-migrate',
      containerName: 'migrate',
      subnets: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0aaaaaaaaaaaaaaa2'],
      assignPublicIp: 'DISABLED',
      platformVersion: 'LATEST',
      serveTaskDefinitionArn: 'arn:aws:ecs:us-east-1:123456789012:task-definition/mystack-spicedb:7',
    });
  });

  it('rejects an unknown property, listing the known ones', () => {
    const raw = { ...createEvent().ResourceProperties, Imgae: 'typo' };
    expect(() => parseProperties(raw)).toThrow(ValidationError);
    expect(() => parseProperties(raw)).toThrow(`unknown property "Imgae"; known properties: ${KNOWN_PROPERTIES.join(', ')}`);
  });

  it.each([
    ['a missing image', { Image: undefined }, /Image is required/],
    ['a subnet that is not a subnet id', { Subnets: ['subnet-1', 'vpc-0a'] }, /Subnets\[1\]: expected a subnet id \(subnet-\.\.\.\), got "vpc-0a"/],
    ['no security group', { SecurityGroups: [] }, /SecurityGroups: expected at least one security group id/],
    ['a task definition without revision', { TaskDefinitionArn: 'arn:aws:ecs:us-east-1:123456789012:task-definition/fam' }, /TaskDefinitionArn: expected a task definition ARN with its revision/],
    ['a bad public IP setting', { AssignPublicIp: 'yes' }, /AssignPublicIp: expected "ENABLED" or "DISABLED", got "yes"/],
  ])('names the property for %s', (_case, changes, message) => {
    const raw: Record<string, unknown> = { ...createEvent().ResourceProperties, ...changes };
    for (const [k, v] of Object.entries(changes)) if (v === undefined) delete raw[k];
    expect(() => parseProperties(raw)).toThrow(message);
  });
});

describe('decide', () => {
  it.each([
    ['Create', true, createEvent()],
    ['Update with the same image and datastore (e.g. a CPU change)', false, updateEvent({ ServeTaskDefinitionArn: 'arn:aws:ecs:us-east-1:123456789012:task-definition/mystack-spicedb:8' })],
    ['Update to a new image', true, updateEvent({ Image: 'ghcr.io/authzed/spicedb:v1.57.0' })],
    ['Update to another datastore', true, updateEvent({ DatastoreUriSecretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:other-AbCdEf' })],
  ] as [string, boolean, CloudFormationCustomResourceEvent][])('%s -> migrate: %s', (_case, migrate, event) => {
    expect(decide(event, parseProperties(event.ResourceProperties)).migrate).toBe(migrate);
  });

  it('never migrates on Delete', () => {
    const del = { ...createEvent(), RequestType: 'Delete', PhysicalResourceId: 'mystack/DatastoreMigration' } as CloudFormationCustomResourceEvent;
    expect(decide(del, props())).toEqual({ migrate: false, reason: 'delete: migrations are never reverted' });
  });

  it('keeps a stable physical id: stack/logical id on Create, the known one after', () => {
    expect(physicalIdFor(createEvent())).toBe('mystack/DatastoreMigration');
    expect(physicalIdFor(updateEvent({}))).toBe('mystack/DatastoreMigration');
  });
});

describe('outcome', () => {
  const [failed] = describedTasks('describe-tasks-stopped-exit-1.json');
  const [unpulled] = describedTasks('describe-tasks-failed-to-start.json');

  it('succeeds only on exit code 0 of the migration container', () => {
    const ok: Task = { ...failed, containers: [{ ...failed!.containers![0], exitCode: 0 }] };
    expect(evaluate(ok, 'migrate', 'img', [])).toEqual({ ok: true, exitCode: 0 });
    expect(evaluate(failed!, 'migrate', 'img', []).ok).toBe(false);
  });

  it('reports the exit code, the stop reason and SpiceDB\'s own last words', () => {
    const out = evaluate(failed!, 'migrate', 'ghcr.io/authzed/spicedb:v1.56.2', logLines('log-connection-refused.jsonl'));
    expect(out).toMatchObject({ ok: false, datastoreAhead: false });
    const message = (out as { message: string }).message;
    expect(message).toContain('datastore migration with ghcr.io/authzed/spicedb:v1.56.2 failed: task 9a8b7c6d5e4f40312a1b2c3d4e5f6a7b');
    expect(message).toContain('container migrate exited with code 1, stop code EssentialContainerExited, "Essential container in task exited"');
    expect(message).toMatch(/\nerror terminated with errors error: unable to create migration driver for postgres: failed to connect to `user=spicedb database=spicedb`: 10\.64\.131\.200:5432/);
  });

  it('says the datastore is ahead of the image when SpiceDB cannot find its revision (a rollback after a migration)', () => {
    const out = evaluate(failed!, 'migrate', 'ghcr.io/authzed/spicedb:v1.55.0', logLines('log-datastore-ahead.jsonl'));
    expect(out).toMatchObject({ ok: false, datastoreAhead: true });
    expect((out as { message: string }).message).toMatch(
      /^the datastore was migrated by a newer SpiceDB release than ghcr\.io\/authzed\/spicedb:v1\.55\.0: SpiceDB has no down migrations/,
    );
  });

  it('explains a task that never started (no log stream), with ECS\'s reason', () => {
    const message = (evaluate(unpulled!, 'migrate', 'img', undefined) as { message: string }).message;
    expect(message).toContain('did not run to an exit code, stop code TaskFailedToStart');
    expect(message).toContain('CannotPullContainerError');
    expect(message).toContain('(no log stream: the container never started)');
  });

  it.each([
    ['a URI password', 'dial postgres://spicedb:s3cr3t-Pa55@db.internal:5432/spicedb failed', 'dial postgres://spicedb:***@db.internal:5432/spicedb failed'],
    ['a DSN password', 'host=db user=spicedb password=s3cr3t-Pa55 dbname=x', 'host=db user=spicedb password=*** dbname=x'],
    ['a quoted DSN password', "password='s3 cr3t' sslmode=require", 'password=*** sslmode=require'],
  ])('masks %s', (_case, text, masked) => {
    expect(redact(text)).toBe(masked);
  });

  it('masks secrets inside the reported tail too', () => {
    const line = JSON.stringify({ level: 'error', error: 'failed to connect to postgres://u:topsecret@h:5432/d', message: 'terminated with errors' });
    const message = (evaluate(failed!, 'migrate', 'img', [line]) as { message: string }).message;
    expect(message).not.toContain('topsecret');
    expect(message).toContain('postgres://u:***@h:5432/d');
  });

  it('keeps the newest lines within the budget, oldest first', () => {
    const lines = Array.from({ length: 200 }, (_, i) => `line ${String(i).padStart(3, '0')} ${'x'.repeat(40)}`);
    const tail = tailText(lines);
    expect(tail.length).toBeLessThanOrEqual(TAIL_BUDGET_CHARS);
    const kept = tail.split('\n');
    expect(kept.at(-1)).toContain('line 199');
    expect(kept[0]).not.toContain('line 000');
    expect(kept.map((l) => Number(l.slice(5, 8)))).toEqual([...kept.keys()].map((i) => 200 - kept.length + i));
  });

  it('shortens SpiceDB\'s JSON lines to level, message and error; other lines stay as they are', () => {
    expect(formatLogLine('{"level":"info","engine":"postgres","time":"t","message":"migrating datastore"}')).toBe('info migrating datastore');
    expect(formatLogLine('plain text\n')).toBe('plain text');
    expect(formatLogLine('{not json')).toBe('{not json');
  });
});

describe('runMigration (ECS faked)', () => {
  const [stoppedFailed] = describedTasks('describe-tasks-stopped-exit-1.json');
  const taskArn = stoppedFailed!.taskArn as string;
  const mine = startedByFor(createEvent().RequestId);
  const running = (t: Partial<Task> = {}): Task => ({ ...stoppedFailed, lastStatus: 'RUNNING', desiredStatus: 'RUNNING', stopCode: undefined, containers: [{ name: 'migrate', lastStatus: 'RUNNING' }], ...t });
  const stopped = (exitCode: number, t: Partial<Task> = {}): Task => ({ ...stoppedFailed, containers: [{ ...stoppedFailed!.containers![0], exitCode }], ...t });

  it('starts one task with the network and idempotency token of the request, and succeeds on exit 0', async () => {
    ecsMock.on(ListTasksCommand).resolves({ taskArns: [] });
    ecsMock.on(RunTaskCommand).resolves({ tasks: [{ taskArn }], failures: [] });
    ecsMock.on(DescribeTasksCommand).resolvesOnce({ failures: [{ arn: taskArn, reason: 'MISSING' }] }).resolvesOnce({ tasks: [running()] }).resolves({ tasks: [stopped(0)] });
    const task = await runMigration({ ecs, logs: logs() }, props(), createEvent().RequestId, budget(), FAST);
    expect(task.taskArn).toBe(taskArn);
    const run = ecsMock.commandCalls(RunTaskCommand);
    expect(run).toHaveLength(1);
    expect(run[0]!.args[0].input).toEqual({
      cluster: props().clusterArn,
      taskDefinition: props().taskDefinitionArn,
      launchType: 'FARGATE',
      platformVersion: 'LATEST',
      count: 1,
      startedBy: mine,
      clientToken: createEvent().RequestId,
      networkConfiguration: { awsvpcConfiguration: { subnets: props().subnets, securityGroups: props().securityGroups, assignPublicIp: 'DISABLED' } },
    });
    // Listed by family (startedBy cannot be combined with other filters), both desired statuses.
    expect(ecsMock.commandCalls(ListTasksCommand).map((c) => c.args[0].input)).toEqual([
      { cluster: props().clusterArn, family: 'mystack-spicedb-migrate', desiredStatus: 'RUNNING', nextToken: undefined },
      { cluster: props().clusterArn, family: 'mystack-spicedb-migrate', desiredStatus: 'STOPPED', nextToken: undefined },
      { cluster: props().clusterArn, family: 'mystack-spicedb-migrate', desiredStatus: 'RUNNING', nextToken: undefined },
      { cluster: props().clusterArn, family: 'mystack-spicedb-migrate', desiredStatus: 'STOPPED', nextToken: undefined },
    ]);
  });

  it('waits for the task this request already started (re-delivery) instead of starting another', async () => {
    ecsMock.on(ListTasksCommand, { desiredStatus: 'RUNNING' }).resolves({ taskArns: [taskArn] });
    ecsMock.on(ListTasksCommand, { desiredStatus: 'STOPPED' }).resolves({ taskArns: [] });
    ecsMock.on(DescribeTasksCommand).resolvesOnce({ tasks: [running({ startedBy: mine })] }).resolvesOnce({ tasks: [running({ startedBy: mine })] }).resolves({ tasks: [stopped(0)] });
    await runMigration({ ecs, logs: logs() }, props(), createEvent().RequestId, budget(), FAST);
    expect(ecsMock.commandCalls(RunTaskCommand)).toHaveLength(0);
  });

  it('never runs two migrations at once: waits for another request\'s task to stop first', async () => {
    const other = 'arn:aws:ecs:us-east-1:123456789012:task/mystack-Cluster-AbCdEfGh1234/00000000000000000000000000000001';
    ecsMock.on(ListTasksCommand, { desiredStatus: 'RUNNING' }).resolves({ taskArns: [other] });
    ecsMock.on(ListTasksCommand, { desiredStatus: 'STOPPED' }).resolves({ taskArns: [] });
    ecsMock
      .on(DescribeTasksCommand, { tasks: [other] })
      .resolvesOnce({ tasks: [running({ taskArn: other, startedBy: 'cfn-another-request' })] })
      .resolvesOnce({ tasks: [running({ taskArn: other, startedBy: 'cfn-another-request' })] })
      .resolves({ tasks: [stopped(0, { taskArn: other, startedBy: 'cfn-another-request' })] });
    ecsMock.on(RunTaskCommand).resolves({ tasks: [{ taskArn }] });
    ecsMock.on(DescribeTasksCommand, { tasks: [taskArn] }).resolves({ tasks: [stopped(0)] });
    await runMigration({ ecs, logs: logs() }, props(), createEvent().RequestId, budget(), FAST);
    const order = ecsMock.calls().map((c) => c.args[0].constructor.name);
    // The run comes after the other task was seen STOPPED (third describe of it).
    expect(order.lastIndexOf('ListTasksCommand')).toBeLessThan(order.indexOf('RunTaskCommand'));
    expect(ecsMock.commandCalls(DescribeTasksCommand, { tasks: [other] })).toHaveLength(3);
    expect(ecsMock.commandCalls(RunTaskCommand)).toHaveLength(1);
  });

  it('fails with ECS\'s reasons when RunTask places nothing', async () => {
    ecsMock.on(ListTasksCommand).resolves({ taskArns: [] });
    ecsMock.on(RunTaskCommand).resolves({ tasks: [], failures: [{ arn: props().taskDefinitionArn, reason: 'RESOURCE:ENI', detail: 'no free IP addresses in subnet-0aaaaaaaaaaaaaaa1' }] });
    await expect(runMigration({ ecs, logs: logs() }, props(), createEvent().RequestId, budget(), FAST)).rejects.toThrow(
      'ECS did not start the migration task: RESOURCE:ENI no free IP addresses in subnet-0aaaaaaaaaaaaaaa1',
    );
  });

  it('fails with the log tail, read again while CloudWatch Logs lags the exit', async () => {
    ecsMock.on(ListTasksCommand).resolves({ taskArns: [] });
    ecsMock.on(RunTaskCommand).resolves({ tasks: [{ taskArn }] });
    ecsMock.on(DescribeTasksCommand).resolves({ tasks: [stopped(1)] });
    const reader = logs({ 'migrate/migrate/9a8b7c6d5e4f40312a1b2c3d4e5f6a7b': [[], logLines('log-connection-refused.jsonl')] });
    const run = runMigration({ ecs, logs: reader }, props(), createEvent().RequestId, budget(), FAST);
    await expect(run).rejects.toBeInstanceOf(MigrationFailedError);
    await expect(run).rejects.toThrow(/exited with code 1[\s\S]*connection refused/);
    expect(reader.reads).toEqual(Array(2).fill('mystack-SpiceDBLogGroup-AbCdEfGh1234/migrate/migrate/9a8b7c6d5e4f40312a1b2c3d4e5f6a7b'));
  });

  it('fails before the invocation\'s time is up when the task keeps running, naming where its log is', async () => {
    ecsMock.on(ListTasksCommand).resolves({ taskArns: [] });
    ecsMock.on(RunTaskCommand).resolves({ tasks: [{ taskArn }] });
    ecsMock.on(DescribeTasksCommand).resolves({ tasks: [running()] });
    const time = budget(1500);
    const run = runMigration({ ecs, logs: logs() }, props(), createEvent().RequestId, time, { ...FAST, pollMs: 100 });
    await expect(run).rejects.toBeInstanceOf(MigrationTimeoutError);
    await expect(run).rejects.toThrow(/still RUNNING after \d+ s .*migrate\/migrate\/9a8b7c6d5e4f40312a1b2c3d4e5f6a7b in mystack-SpiceDBLogGroup/);
    // Its own message, while time was left for the wrapper to answer with it.
    expect(time.remainingMs()).toBeGreaterThan(0);
    expect(ecsMock.commandCalls(RunTaskCommand)).toHaveLength(1);
  });
});

describe('handleMigration', () => {
  it('answers a Delete at once, whatever its properties, without touching ECS', async () => {
    const del = { ...createEvent(), RequestType: 'Delete', PhysicalResourceId: 'mystack/DatastoreMigration', ResourceProperties: { Bogus: 1 } } as unknown as CloudFormationCustomResourceEvent;
    await expect(handleMigration(del, budget(), { ecs, logs: logs() }, FAST)).resolves.toEqual({ physicalResourceId: 'mystack/DatastoreMigration' });
    expect(ecsMock.calls()).toHaveLength(0);
  });

  it('passes the serving task definition through without a migration when only it changed', async () => {
    const event = updateEvent({ ServeTaskDefinitionArn: 'arn:aws:ecs:us-east-1:123456789012:task-definition/mystack-spicedb:8' });
    await expect(handleMigration(event, budget(), { ecs, logs: logs() }, FAST)).resolves.toEqual({
      physicalResourceId: 'mystack/DatastoreMigration',
      data: { Image: 'ghcr.io/authzed/spicedb:v1.56.2', ServeTaskDefinitionArn: 'arn:aws:ecs:us-east-1:123456789012:task-definition/mystack-spicedb:8', Migrated: 'false' },
    });
    expect(ecsMock.calls()).toHaveLength(0);
  });

  it('returns the task and the serving task definition after a migration', async () => {
    const [t] = describedTasks('describe-tasks-stopped-exit-1.json');
    ecsMock.on(ListTasksCommand).resolves({ taskArns: [] });
    ecsMock.on(RunTaskCommand).resolves({ tasks: [{ taskArn: t!.taskArn }] });
    ecsMock.on(DescribeTasksCommand).resolves({ tasks: [{ ...t, containers: [{ ...t!.containers![0], exitCode: 0 }] }] });
    await expect(handleMigration(createEvent(), budget(), { ecs, logs: logs() }, FAST)).resolves.toEqual({
      physicalResourceId: 'mystack/DatastoreMigration',
      data: {
        Image: 'ghcr.io/authzed/spicedb:v1.56.2',
        ServeTaskDefinitionArn: 'arn:aws:ecs:us-east-1:123456789012:task-definition/mystack-spicedb:7',
        Migrated: 'true',
        TaskArn: t!.taskArn,
      },
    });
  });

  it('rejects bad properties before any ECS call', async () => {
    const event = updateEvent({ Subnets: [] });
    await expect(handleMigration(event, budget(), { ecs, logs: logs() }, FAST)).rejects.toThrow(/Subnets: expected at least one subnet id/);
    expect(ecsMock.calls()).toHaveLength(0);
  });
});
