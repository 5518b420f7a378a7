/**
 * The AWS side of peer discovery, created in the emulator the way the
 * production template creates it: a VPC and subnet for awsvpc tasks, an ECS
 * cluster, a Fargate task definition and service for SpiceDB, and a Cloud Map
 * private DNS namespace (low SOA TTL) with a MULTIVALUE A-record service.
 */
import { CreateSecurityGroupCommand, CreateSubnetCommand, CreateVpcCommand, ModifyVpcAttributeCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { CreateClusterCommand, CreateServiceCommand, RegisterTaskDefinitionCommand, type ECSClient } from '@aws-sdk/client-ecs';
import {
  CreatePrivateDnsNamespaceCommand,
  CreateServiceCommand as CreateCloudMapServiceCommand,
  GetOperationCommand,
  type ServiceDiscoveryClient,
} from '@aws-sdk/client-servicediscovery';
import { DEFAULT_DISPATCH_PORT } from '../../functions/shared/discovery/target';
import { versions } from './components';

export interface DiscoveryAwsClients {
  ec2: EC2Client;
  ecs: ECSClient;
  serviceDiscovery: ServiceDiscoveryClient;
}

export interface DiscoveryAwsOptions {
  /** Prefix of every name, unique per run. */
  name: string;
  /** TTL of the Cloud Map A records (and the namespace SOA). */
  dnsTtlSeconds: number;
  /** Cloud Map namespace, e.g. `spicedb.internal`. */
  namespaceName?: string;
  /** Cloud Map service name: the first label of the DNS name. */
  cloudMapServiceName?: string;
  dispatchPort?: number;
}

/** Everything the registrar, the local cluster and the DNS view need to know. */
export interface DiscoveryAws {
  vpcId: string;
  subnetId: string;
  securityGroupId: string;
  clusterName: string;
  clusterArn: string;
  /** ECS service name; its tasks carry `group: service:<name>`. */
  serviceName: string;
  taskDefinitionArn: string;
  containerName: string;
  image: string;
  namespaceId: string;
  namespaceName: string;
  cloudMapServiceId: string;
  cloudMapServiceName: string;
  /** `<service>.<namespace>`: what SpiceDB resolves. */
  dnsName: string;
  dnsTtlSeconds: number;
  dispatchPort: number;
}

const must = <T>(value: T | undefined, what: string): T => {
  if (value === undefined || value === null || value === '') throw new Error(`emulator returned no ${what}`);
  return value;
};

/** Creates the ECS and Cloud Map resources in the emulator the clients point at. */
export async function provisionDiscovery(clients: DiscoveryAwsClients, opts: DiscoveryAwsOptions): Promise<DiscoveryAws> {
  const { ec2, ecs, serviceDiscovery } = clients;
  const dispatchPort = opts.dispatchPort ?? DEFAULT_DISPATCH_PORT;
  const namespaceName = opts.namespaceName ?? `${opts.name.replaceAll('_', '-')}.internal`;
  const cloudMapServiceName = opts.cloudMapServiceName ?? 'spicedb';

  // moto's RunTask with awsvpc networking needs DNS hostnames on the VPC.
  const vpc = await ec2.send(new CreateVpcCommand({ CidrBlock: '10.0.0.0/16' }));
  const vpcId = must(vpc.Vpc?.VpcId, 'VpcId');
  await ec2.send(new ModifyVpcAttributeCommand({ VpcId: vpcId, EnableDnsSupport: { Value: true } }));
  await ec2.send(new ModifyVpcAttributeCommand({ VpcId: vpcId, EnableDnsHostnames: { Value: true } }));
  const subnet = await ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: '10.0.1.0/24' }));
  const subnetId = must(subnet.Subnet?.SubnetId, 'SubnetId');
  const sg = await ec2.send(new CreateSecurityGroupCommand({ VpcId: vpcId, GroupName: `${opts.name}-tasks`, Description: 'SpiceDB tasks' }));
  const securityGroupId = must(sg.GroupId, 'GroupId');

  const clusterName = `${opts.name}-cluster`;
  const cluster = await ecs.send(new CreateClusterCommand({ clusterName }));
  const clusterArn = must(cluster.cluster?.clusterArn, 'clusterArn');
  const containerName = 'spicedb';
  const image = `authzed/spicedb:${versions.SPICEDB_VERSION ?? 'latest'}`;
  const td = await ecs.send(
    new RegisterTaskDefinitionCommand({
      family: `${opts.name}-spicedb`,
      networkMode: 'awsvpc',
      requiresCompatibilities: ['FARGATE'],
      cpu: '256',
      memory: '512',
      containerDefinitions: [
        {
          name: containerName,
          image,
          essential: true,
          cpu: 256,
          memory: 512,
          command: ['serve'],
          portMappings: [
            { containerPort: 50051, protocol: 'tcp' },
            { containerPort: dispatchPort, protocol: 'tcp' },
          ],
          healthCheck: { command: ['CMD', 'grpc_health_probe', '-addr=localhost:50051'], interval: 5, timeout: 2, retries: 3, startPeriod: 10 },
        },
      ],
    }),
  );
  const taskDefinitionArn = must(td.taskDefinition?.taskDefinitionArn, 'taskDefinitionArn');
  const serviceName = `${opts.name}-spicedb`;
  // moto's CreateService launches nothing: the local cluster runs the tasks.
  await ecs.send(
    new CreateServiceCommand({
      cluster: clusterName,
      serviceName,
      taskDefinition: taskDefinitionArn,
      desiredCount: 0,
      launchType: 'FARGATE',
      networkConfiguration: { awsvpcConfiguration: { subnets: [subnetId], securityGroups: [securityGroupId] } },
    }),
  );

  const ns = await serviceDiscovery.send(
    new CreatePrivateDnsNamespaceCommand({
      Name: namespaceName,
      Vpc: vpcId,
      Properties: { DnsProperties: { SOA: { TTL: opts.dnsTtlSeconds } } },
    }),
  );
  const op = await serviceDiscovery.send(new GetOperationCommand({ OperationId: must(ns.OperationId, 'OperationId') }));
  const namespaceId = must(op.Operation?.Targets?.NAMESPACE, 'namespace id');
  const service = await serviceDiscovery.send(
    new CreateCloudMapServiceCommand({
      Name: cloudMapServiceName,
      NamespaceId: namespaceId,
      DnsConfig: { RoutingPolicy: 'MULTIVALUE', DnsRecords: [{ Type: 'A', TTL: opts.dnsTtlSeconds }] },
    }),
  );
  const cloudMapServiceId = must(service.Service?.Id, 'Cloud Map service id');

  return {
    vpcId,
    subnetId,
    securityGroupId,
    clusterName,
    clusterArn,
    serviceName,
    taskDefinitionArn,
    containerName,
    image,
    namespaceId,
    namespaceName,
    cloudMapServiceId,
    cloudMapServiceName,
    dnsName: `${cloudMapServiceName}.${namespaceName}`,
    dnsTtlSeconds: opts.dnsTtlSeconds,
    dispatchPort,
  };
}
