/**
 * The registrar's EventBridge rule as it is deployed: taken from the built
 * template after the SAM transform (AWS::Events::Rule), its intrinsics
 * resolved against a cluster made in the emulator, and installed there with
 * PutRule + PutTargets (an SQS queue). ECS Task State Change events in the
 * real shape (test/events/ecs, retargeted) go through PutEvents: the ones of
 * this cluster's SpiceDB service must arrive, the others must not. The
 * emulator has no TestEventPattern, but its rules route events this way.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { CreateClusterCommand, ECSClient } from '@aws-sdk/client-ecs';
import { EventBridgeClient, PutEventsCommand, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import { CreateQueueCommand, DeleteMessageCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { loopbackHost } from '../../scripts/rig/net';
import { startMoto, type Moto } from '../../scripts/rig/moto';
import type { Json, Resource, Template } from '../../scripts/rig/template';
import { Evaluator } from '../helpers/cfn';
import { Cleanup, uniqueName } from '../helpers/rig';
import { samBuild, samTransform } from '../helpers/sam';

const cleanup = new Cleanup();
let moto: Moto;
let transformed: Template;
let clusterArn: string;
let ev: Evaluator;
let rule: Resource;
let queueUrl: string;
/** A control: a rule matching only `source: aws.ecs`, so the emulator is seen delivering the events the real rule filters out. */
let controlQueueUrl: string;
let events: EventBridgeClient;
let sqs: SQSClient;

const SERVICE = 'mystack-spicedb';
const REQUIRED = { VpcId: 'vpc-0123456789abcdef0', PrivateSubnetIds: 'subnet-0aaaaaaaaaaaaaaa1,subnet-0aaaaaaaaaaaaaaa2', ClientCidr: '10.0.0.0/16' };

interface EcsEvent {
  source: string;
  'detail-type': string;
  resources: string[];
  time: string;
  detail: Record<string, Json> & { clusterArn: string; group: string; taskArn: string };
}

const ECS_EVENTS = path.join(__dirname, '..', 'events', 'ecs');
const sample = (name: string): EcsEvent => structuredClone(JSON.parse(readFileSync(path.join(ECS_EVENTS, `${name}.json`), 'utf8')) as EcsEvent);

let seq = 0;
/** A sample event moved to this cluster and service (or to what `changes` says), with a task id of its own. */
function ecsEvent(name: string, changes: { clusterArn?: string; group?: string; source?: string; detailType?: string } = {}): EcsEvent {
  const e = sample(name);
  const cluster = changes.clusterArn ?? clusterArn;
  const taskId = `${(++seq).toString(16).padStart(8, '0')}${'0'.repeat(24)}`;
  const taskArn = `${cluster.replace(':cluster/', ':task/')}/${taskId}`;
  e.detail.clusterArn = cluster;
  e.detail.group = changes.group ?? `service:${SERVICE}`;
  e.detail.taskArn = taskArn;
  e.resources = [taskArn];
  if (changes.source) e.source = changes.source;
  if (changes.detailType) e['detail-type'] = changes.detailType;
  return e;
}

beforeAll(async () => {
  const build = await samBuild();
  cleanup.defer(() => build.remove());
  transformed = await samTransform<Template>(build.template);
  moto = cleanup.add(await startMoto({ host: loopbackHost() }));
  const config = { endpoint: moto.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
  const ecs = new ECSClient(config);
  events = new EventBridgeClient(config);
  sqs = new SQSClient(config);
  cleanup.defer(() => {
    ecs.destroy();
    events.destroy();
    sqs.destroy();
  });
  clusterArn = (await ecs.send(new CreateClusterCommand({ clusterName: uniqueName('mystack-Cluster') }))).cluster?.clusterArn as string;
  ev = new Evaluator(transformed, REQUIRED, { 'Cluster.Arn': clusterArn });
  const rules = Object.entries(ev.resources()).filter(
    ([, r]) => r.Type === 'AWS::Events::Rule' && ((r.Properties?.Targets ?? []) as { Arn: string }[]).some((t) => t.Arn === '<RegistrarFunction.Arn>'),
  );
  expect(rules.map(([id]) => id)).toEqual(['RegistrarFunctionTaskStateChange']);
  rule = rules[0]![1];

  queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: uniqueName('registrar-events') }))).QueueUrl as string;
  const queueArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))).Attributes?.QueueArn as string;
  const ruleName = uniqueName('registrar');
  await events.send(new PutRuleCommand({ Name: ruleName, EventPattern: JSON.stringify(rule.Properties?.EventPattern), State: 'ENABLED' }));
  await events.send(new PutTargetsCommand({ Rule: ruleName, Targets: [{ Id: 'queue', Arn: queueArn }] }));

  controlQueueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: uniqueName('all-ecs-events') }))).QueueUrl as string;
  const controlArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: controlQueueUrl, AttributeNames: ['QueueArn'] }))).Attributes?.QueueArn as string;
  const controlRule = uniqueName('control');
  await events.send(new PutRuleCommand({ Name: controlRule, EventPattern: JSON.stringify({ source: ['aws.ecs'] }), State: 'ENABLED' }));
  await events.send(new PutTargetsCommand({ Rule: controlRule, Targets: [{ Id: 'queue', Arn: controlArn }] }));
});

