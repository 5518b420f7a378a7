/**
 * The AWS emulator is real enough for the handlers: the SDK clients reach
 * moto through AWS_ENDPOINT_URL for Cloud Map, ECS, and EventBridge rule
 * routing (moto has no TestEventPattern, but PutRule + an SQS target +
 * PutEvents do route; see field-facts.md).
 */
import { EC2Client, CreateVpcCommand, CreateSubnetCommand, ModifyVpcAttributeCommand } from '@aws-sdk/client-ec2';
import {
  ECSClient, CreateClusterCommand, RegisterTaskDefinitionCommand, RunTaskCommand, DescribeTasksCommand, StopTaskCommand,
} from '@aws-sdk/client-ecs';
import { EventBridgeClient, PutRuleCommand, PutTargetsCommand, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import {
  ServiceDiscoveryClient, CreatePrivateDnsNamespaceCommand, CreateServiceCommand, RegisterInstanceCommand,
  ListInstancesCommand, DeregisterInstanceCommand, GetOperationCommand, ListNamespacesCommand,
} from '@aws-sdk/client-servicediscovery';
import { SQSClient, CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { startMoto, AWS_REGION, type Moto } from '../../scripts/rig/moto';
import { Cleanup, uniqueName } from '../helpers/rig';

const cleanup = new Cleanup();
let moto: Moto;
const clientConfig = () => ({
  endpoint: moto.endpoint,
  region: AWS_REGION,
  credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
});

let vpcId: string;
let subnetId: string;

beforeAll(async () => {
  moto = cleanup.add(await startMoto());
  const ec2 = new EC2Client(clientConfig());
  const vpc = await ec2.send(new CreateVpcCommand({ CidrBlock: '10.0.0.0/16' }));
  vpcId = vpc.Vpc?.VpcId as string;
  await ec2.send(new ModifyVpcAttributeCommand({ VpcId: vpcId, EnableDnsHostnames: { Value: true } }));
  const subnet = await ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: '10.0.1.0/24' }));
  subnetId = subnet.Subnet?.SubnetId as string;
});
afterAll(() => cleanup.runAll());

describe('Cloud Map through the SDK against the emulator', () => {
  it('creates a namespace and service, registers, lists and deregisters an instance', async () => {
    const sd = new ServiceDiscoveryClient({ ...clientConfig(), disableHostPrefix: true });
    const nsName = `${uniqueName('ns')}.local`;
    const op = await sd.send(new CreatePrivateDnsNamespaceCommand({ Name: nsName, Vpc: vpcId }));
    const nsOp = await sd.send(new GetOperationCommand({ OperationId: op.OperationId }));
    expect(nsOp.Operation?.Status).toBe('SUCCESS');
    const namespaces = await sd.send(new ListNamespacesCommand({}));
    const ns = namespaces.Namespaces?.find((n) => n.Name === nsName);
    expect(ns?.Id).toBeDefined();

    const svc = await sd.send(
      new CreateServiceCommand({
        Name: 'spicedb',
        NamespaceId: ns?.Id,
        DnsConfig: { RoutingPolicy: 'MULTIVALUE', DnsRecords: [{ Type: 'A', TTL: 5 }] },
      }),
    );
    const serviceId = svc.Service?.Id as string;
    await sd.send(
      new RegisterInstanceCommand({
        ServiceId: serviceId,
        InstanceId: '0123456789abcdef0123456789abcdef',
        Attributes: { AWS_INSTANCE_IPV4: '10.0.1.7', AWS_INSTANCE_PORT: '50053' },
      }),
    );
    const listed = await sd.send(new ListInstancesCommand({ ServiceId: serviceId }));
    expect(listed.Instances?.map((i) => [i.Id, i.Attributes?.AWS_INSTANCE_IPV4])).toEqual([
      ['0123456789abcdef0123456789abcdef', '10.0.1.7'],
    ]);

    await sd.send(new DeregisterInstanceCommand({ ServiceId: serviceId, InstanceId: '0123456789abcdef0123456789abcdef' }));
    const after = await sd.send(new ListInstancesCommand({ ServiceId: serviceId }));
    expect(after.Instances ?? []).toHaveLength(0);
  });
});

