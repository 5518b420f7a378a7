/**
 * The local stack: the whole deployment on one machine, driven by the real
 * handlers. PostgreSQL migrated as the template's migration step would;
 * SpiceDB "tasks" as real `spicedb serve` processes on their own loopback
 * addresses with dispatch on, finding each other through a DNS view of the
 * Cloud Map service; the emulator holding Cloud Map, ECS, Secrets Manager,
 * EventBridge and SQS; the registrar fed by ECS Task State Change events
 * through the template's own rule, the reconciler on its timer, and the
 * schema custom resource driven as CloudFormation drives it.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { EC2Client } from '@aws-sdk/client-ec2';
import { ECSClient } from '@aws-sdk/client-ecs';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ServiceDiscoveryClient, ListInstancesCommand } from '@aws-sdk/client-servicediscovery';
import { drainSeconds, type DrainTimings } from '../../functions/shared/drain';
import { CACHE, ROOT } from '../rig/components';
import { startCloudMapDns, type CloudMapDns } from '../rig/cloudmap-dns';
import { provisionDiscovery, type DiscoveryAws } from '../rig/discovery-aws';
import { LocalEcs, type LocalTask } from '../rig/local-ecs';
import { startMoto, AWS_REGION, type Moto } from '../rig/moto';
import { randomBytes } from 'node:crypto';
import { startPostgres, type Postgres } from '../rig/postgres';
import { migrate } from '../rig/spicedb';
import { waitFor } from '../rig/net';
import { loadTemplate, resolveIntrinsics, type Json } from '../rig/template';
import { CustomResourceDriver, ResponseEndpoint, type StackEvent } from './cloudformation';
import { startEcsProxy } from './ecs-proxy';
import { startRuleDelivery, type RuleDelivery } from './eventbridge';
import { LocalFunction } from './lambda-host';
import type { SchemaProperties } from './stack-file';
import { startTcpBalancer, type TcpBalancer } from './tcp-balancer';

export interface LocalStackOptions {
  nodes: number;
  schema: SchemaProperties;
  /** Folder for the key file and the control file. */
  stateDir?: string;
  /** The load balancer's address (default 127.0.0.1:50051, else a free port). */
  endpointHost?: string;
  endpointPort?: number;
  timings: DrainTimings;
  /** Reconciler period (the template's schedule is one minute). */
  reconcileSeconds?: number;
  log(line: string): void;
  /** Function log lines (JSON); default: dropped unless LOCAL_STACK_FUNCTION_LOGS=1. */
  functionLog?(fn: string, line: string): void;
}

export interface NodeStatus {
  taskId: string;
  host: string;
  grpcEndpoint: string;
  phase: string;
  health: string;
}

export interface LocalStackStatus {
  endpoint: string;
  nodes: NodeStatus[];
  cloudMapInstances: { id: string; ipv4: string }[];
  dns: { name: string; addresses: string[]; ttl: number };
  schema: { physicalResourceId?: string; zedToken?: string };
  deadLetters: string;
}

export const STACK_NAME = 'spicedb-local';

/**
 * The template's registrar rule pattern, and how often a failed invocation
 * is retried before it is dead-lettered (the function's EventInvokeConfig).
 */
function registrarRule(): { pattern: Json; maximumRetryAttempts: number } {
  const fn = loadTemplate(path.join(ROOT, 'template.yaml')).Resources.RegistrarFunction;
  const events = (fn?.Properties?.Events ?? {}) as Record<string, { Type?: string; Properties?: Record<string, Json> }>;
  const rule = Object.values(events).find((e) => e.Type === 'EventBridgeRule');
  if (!rule?.Properties?.Pattern) throw new Error('template.yaml: RegistrarFunction has no EventBridgeRule event with a Pattern');
  const invokeConfig = fn?.Properties?.EventInvokeConfig as { MaximumRetryAttempts?: number } | undefined;
  return { pattern: rule.Properties.Pattern, maximumRetryAttempts: Number(invokeConfig?.MaximumRetryAttempts ?? 2) };
}