afterAll(() => cleanup.runAll());

async function deliver(list: EcsEvent[]): Promise<void> {
  for (const e of list) {
    const out = await events.send(
      new PutEventsCommand({
        Entries: [{ Source: e.source, DetailType: e['detail-type'], Resources: e.resources, Time: new Date(e.time), Detail: JSON.stringify(e.detail) }],
      }),
    );
    expect(out.FailedEntryCount ?? 0).toBe(0);
  }
}

/** Task ARNs of the events in the queue: until `expected` have arrived, then until the queue stays empty for a while. */
async function received(expected: number, url = queueUrl): Promise<string[]> {
  const arns: string[] = [];
  let emptyPolls = 0;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && (arns.length < expected || emptyPolls < 3)) {
    const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    const messages = out.Messages ?? [];
    emptyPolls = messages.length === 0 ? emptyPolls + 1 : 0;
    for (const m of messages) {
      arns.push((JSON.parse(m.Body ?? '{}') as { detail: { taskArn: string } }).detail.taskArn);
      await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle }));
    }
  }
  return arns.sort();
}

describe('the registrar rule of the built template', () => {
  it('is filtered to this cluster\'s ARN and the service\'s group', () => {
    expect(rule.Properties?.EventPattern).toEqual({
      source: ['aws.ecs'],
      'detail-type': ['ECS Task State Change'],
      detail: { clusterArn: [clusterArn], group: [`service:${SERVICE}`] },
    });
  });

  it('retries deliveries and dead-letters them into the stack\'s queue', () => {
    const [target] = rule.Properties?.Targets as Record<string, Json>[];
    expect(target).toMatchObject({
      Arn: '<RegistrarFunction.Arn>',
      RetryPolicy: { MaximumRetryAttempts: expect.any(Number), MaximumEventAgeInSeconds: expect.any(Number) },
      DeadLetterConfig: { Arn: '<EventsDeadLetterQueue.Arn>' },
    });
    const invoke = Object.values(ev.resources()).find((r) => r.Type === 'AWS::Lambda::EventInvokeConfig' && r.Properties?.FunctionName === '<RegistrarFunction>');
    expect(invoke?.Properties).toMatchObject({ MaximumRetryAttempts: 2, DestinationConfig: { OnFailure: { Destination: '<EventsDeadLetterQueue.Arn>' } } });
  });

  it('lets EventBridge invoke the registrar', () => {
    expect(ev.resources().RegistrarFunctionTaskStateChangePermission?.Properties).toMatchObject({
      Action: 'lambda:InvokeFunction',
      Principal: 'events.amazonaws.com',
      SourceArn: '<RegistrarFunctionTaskStateChange.Arn>',
    });
  });

  it('routes every lifecycle event of this service\'s tasks, and nothing else', async () => {
    const lifecycle = readdirSync(ECS_EVENTS)
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.replace(/\.json$/, ''));
    expect(lifecycle.length).toBeGreaterThanOrEqual(3);
    const matching = lifecycle.map((name) => ecsEvent(name));
    const otherCluster = clusterArn.replace(/cluster\/.*$/, 'cluster/other-cluster');
    const others = [
      ecsEvent('task-running', { group: 'service:another-service' }),
      // A prefix of the name is another service.
      ecsEvent('task-running', { group: `service:${SERVICE}-canary` }),
      // The migration task runs in the same cluster, from its family.
      ecsEvent('task-stopped', { group: 'family:mystack-spicedb-migrate' }),
      ecsEvent('task-running', { clusterArn: otherCluster }),
      ecsEvent('task-running', { detailType: 'ECS Container Instance State Change' }),
      ecsEvent('task-running', { source: 'my.application' }),
    ];
    // Interleaved, as they would come.
    await deliver([others[0]!, matching[0]!, others[1]!, others[2]!, ...matching.slice(1), ...others.slice(3)]);
    expect(await received(matching.length)).toEqual(matching.map((e) => e.detail.taskArn).sort());
    // The emulator did deliver the others wherever a rule allowed them (all but the foreign source).
    const allEcs = [...matching, ...others].filter((e) => e.source === 'aws.ecs');
    expect(await received(allEcs.length, controlQueueUrl)).toEqual(allEcs.map((e) => e.detail.taskArn).sort());
  });
});

describe('the reconciler schedule of the built template', () => {
  it('is a rule firing every minute at the reconciler', () => {
    const schedules = Object.values(ev.resources()).filter(
      (r) => r.Type === 'AWS::Events::Rule' && ((r.Properties?.Targets ?? []) as { Arn: string }[]).some((t) => t.Arn === '<ReconcilerFunction.Arn>'),
    );
    expect(schedules.map((r) => r.Properties?.ScheduleExpression)).toEqual(['rate(1 minute)']);
  });
});