describe('ECS through the SDK against the emulator', () => {
  it('runs, describes and stops an awsvpc task', async () => {
    const ecs = new ECSClient(clientConfig());
    const cluster = await ecs.send(new CreateClusterCommand({ clusterName: uniqueName('cluster') }));
    const clusterArn = cluster.cluster?.clusterArn as string;
    const td = await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: 'spicedb',
        networkMode: 'awsvpc',
        requiresCompatibilities: ['FARGATE'],
        cpu: '256',
        memory: '512',
        containerDefinitions: [{ name: 'spicedb', image: 'authzed/spicedb:v1.56.2', cpu: 256, memory: 512, essential: true }],
      }),
    );
    const ran = await ecs.send(
      new RunTaskCommand({
        cluster: clusterArn,
        taskDefinition: td.taskDefinition?.taskDefinitionArn,
        launchType: 'FARGATE',
        startedBy: 'ecs-svc/1234567890',
        networkConfiguration: { awsvpcConfiguration: { subnets: [subnetId], securityGroups: [] } },
      }),
    );
    const taskArn = ran.tasks?.[0]?.taskArn as string;
    expect(taskArn).toMatch(/^arn:aws:ecs:/);

    const described = await ecs.send(new DescribeTasksCommand({ cluster: clusterArn, tasks: [taskArn] }));
    const task = described.tasks?.[0];
    expect(task?.desiredStatus).toBe('RUNNING');
    const eni = task?.attachments?.find((a) => a.type === 'ElasticNetworkInterface');
    expect(eni?.details?.find((d) => d.name === 'privateIPv4Address')?.value).toMatch(/^\d{1,3}(\.\d{1,3}){3}$/);

    await ecs.send(new StopTaskCommand({ cluster: clusterArn, task: taskArn, reason: 'test' }));
    const stopped = await ecs.send(new DescribeTasksCommand({ cluster: clusterArn, tasks: [taskArn] }));
    expect(stopped.tasks?.[0]?.desiredStatus).toBe('STOPPED');
  });
});

describe('EventBridge rule routing against the emulator', () => {
  it('routes a matching event to the SQS target and not a non-matching one', async () => {
    const events = new EventBridgeClient(clientConfig());
    const sqs = new SQSClient(clientConfig());
    const queue = await sqs.send(new CreateQueueCommand({ QueueName: uniqueName('events') }));
    const queueUrl = queue.QueueUrl as string;
    const attrs = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }));
    const ruleName = uniqueName('rule');
    await events.send(
      new PutRuleCommand({
        Name: ruleName,
        EventPattern: JSON.stringify({
          source: ['aws.ecs'],
          'detail-type': ['ECS Task State Change'],
          detail: { group: ['service:spicedb'] },
        }),
      }),
    );
    await events.send(new PutTargetsCommand({ Rule: ruleName, Targets: [{ Id: 'q', Arn: attrs.Attributes?.QueueArn }] }));
    const put = (group: string, marker: string) =>
      events.send(
        new PutEventsCommand({
          Entries: [{ Source: 'aws.ecs', DetailType: 'ECS Task State Change', Detail: JSON.stringify({ group, marker }) }],
        }),
      );
    await put('service:other', 'no-match');
    await put('service:spicedb', 'match');

    const received: string[] = [];
    for (let i = 0; i < 5 && received.length < 2; i++) {
      const res = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
      for (const m of res.Messages ?? []) received.push((JSON.parse(m.Body as string) as { detail: { marker: string } }).detail.marker);
    }
    expect(received).toEqual(['match']);
  });
});