export class LocalStack {
  private readonly stops: (() => Promise<void>)[] = [];
  postgres!: Postgres;
  moto!: Moto;
  aws!: DiscoveryAws;
  dns!: CloudMapDns;
  ecs!: LocalEcs;
  balancer!: TcpBalancer;
  delivery!: RuleDelivery;
  schemaResource!: CustomResourceDriver;
  functions: Record<string, LocalFunction> = {};
  presharedKeyFile = '';
  secretArn = '';
  lastZedToken: string | undefined;
  private serviceDiscovery!: ServiceDiscoveryClient;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private targetTimer: NodeJS.Timeout | undefined;
  readonly stateDir: string;

  constructor(private readonly opts: LocalStackOptions) {
    this.stateDir = opts.stateDir ?? path.join(CACHE, 'local-stack');
  }

  private async timed<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const start = Date.now();
    this.opts.log(`==> ${what}`);
    const out = await fn();
    this.opts.log(`    ${what}: done in ${((Date.now() - start) / 1000).toFixed(1)}s`);
    return out;
  }

  /** Brings everything up; on failure stops what it started and rethrows. */
  async start(): Promise<void> {
    try {
      await this.startAll();
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  private async startAll(): Promise<void> {
    const { timings } = this.opts;
    mkdirSync(this.stateDir, { recursive: true });
    [this.postgres, this.moto] = await this.timed('PostgreSQL and the AWS emulator', () => Promise.all([startPostgres(), startMoto()]));
    this.stops.push(() => this.postgres.stop(), () => this.moto.stop());
    const datastoreUri = await this.timed('datastore migration (spicedb datastore migrate head)', async () => {
      const uri = await this.postgres.createDatabase('spicedb');
      await migrate(uri);
      return uri;
    });

    const config = { endpoint: this.moto.endpoint, region: AWS_REGION, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
    this.serviceDiscovery = new ServiceDiscoveryClient({ ...config, disableHostPrefix: true });
    const ecsClient = new ECSClient(config);
    this.aws = await this.timed('ECS cluster and service, Cloud Map namespace and service (in the emulator)', () =>
      provisionDiscovery({ ec2: new EC2Client(config), ecs: ecsClient, serviceDiscovery: this.serviceDiscovery }, { name: STACK_NAME, dnsTtlSeconds: timings.dnsTtlSeconds }),
    );
    const presharedKey = randomBytes(24).toString('base64url');
    await this.timed('preshared key generated into Secrets Manager', async () => {
      const secret = await new SecretsManagerClient(config).send(new CreateSecretCommand({ Name: `${STACK_NAME}/preshared-key`, SecretString: presharedKey }));
      this.secretArn = secret.ARN as string;
      this.presharedKeyFile = path.join(this.stateDir, 'preshared-key');
      writeFileSync(this.presharedKeyFile, presharedKey, { mode: 0o600 });
      chmodSync(this.presharedKeyFile, 0o600);
    });
    this.dns = await startCloudMapDns({ serviceDiscovery: this.serviceDiscovery, namespaceId: this.aws.namespaceId });
    this.stops.push(() => this.dns.stop());

    // The functions, as Lambda would run them: bundles, template environment, emulator endpoints.
    await this.timed('functions (esbuild bundles in their own processes)', async () => {
      this.ecs = await LocalEcs.create({
        ecs: ecsClient,
        motoEndpoint: this.moto.endpoint,
        aws: this.aws,
        dns: this.dns,
        datastoreUri,
        presharedKey,
        timings,
        onEvent: (event) => this.delivery.publish([event]),
        log: (line) => this.opts.log(`    ${line}`),
      });
      this.stops.push(() => this.ecs.stopAll());
      const overlaid = this.ecs.overlayDescribeTasks(new ECSClient(config));
      const proxy = await startEcsProxy(this.moto.endpoint, overlaid);
      this.stops.push(() => proxy.stop());
      const values = this.templateValues();
      const awsEnv = { ...this.moto.awsEnv, AWS_ENDPOINT_URL_ECS: proxy.endpoint };
      for (const logicalId of ['RegistrarFunction', 'ReconcilerFunction', 'SchemaFunction']) {
        const fn = new LocalFunction({
          logicalId,
          values,
          awsEnv,
          onLog: (line) => (this.opts.functionLog ?? (() => undefined))(logicalId, line),
        });
        this.functions[logicalId] = fn;
        this.stops.push(() => fn.stop());
      }
      const rule = registrarRule();
      this.delivery = await startRuleDelivery({
        name: `${STACK_NAME}-task-state`,
        pattern: resolveIntrinsics(rule.pattern, values, 'the registrar rule pattern'),
        maximumRetryAttempts: rule.maximumRetryAttempts,
        invoke: (event) => this.fn('RegistrarFunction').invoke(event),
        clientConfig: config,
        onError: (err, attempt) => this.opts.log(`    registrar delivery failed (attempt ${attempt}): ${err instanceof Error ? err.message : String(err)}`),
      });
      this.stops.push(() => this.delivery.stop());
    });

    this.balancer = await startTcpBalancer(this.opts.endpointHost ?? '127.0.0.1', this.opts.endpointPort ?? 50051).catch(() =>
      startTcpBalancer(this.opts.endpointHost ?? '127.0.0.1', 0),
    );
    this.stops.push(() => this.balancer.stop());
    this.targetTimer = setInterval(() => this.balancer.setTargets(this.ecs.clientEndpoints()), 100);

    await this.timed(`${this.opts.nodes} SpiceDB tasks (dispatch through ${this.aws.dnsName})`, () => this.scale(this.opts.nodes));

    const endpoint = new ResponseEndpoint();
    await endpoint.start();
    this.stops.push(() => endpoint.stop());
    this.schemaResource = new CustomResourceDriver({
      stackName: STACK_NAME,
      logicalId: 'SpiceDBSchema',
      resourceType: 'Custom::SpiceDBSchema',
      serviceToken: `arn:aws:lambda:${AWS_REGION}:000000000000:function:SchemaFunction`,
      endpoint,
      invoke: (event) => this.fn('SchemaFunction').invoke(event),
      serviceTimeoutMs: this.fn('SchemaFunction').timeoutMs + 30_000,
      onEvent: (e: StackEvent) => this.opts.log(`    SpiceDBSchema ${e.status}${e.reason ? `: ${e.reason}` : ''}`),
    });
    await this.timed('schema custom resource (Create)', async () => {
      const res = await this.schemaResource.create(this.schemaProperties(this.opts.schema));
      if (res.Status !== 'SUCCESS') throw new Error(`the schema resource failed: ${res.Reason}`);
      this.lastZedToken = String(res.Data?.ZedToken ?? '');
    });

    const period = (this.opts.reconcileSeconds ?? 60) * 1000;
    this.reconcileTimer = setInterval(() => {
      this.fn('ReconcilerFunction')
        .invoke(scheduledEvent())
        .catch((err: unknown) => this.opts.log(`    reconciler failed: ${err instanceof Error ? err.message : String(err)}`));
    }, period);
  }

  fn(logicalId: string): LocalFunction {
    const f = this.functions[logicalId];
    if (!f) throw new Error(`unknown function ${logicalId}; known: ${Object.keys(this.functions).join(', ')}`);
    return f;
  }

  /** Local values for the template's !Ref / !GetAtt in function environments and the rule pattern. */
  templateValues(): Record<string, string> {
    const a = this.aws;
    return {
      'AWS::Region': AWS_REGION,
      'AWS::AccountId': '000000000000',
      'AWS::StackName': STACK_NAME,
      'AWS::Partition': 'aws',
      Cluster: a.clusterName,
      'Cluster.Arn': a.clusterArn,
      Service: a.serviceName,
      'Service.Name': a.serviceName,
      DiscoveryService: a.cloudMapServiceId,
      'DiscoveryService.Id': a.cloudMapServiceId,
      DispatchPort: String(a.dispatchPort),
      ServiceName: a.serviceName,
    };
  }

  /** The schema resource's properties: the stack file's, plus where SpiceDB is and its key. */
  schemaProperties(fromFile: SchemaProperties): Record<string, unknown> {
    return { SpiceDBEndpoint: this.balancer.endpoint, SpiceDBTls: 'false', PresharedKeySecretArn: this.secretArn, ...fromFile };
  }

  /** Scales the service to `count` tasks: new tasks start in parallel; extra ones stop gracefully, in parallel. */
  async scale(count: number): Promise<{ started: string[]; stopped: string[] }> {
    if (!Number.isInteger(count) || count < 1) throw new Error(`scale: expected a whole number of tasks of at least 1, got ${count}`);
    const running = this.ecs.tasks('starting', 'running');
    if (count > running.length) {
      const started = await Promise.all(Array.from({ length: count - running.length }, () => this.ecs.startTask()));
      // The registrar runs asynchronously (EventBridge delivery): `scale` returns once the new tasks are discoverable.
      await this.waitForDiscovery();
      return { started: started.map((t) => t.taskId), stopped: [] };
    }
    // ECS stops the newest tasks first on scale-in here; real ECS balances AZs first.
    const victims = this.ecs.tasks('running').slice(count - running.length);
    this.opts.log(`    scale-in: ${victims.length} task(s) leave discovery now and stop after the ${Math.round(this.ecs.drainHoldMs / 1000)} s drain hold`);
    await Promise.all(victims.map((t) => this.ecs.stopTask(t, 'graceful')));
    await this.waitForDiscovery();
    return { started: [], stopped: victims.map((t) => t.taskId) };
  }

  /** Waits (bounded) until Cloud Map holds exactly the running tasks' addresses. */
  async waitForDiscovery(timeoutMs = 30_000): Promise<void> {
    const want = (): string => this.ecs.tasks('running').map((t) => t.host).sort().join(',');
    await waitFor(
      async () => {
        const res = await this.serviceDiscovery.send(new ListInstancesCommand({ ServiceId: this.aws.cloudMapServiceId }));
        return (res.Instances ?? []).map((i) => i.Attributes?.AWS_INSTANCE_IPV4 ?? '').sort().join(',') === want();
      },
      { what: 'Cloud Map to hold exactly the running tasks (is the registrar failing? see the dead-letter queue)', timeoutMs, intervalMs: 100 },
    );
  }

  /** Kills a task abruptly (SIGKILL); the service then starts a replacement, as ECS would. */
  async kill(node: string): Promise<{ killed: string; replacement: string }> {
    const task = this.findTask(node);
    await this.ecs.killTask(task);
    const replacement = await this.ecs.startTask();
    return { killed: task.taskId, replacement: replacement.taskId };
  }

  findTask(node: string): LocalTask {
    const live = this.ecs.tasks();
    const byIndex = /^\d+$/.test(node) ? live[Number(node) - 1] : undefined;
    const task = byIndex ?? live.find((t) => t.taskId.startsWith(node) || t.host === node);
    if (!task) throw new Error(`no live task matches "${node}"; give a number 1-${live.length}, a task id prefix or an address`);
    return task;
  }

  async status(): Promise<LocalStackStatus> {
    const nodes = await Promise.all(
      this.ecs.tasks().map(async (t) => ({
        taskId: t.taskId,
        host: t.host,
        grpcEndpoint: t.grpcEndpoint,
        phase: t.phase,
        health: await t.spicedb.health().catch(() => 'UNREACHABLE'),
      })),
    );
    const instances = await this.serviceDiscovery.send(new ListInstancesCommand({ ServiceId: this.aws.cloudMapServiceId }));
    const answer = await this.dns.answer(this.aws.dnsName);
    return {
      endpoint: this.balancer.endpoint,
      nodes,
      cloudMapInstances: (instances.Instances ?? []).map((i) => ({ id: i.Id ?? '', ipv4: i.Attributes?.AWS_INSTANCE_IPV4 ?? '' })),
      dns: { name: this.aws.dnsName, addresses: answer.addresses, ttl: answer.ttlSeconds },
      schema: { physicalResourceId: this.schemaResource.physicalResourceId, zedToken: this.lastZedToken },
      deadLetters: this.delivery.deadLetterQueueUrl,
    };
  }

  drainBoundSeconds(): number {
    return drainSeconds(this.opts.timings);
  }

  async stop(): Promise<void> {
    if (this.reconcileTimer) clearInterval(this.reconcileTimer);
    if (this.targetTimer) clearInterval(this.targetTimer);
    while (this.stops.length > 0) await this.stops.pop()?.().catch(() => undefined);
  }
}

/** The event a Schedule (rate) rule delivers. */
export function scheduledEvent(): Record<string, unknown> {
  return {
    version: '0',
    id: randomBytes(16).toString('hex'),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '000000000000',
    time: new Date().toISOString(),
    region: AWS_REGION,
    resources: [`arn:aws:events:${AWS_REGION}:000000000000:rule/${STACK_NAME}-reconcile`],
    detail: {},
  };
}
