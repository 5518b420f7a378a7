/**
 * template.yaml as data: the functions the build reads, the SpiceDB task
 * (ports, health check, SPICEDB_* settings, secrets by reference, the drain
 * rule of functions/shared/drain.ts), security groups, IAM scoping in every
 * configuration, discovery wiring, migrations, Rules. Each configuration is
 * evaluated (Conditions, Fn::If, AWS::NoValue) by test/helpers/cfn.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { functionBuilds } from '../../scripts/build';
import { ROOT, versions } from '../../scripts/rig/components';
import { loadTemplate, resourcesOfType, type Json, type Resource, type Template } from '../../scripts/rig/template';
import * as drain from '../../functions/shared/drain';
import { Evaluator, EXISTING_POSTGRES_SECRET_ARN, isReadOnlyAction, statementsOf, WIDEST_PARAMS, type Params } from '../helpers/cfn';

const TEMPLATE = path.join(ROOT, 'template.yaml');
const template: Template = loadTemplate(TEMPLATE);

/** Parameters every deploy gives (no defaults). */
const REQUIRED: Params = {
  VpcId: 'vpc-0123456789abcdef0',
  PrivateSubnetIds: 'subnet-0aaaaaaaaaaaaaaa1,subnet-0aaaaaaaaaaaaaaa2',
  ClientCidr: '10.0.0.0/16',
};
const SECRET_ARN = EXISTING_POSTGRES_SECRET_ARN;

/** The configurations a user can deploy, as parameter sets. */
const CONFIGS: Record<string, Params> = {
  'rds (defaults)': { ...REQUIRED },
  'existing postgres, TLS, gateway, schema, KMS': { ...REQUIRED, ...WIDEST_PARAMS, Telemetry: 'true' },
  'memory quickstart, internet-facing': {
    ...REQUIRED,
    Datastore: 'memory',
    DesiredCount: '1',
    LoadBalancerScheme: 'internet-facing',
    LoadBalancerSubnetIds: 'subnet-0bbbbbbbbbbbbbbb1,subnet-0bbbbbbbbbbbbbbb2',
    ClientCidr: '203.0.113.7/32',
    AssignPublicIp: 'ENABLED',
  },
};

const configs = Object.entries(CONFIGS).map(([name, params]) => ({ name, ev: new Evaluator(template, params) }));

type ContainerDefinition = Record<string, Json> & { Name: string };

function containers(resources: Record<string, Resource>, taskDefinition: string): ContainerDefinition[] {
  return ((resources[taskDefinition]?.Properties?.ContainerDefinitions ?? []) as ContainerDefinition[]).map((c) => c);
}

function container(resources: Record<string, Resource>, taskDefinition: string, name: string): ContainerDefinition {
  const c = containers(resources, taskDefinition).find((x) => x.Name === name);
  if (!c) throw new Error(`${taskDefinition} has no container ${name}`);
  return c;
}

function envOf(c: ContainerDefinition): Record<string, string> {
  return Object.fromEntries(((c.Environment ?? []) as { Name: string; Value: string }[]).map((e) => [e.Name, e.Value]));
}

function secretsOf(c: ContainerDefinition): Record<string, string> {
  return Object.fromEntries(((c.Secrets ?? []) as { Name: string; ValueFrom: string }[]).map((e) => [e.Name, e.ValueFrom]));
}

/** Every ingress rule of this configuration, from inline rules and AWS::EC2::SecurityGroupIngress. */
function ingressRules(resources: Record<string, Resource>): { group: string; port: number; toPort: number; from: string }[] {
  const out: { group: string; port: number; toPort: number; from: string }[] = [];
  for (const [id, res] of Object.entries(resources)) {
    const p = res.Properties ?? {};
    const rules: [string, Record<string, Json>][] = [];
    if (res.Type === 'AWS::EC2::SecurityGroup') for (const r of (p.SecurityGroupIngress ?? []) as Record<string, Json>[]) rules.push([`<${id}>`, r]);
    if (res.Type === 'AWS::EC2::SecurityGroupIngress') rules.push([String(p.GroupId), p]);
    for (const [group, r] of rules) {
      out.push({
        group,
        port: Number(r.FromPort),
        toPort: Number(r.ToPort),
        from: String(r.CidrIp ?? r.CidrIpv6 ?? r.SourceSecurityGroupId ?? r.SourcePrefixListId),
      });
    }
  }
  return out;
}

describe('template.yaml: functions and their build', () => {
  const functions = resourcesOfType(template, 'AWS::Serverless::Function');

  it('declares exactly the four agreed functions, each bundled from functions/<name>/handler.ts', () => {
    const entries = Object.fromEntries(
      functions.map(([id, res]) => [id, ((res.Metadata?.BuildProperties as Record<string, Json>).EntryPoints as string[])[0]]),
    );
    expect(entries).toEqual({
      SchemaFunction: 'functions/schema-resource/handler.ts',
      RegistrarFunction: 'functions/registrar/handler.ts',
      ReconcilerFunction: 'functions/reconciler/handler.ts',
      MigrationFunction: 'functions/migration-resource/handler.ts',
    });
  });

  it.each(functions.map(([id, res]) => [id, res] as const))('%s uses esbuild with node22, Minify and Sourcemap, on nodejs22.x', (_id, res) => {
    expect(res.Metadata?.BuildMethod).toBe('esbuild');
    expect(res.Metadata?.BuildProperties).toMatchObject({ Target: 'node22', Minify: true, Sourcemap: true });
    const globals = template.Globals?.Function ?? {};
    expect(res.Properties?.Runtime ?? globals.Runtime).toBe('nodejs22.x');
    expect(res.Properties?.CodeUri ?? globals.CodeUri).toBe('.');
    expect(res.Properties?.Handler ?? globals.Handler).toBe('handler.handler');
  });

  it('is what scripts/build.ts bundles: one dist/<LogicalId>/handler.js per function, from an entry that exists', () => {
    const builds = functionBuilds(TEMPLATE);
    expect(builds.map((b) => b.logicalId).sort()).toEqual(functions.map(([id]) => id).sort());
    for (const b of builds) {
      expect(existsSync(b.entryPoint)).toBe(true);
      expect(path.relative(ROOT, b.bundle)).toBe(path.join('dist', b.logicalId, 'handler.js'));
      expect(b.handlerExport).toBe('handler');
      expect(b.options).toMatchObject({ minify: true, sourcemap: true, target: 'node22' });
    }
  });

  it('gives every function its own role, so SAM adds no managed policy with "*" (AWSLambdaBasicExecutionRole)', () => {
    for (const [id, res] of functions) {
      expect([id, res.Properties?.Role]).toEqual([id, expect.objectContaining({ 'Fn::GetAtt': expect.any(Array) })]);
      expect(res.Properties?.Policies).toBeUndefined();
      expect(res.Properties?.LoggingConfig).toMatchObject({ LogGroup: { Ref: expect.stringMatching(/LogGroup$/) } });
    }
    for (const [id, role] of resourcesOfType(template, 'AWS::IAM::Role')) {
      expect([id, role.Properties?.ManagedPolicyArns]).toEqual([id, undefined]);
    }
  });
});

describe('template.yaml: the SpiceDB task', () => {
  const ev = new Evaluator(template, CONFIGS['rds (defaults)']);
  const res = ev.resources();
  const spicedb = container(res, 'TaskDefinition', 'spicedb');
  const env = envOf(spicedb);

  it('runs the pinned SpiceDB release of scripts/versions.env by default, never latest', () => {
    const image = String(template.Parameters?.SpiceDBImage?.Default);
    expect(image).toMatch(/^(ghcr\.io\/|quay\.io\/)?authzed\/spicedb:v\d+\.\d+\.\d+$/);
    expect(image.endsWith(`:${versions.SPICEDB_VERSION}`)).toBe(true);
    expect(spicedb.Image).toBe(image);
    expect(String(template.Parameters?.DrainSidecarImage?.Default)).toMatch(/:\d+\.\d+\.\d+$/);
  });

  it('publishes the API (50051), dispatch (50053) and HTTP gateway (8443) ports, not metrics (9090)', () => {
    const ports = (spicedb.PortMappings as { ContainerPort: number }[]).map((p) => p.ContainerPort).sort();
    expect(ports).toEqual([50051, 50053, 8443].sort());
  });

  it('checks health with the image\'s grpc_health_probe, exec form (the image has no shell)', () => {
    expect(spicedb.HealthCheck).toMatchObject({ Command: ['CMD', '/usr/local/bin/grpc_health_probe', '-addr=localhost:50051'] });
  });

  it('is configured through SPICEDB_* environment, with telemetry off and no release check', () => {
    expect(Object.keys(env).every((k) => k.startsWith('SPICEDB_'))).toBe(true);
    expect(env.SPICEDB_TELEMETRY_ENDPOINT).toBe('');
    expect(spicedb.Command).toEqual(['serve', '--telemetry-endpoint=']);
    expect(env.SPICEDB_SKIP_RELEASE_CHECK).toBe('true');
    expect(env.SPICEDB_HTTP_ENABLED).toBe('true');
    expect(env.SPICEDB_DATASTORE_ENGINE).toBe('postgres');
  });

  it('sends telemetry only when the Telemetry parameter says so', () => {
    const on = container(new Evaluator(template, { ...REQUIRED, Telemetry: 'true' }).resources(), 'TaskDefinition', 'spicedb');
    expect(envOf(on).SPICEDB_TELEMETRY_ENDPOINT).toMatch(/^https:\/\//);
    expect(on.Command).toEqual(['serve']);
  });

  it('dispatches to the Cloud Map name with an explicit dns:/// scheme and port 50053', () => {
    expect(env.SPICEDB_DISPATCH_CLUSTER_ENABLED).toBe('true');
    expect(env.SPICEDB_DISPATCH_UPSTREAM_ADDR).toBe('dns:///spicedb.mystack.spicedb.internal:50053');
    const named = envOf(container(new Evaluator(template, { ...REQUIRED, DiscoveryNamespaceName: 'peers.internal' }).resources(), 'TaskDefinition', 'spicedb'));
    expect(named.SPICEDB_DISPATCH_UPSTREAM_ADDR).toBe('dns:///spicedb.peers.internal:50053');
    // The name the upstream resolves is the Cloud Map service in the namespace.
    expect(res.DiscoveryService?.Properties?.Name).toBe('spicedb');
    expect(res.DiscoveryNamespace?.Properties?.Name).toBe('mystack.spicedb.internal');
  });

  it('has no dispatch and no datastore secret with the memory datastore', () => {
    const mem = container(new Evaluator(template, CONFIGS['memory quickstart, internet-facing']).resources(), 'TaskDefinition', 'spicedb');
    expect(envOf(mem).SPICEDB_DATASTORE_ENGINE).toBe('memory');
    expect(Object.keys(envOf(mem)).filter((k) => k.startsWith('SPICEDB_DISPATCH'))).toEqual([]);
    expect(Object.keys(secretsOf(mem))).toEqual(['SPICEDB_GRPC_PRESHARED_KEY']);
  });

  it('gets the preshared key and the datastore URI only through ECS secrets, from Secrets Manager', () => {
    for (const { name, ev: e } of configs) {
      const r = e.resources();
      for (const [td, c] of [['TaskDefinition', 'spicedb'], ['MigrationTaskDefinition', 'migrate']] as const) {
        if (!r[td]) continue;
        const def = container(r, td, c);
        const plain = Object.keys(envOf(def));
        expect([name, plain.filter((k) => /PRESHARED_KEY|CONN_URI|PASSWORD/.test(k))]).toEqual([name, []]);
        for (const [secret, from] of Object.entries(secretsOf(def))) {
          expect([name, secret, from]).toEqual([name, secret, expect.stringMatching(/^(<(PresharedKeySecret|DatastoreUriSecret)>|arn:aws:secretsmanager:)/)]);
        }
      }
    }
    expect(secretsOf(spicedb)).toEqual({ SPICEDB_GRPC_PRESHARED_KEY: '<PresharedKeySecret>', SPICEDB_DATASTORE_CONN_URI: '<DatastoreUriSecret>' });
    const existing = container(configs[1]!.ev.resources(), 'TaskDefinition', 'spicedb');
    expect(secretsOf(existing).SPICEDB_DATASTORE_CONN_URI).toBe(SECRET_ARN);
  });

  it('generates the preshared key in Secrets Manager, without commas (SpiceDB splits keys on them)', () => {
    expect(res.PresharedKeySecret?.Properties?.GenerateSecretString).toMatchObject({ ExcludePunctuation: true });
    expect(Number((res.PresharedKeySecret?.Properties?.GenerateSecretString as Record<string, Json>).PasswordLength)).toBeGreaterThanOrEqual(32);
    expect(res.PresharedKeySecret?.Properties?.SecretString).toBeUndefined();
  });

  it('builds the RDS URI from the generated master secret by dynamic reference, TLS required', () => {
    const uri = String(res.DatastoreUriSecret?.Properties?.SecretString);
    expect(uri).toMatch(/^postgres:\/\/\{\{resolve:secretsmanager:<DatabaseMasterSecret>:SecretString:username\}\}:\{\{resolve:secretsmanager:<DatabaseMasterSecret>:SecretString:password\}\}@<Database\.Endpoint\.Address>:<Database\.Endpoint\.Port>\/spicedb\?sslmode=require$/);
    expect(res.DatabaseParameterGroup?.Properties?.Parameters).toMatchObject({ 'rds.force_ssl': '1', track_commit_timestamp: '1' });
    expect(res.Database?.Properties).toMatchObject({ StorageEncrypted: true, PubliclyAccessible: false });
    expect(String(res.Database?.Properties?.MasterUserPassword)).toMatch(/^\{\{resolve:secretsmanager:/);
  });
});

describe('template.yaml: the drain rule (functions/shared/drain.ts)', () => {
  const res = new Evaluator(template, CONFIGS['rds (defaults)']).resources();
  const sidecar = container(res, 'TaskDefinition', 'drain');

  it('holds SIGTERM back in a sidecar that starts once SpiceDB is HEALTHY and so stops before it', () => {
    expect(sidecar.DependsOn).toEqual([{ ContainerName: 'spicedb', Condition: 'HEALTHY' }]);
    expect(sidecar.Essential).toBe(true);
    expect(sidecar.Image).toBe(template.Parameters?.DrainSidecarImage?.Default);
    // Essential, so it needs a health check of its own, or the task never reports HEALTHY.
    expect(sidecar.HealthCheck).toMatchObject({ Command: ['CMD-SHELL', 'kill -0 1'] });
  });

  it(`holds for DRAIN_SECONDS (${drain.DRAIN_SECONDS} s) with a stopTimeout of DRAIN_SIDECAR_STOP_TIMEOUT_SECONDS, within Fargate's 120 s`, () => {
    expect(envOf(sidecar).DRAIN_SECONDS).toBe(String(drain.DRAIN_SECONDS));
    expect(sidecar.StopTimeout).toBe(drain.DRAIN_SIDECAR_STOP_TIMEOUT_SECONDS);
    expect(Number(sidecar.StopTimeout)).toBeLessThanOrEqual(drain.FARGATE_MAX_STOP_TIMEOUT_SECONDS);
    const script = (sidecar.Command as string[]).join(' ');
    expect(sidecar.EntryPoint).toEqual(['sh', '-c']);
    expect(script).toMatch(/trap '[^']*sleep "\$DRAIN_SECONDS"[^']*exit 0' TERM/);
    expect(script).toMatch(/wait \$!/);
  });

  it('recycles dispatch connections every MAX_CONN_AGE_SECONDS', () => {
    expect(envOf(container(res, 'TaskDefinition', 'spicedb')).SPICEDB_DISPATCH_CLUSTER_MAX_CONN_AGE).toBe(`${drain.MAX_CONN_AGE_SECONDS}s`);
  });

  it('publishes A records and the namespace SOA with DNS_TTL_SECONDS, MULTIVALUE', () => {
    expect(res.DiscoveryService?.Properties?.DnsConfig).toEqual({ RoutingPolicy: 'MULTIVALUE', DnsRecords: [{ Type: 'A', TTL: drain.DNS_TTL_SECONDS }] });
    expect(res.DiscoveryNamespace?.Properties?.Properties).toEqual({ DnsProperties: { SOA: { TTL: drain.DNS_TTL_SECONDS } } });
  });

  it('keeps deregistering load balancer targets for at least DRAIN_SECONDS', () => {
    const groups = Object.values(new Evaluator(template, CONFIGS['existing postgres, TLS, gateway, schema, KMS']).resources()).filter(
      (r) => r.Type === 'AWS::ElasticLoadBalancingV2::TargetGroup',
    );
    expect(groups).toHaveLength(2);
    for (const g of groups) {
      const attrs = Object.fromEntries((g.Properties?.TargetGroupAttributes as { Key: string; Value: string }[]).map((a) => [a.Key, a.Value]));
      expect(Number(attrs['deregistration_delay.timeout_seconds'])).toBeGreaterThanOrEqual(drain.DRAIN_SECONDS);
    }
  });
});

describe('template.yaml: load balancer', () => {
  const tls = new Evaluator(template, CONFIGS['existing postgres, TLS, gateway, schema, KMS']).resources();
  const plain = new Evaluator(template, CONFIGS['rds (defaults)']).resources();

  it('checks target health on /healthz over HTTP (NOT_SERVING is 503), not with gRPC or bare TCP', () => {
    for (const g of Object.values(tls).filter((r) => r.Type === 'AWS::ElasticLoadBalancingV2::TargetGroup')) {
      expect(g.Properties).toMatchObject({ TargetType: 'ip', HealthCheckProtocol: 'HTTP', HealthCheckPort: '8443', HealthCheckPath: '/healthz', Matcher: { HttpCode: '200' } });
    }
  });

  it('terminates TLS with the certificate and ALPN h2 when one is given; TCP otherwise; internal by default', () => {
    expect(tls.GrpcListener?.Properties).toMatchObject({
      Protocol: 'TLS',
      Port: 50051,
      Certificates: [{ CertificateArn: CONFIGS['existing postgres, TLS, gateway, schema, KMS']!.CertificateArn }],
      AlpnPolicy: ['HTTP2Only'],
      SslPolicy: 'ELBSecurityPolicy-TLS13-1-2-2021-06',
    });
    expect(plain.GrpcListener?.Properties?.Protocol).toBe('TCP');
    expect(plain.GrpcListener?.Properties?.Certificates).toBeUndefined();
    expect(plain.LoadBalancer?.Properties).toMatchObject({ Type: 'network', Scheme: 'internal' });
    expect(plain.HttpListener).toBeUndefined();
    expect(tls.HttpListener?.Properties).toMatchObject({ Protocol: 'TLS', Port: 8443 });
  });
});

describe('template.yaml: security groups', () => {
  it.each(configs.map((c) => [c.name, c.ev] as const))('%s: clients reach only 50051/8443 on the load balancer, from the named CIDR or group', (name, ev) => {
    const rules = ingressRules(ev.resources());
    const clientFrom = [ev.params.ClientCidr, ev.params.ClientSecurityGroupId].filter((v) => v);
    for (const r of rules.filter((x) => x.group === '<LoadBalancerSecurityGroup>')) {
      expect([name, r.port, r.toPort]).toEqual([name, r.port, r.port]);
      expect([50051, 8443]).toContain(r.port);
      expect(clientFrom).toContain(r.from);
    }
    expect(rules.some((r) => r.from === '0.0.0.0/0' || r.from === '::/0')).toBe(false);
  });

  it.each(configs.map((c) => [c.name, c.ev] as const))('%s: the tasks take 50051/8443 from the load balancer (and 50051 from the schema function), 50053 only from themselves, nothing else', (_name, ev) => {
    const task = ingressRules(ev.resources())
      .filter((r) => r.group === '<TaskSecurityGroup>')
      .map((r) => `${r.port}-${r.toPort} from ${r.from}`)
      .sort();
    expect(task).toEqual(
      [
        '50051-50051 from <LoadBalancerSecurityGroup>',
        '8443-8443 from <LoadBalancerSecurityGroup>',
        '50051-50051 from <SchemaFunctionSecurityGroup>',
        '50053-50053 from <TaskSecurityGroup>',
      ].sort(),
    );
  });

  it('opens metrics (9090) to nothing', () => {
    for (const { ev } of configs) {
      for (const r of ingressRules(ev.resources())) expect(9090 >= r.port && 9090 <= r.toPort).toBe(false);
    }
  });

  it('lets PostgreSQL into the RDS instance only from the datastore clients (tasks and migration task)', () => {
    const res = new Evaluator(template, CONFIGS['rds (defaults)']).resources();
    expect(ingressRules(res).filter((r) => r.group === '<DatabaseSecurityGroup>')).toEqual([{ group: '<DatabaseSecurityGroup>', port: 5432, toPort: 5432, from: '<DatastoreClientSecurityGroup>' }]);
    expect(res.Service?.Properties?.NetworkConfiguration).toMatchObject({
      AwsvpcConfiguration: { SecurityGroups: ['<TaskSecurityGroup>', '<DatastoreClientSecurityGroup>'], AssignPublicIp: 'DISABLED' },
    });
    expect(res.DatastoreMigration?.Properties?.SecurityGroups).toEqual(['<MigrationSecurityGroup>', '<DatastoreClientSecurityGroup>']);
  });

  it('describes every rule (inline and separate)', () => {
    for (const { ev } of configs) {
      for (const [id, r] of Object.entries(ev.resources())) {
        const p = r.Properties ?? {};
        const rules =
          r.Type === 'AWS::EC2::SecurityGroup'
            ? [...((p.SecurityGroupIngress ?? []) as Record<string, Json>[]), ...((p.SecurityGroupEgress ?? []) as Record<string, Json>[])]
            : r.Type === 'AWS::EC2::SecurityGroupIngress' || r.Type === 'AWS::EC2::SecurityGroupEgress'
              ? [p]
              : [];
        for (const rule of rules) expect([id, typeof rule.Description]).toEqual([id, 'string']);
      }
    }
  });
});

describe('template.yaml: IAM', () => {
  it.each(configs.map((c) => [c.name, c.ev] as const))('%s: no mutating action on a "*" resource', (_name, ev) => {
    const offenders = statementsOf(ev.resources())
      .filter((s) => s.resources.some((r) => r === '*') && s.actions.some((a) => !isReadOnlyAction(a)))
      .map((s) => `${s.role}/${s.sid}: ${s.actions.join(',')}`);
    // ecr:GetAuthorizationToken (a read, named "Get") is the only token call; nothing else.
    expect(offenders).toEqual([]);
  });

  const res = new Evaluator(template, CONFIGS['rds (defaults)']).resources();
  const statements = statementsOf(res);

  it('lets the registrar and reconciler change only their Cloud Map service and its hosted zone records', () => {
    const discovery = statements.filter((s) => s.role === 'DiscoveryFunctionRole');
    const mutating = discovery.filter((s) => s.actions.some((a) => !isReadOnlyAction(a)));
    const byResource = Object.fromEntries(mutating.map((s) => [s.sid, [s.actions.filter((a) => !isReadOnlyAction(a)).sort(), s.resources]]));
    expect(byResource).toEqual({
      Logs: [['logs:CreateLogStream', 'logs:PutLogEvents'], ['<RegistrarLogGroup.Arn>', '<ReconcilerLogGroup.Arn>']],
      CloudMapInstances: [['servicediscovery:DeregisterInstance', 'servicediscovery:RegisterInstance'], ['<DiscoveryService.Arn>']],
      Route53Records: [['route53:ChangeResourceRecordSets'], ['arn:aws:route53:::hostedzone/<DiscoveryNamespace.HostedZoneId>']],
      DeadLetters: [['sqs:SendMessage'], ['<EventsDeadLetterQueue.Arn>']],
    });
    const listTasks = discovery.find((s) => s.actions.includes('ecs:ListTasks'));
    expect(listTasks?.condition).toEqual({ ArnEquals: { 'ecs:cluster': '<Cluster.Arn>' } });
  });

  it.each(configs.map((c) => [c.name, c.ev] as const))('%s: the execution roles read only the secrets their containers get', (_name, ev) => {
    const r = ev.resources();
    const reads = (role: string): string[] =>
      statementsOf(r)
        .filter((s) => s.role === role && s.actions.includes('secretsmanager:GetSecretValue'))
        .flatMap((s) => s.resources)
        .sort();
    const secretsOfTask = (td: string, c: string): string[] => (r[td] ? Object.values(secretsOf(container(r, td, c))).sort() : []);
    expect(reads('ExecutionRole')).toEqual(secretsOfTask('TaskDefinition', 'spicedb'));
    expect(reads('MigrationExecutionRole')).toEqual(secretsOfTask('MigrationTaskDefinition', 'migrate'));
    expect(secretsOfTask('MigrationTaskDefinition', 'migrate').some((s) => s.includes('PresharedKey'))).toBe(false);
  });

  it('lets the migration function run only the migration task definition, in this cluster, passing only its role', () => {
    const m = statements.filter((s) => s.role === 'MigrationFunctionRole');
    expect(m.find((s) => s.actions.includes('ecs:RunTask'))).toMatchObject({
      resources: ['arn:aws:ecs:us-east-1:123456789012:task-definition/mystack-spicedb-migrate:*'],
      condition: { ArnEquals: { 'ecs:cluster': '<Cluster.Arn>' } },
    });
    expect(res.MigrationTaskDefinition?.Properties?.Family).toBe('mystack-spicedb-migrate');
    expect(m.find((s) => s.actions.includes('iam:PassRole'))).toMatchObject({ resources: ['<MigrationExecutionRole.Arn>'] });
    expect(m.find((s) => s.actions.includes('logs:GetLogEvents'))?.resources).toEqual([
      'arn:aws:logs:us-east-1:123456789012:log-group:<SpiceDBLogGroup>:log-stream:migrate/*',
    ]);
  });

  it('keeps the schema function\'s network interfaces in this VPC and its secret reads to the preshared key', () => {
    const s = statementsOf(new Evaluator(template, CONFIGS['existing postgres, TLS, gateway, schema, KMS']).resources()).filter((x) => x.role === 'SchemaFunctionRole');
    expect(s.find((x) => x.sid === 'VpcNetworkInterfaces')?.condition).toEqual({ ArnEquals: { 'ec2:Vpc': `arn:aws:ec2:us-east-1:123456789012:vpc/${REQUIRED.VpcId}` } });
    expect(s.filter((x) => x.actions.includes('secretsmanager:GetSecretValue')).flatMap((x) => x.resources)).toEqual(['<PresharedKeySecret>']);
  });
});

describe('template.yaml: discovery wiring', () => {
  const res = new Evaluator(template, CONFIGS['rds (defaults)']).resources();
  const env = (id: string): Record<string, Json> => (res[id]?.Properties?.Environment as { Variables: Record<string, Json> }).Variables;

  it('gives the registrar and reconciler the agreed environment', () => {
    for (const id of ['RegistrarFunction', 'ReconcilerFunction']) {
      expect(env(id)).toMatchObject({
        ECS_CLUSTER_ARN: '<Cluster.Arn>',
        ECS_SERVICE_NAME: 'mystack-spicedb',
        CLOUD_MAP_SERVICE_ID: '<DiscoveryService.Id>',
        DISPATCH_PORT: '50053',
      });
    }
    expect(res.Service?.Properties?.ServiceName).toBe('mystack-spicedb');
  });

  it('triggers the registrar on this cluster\'s and service\'s task state changes, with retries and a dead-letter queue', () => {
    const event = (res.RegistrarFunction?.Properties?.Events as Record<string, { Type: string; Properties: Record<string, Json> }>).TaskStateChange;
    expect(event?.Type).toBe('EventBridgeRule');
    expect(event?.Properties.Pattern).toEqual({
      source: ['aws.ecs'],
      'detail-type': ['ECS Task State Change'],
      detail: { clusterArn: ['<Cluster.Arn>'], group: [`service:${String(res.Service?.Properties?.ServiceName)}`] },
    });
    expect(event?.Properties.RetryPolicy).toMatchObject({ MaximumRetryAttempts: expect.any(Number), MaximumEventAgeInSeconds: expect.any(Number) });
    expect(event?.Properties.DeadLetterConfig).toEqual({ Arn: '<EventsDeadLetterQueue.Arn>' });
    expect(res.RegistrarFunction?.Properties?.EventInvokeConfig).toMatchObject({ DestinationConfig: { OnFailure: { Type: 'SQS', Destination: '<EventsDeadLetterQueue.Arn>' } } });
    // Without a queue policy EventBridge cannot dead-letter (SAM adds none when given an Arn).
    expect(res.EventsDeadLetterQueuePolicy?.Properties?.PolicyDocument).toMatchObject({
      Statement: [{ Principal: { Service: 'events.amazonaws.com' }, Action: 'sqs:SendMessage', Condition: { ArnEquals: { 'aws:SourceArn': '<RegistrarFunctionTaskStateChange.Arn>' } } }],
    });
  });

  it('runs the reconciler every minute', () => {
    expect(res.ReconcilerFunction?.Properties?.Events).toEqual({
      EveryMinute: { Type: 'Schedule', Properties: expect.objectContaining({ Schedule: 'rate(1 minute)' }) },
    });
  });

  it('starts the service only after the registrar\'s rule exists, so no first event is missed', () => {
    expect(template.Resources.Service?.DependsOn).toEqual(expect.arrayContaining(['RegistrarFunctionTaskStateChange', 'RegistrarFunctionTaskStateChangePermission']));
  });

  it('starts the service only after every listener of its target groups exists', () => {
    expect(template.Resources.Service?.DependsOn).toEqual(expect.arrayContaining(['GrpcListener']));
    const gateway = new Evaluator(template, { ...REQUIRED, HttpGatewayListener: 'true' }).resources().Service?.Properties;
    expect(gateway?.LoadBalancers).toEqual([
      { ContainerName: 'spicedb', ContainerPort: 50051, TargetGroupArn: '<GrpcTargetGroup>' },
      { ContainerName: 'spicedb', ContainerPort: 8443, TargetGroupArn: '<HttpTargetGroup>' },
    ]);
    expect(JSON.stringify(gateway?.Tags)).toContain('<HttpListener>');
  });
});

describe('template.yaml: service, migrations, schema', () => {
  const res = new Evaluator(template, CONFIGS['rds (defaults)']).resources();

  it('rolls out keeping capacity, with the circuit breaker rolling back', () => {
    expect(res.Service?.Properties?.DeploymentConfiguration).toEqual({
      MinimumHealthyPercent: 100,
      MaximumPercent: 200,
      DeploymentCircuitBreaker: { Enable: true, Rollback: true },
    });
    expect(res.Service?.Properties).toMatchObject({ LaunchType: 'FARGATE', PlatformVersion: 'LATEST' });
  });

  it('migrates with `spicedb datastore migrate head` in a one-off task, never in the serving tasks', () => {
    expect(container(res, 'MigrationTaskDefinition', 'migrate')).toMatchObject({ Command: ['datastore', 'migrate', 'head'], Image: template.Parameters?.SpiceDBImage?.Default });
    expect(container(res, 'TaskDefinition', 'spicedb').Command).not.toContain('migrate');
    expect(res.DatastoreMigration?.Properties).toMatchObject({
      ServiceToken: '<MigrationFunction.Arn>',
      TaskDefinitionArn: '<MigrationTaskDefinition>',
      ContainerName: 'migrate',
      LogStreamPrefix: 'migrate',
      Image: template.Parameters?.SpiceDBImage?.Default,
      ServeTaskDefinitionArn: '<TaskDefinition>',
    });
    const logOptions = (container(res, 'MigrationTaskDefinition', 'migrate').LogConfiguration as { Options: Record<string, Json> }).Options;
    expect(logOptions['awslogs-stream-prefix']).toBe(res.DatastoreMigration?.Properties?.LogStreamPrefix);
  });

  it('moves the service to a new task definition only through the migration (its output), with postgres', () => {
    expect(res.Service?.Properties?.TaskDefinition).toBe('<DatastoreMigration.ServeTaskDefinitionArn>');
    const mem = new Evaluator(template, CONFIGS['memory quickstart, internet-facing']).resources();
    expect(mem.DatastoreMigration).toBeUndefined();
    expect(mem.Service?.Properties?.TaskDefinition).toBe('<TaskDefinition>');
  });

  it('bounds both custom resources with ServiceTimeout above their function timeouts', () => {
    const full = new Evaluator(template, CONFIGS['existing postgres, TLS, gateway, schema, KMS']).resources();
    for (const [cr, fn] of [['DatastoreMigration', 'MigrationFunction'], ['SpiceDBSchema', 'SchemaFunction']] as const) {
      const serviceTimeout = Number(full[cr]?.Properties?.ServiceTimeout);
      const timeout = Number(full[fn]?.Properties?.Timeout);
      expect([cr, serviceTimeout > timeout && serviceTimeout <= 3600]).toEqual([cr, true]);
    }
  });

  it('writes the schema from inside the VPC after the service is up, reading the key by reference', () => {
    const full = new Evaluator(template, CONFIGS['existing postgres, TLS, gateway, schema, KMS']).resources();
    expect(template.Resources.SpiceDBSchema?.DependsOn).toBe('Service');
    expect(full.SpiceDBSchema?.Type).toBe('Custom::SpiceDBSchema');
    expect(full.SpiceDBSchema?.Properties).toEqual({
      ServiceToken: '<SchemaFunction.Arn>',
      ServiceTimeout: 360,
      SpiceDBEndpoint: 'spicedb.mystack.spicedb.internal:50051',
      SpiceDBTls: 'false',
      PresharedKeySecretArn: '<PresharedKeySecret>',
      Schema: 'definition user {}',
      Relationships: 'document:1#viewer@user:emilia',
      Assertions: { AssertTrue: ['document:1#view@user:emilia'], AssertFalse: ['document:1#view@user:beatrice'] },
      DeleteMode: 'keep',
    });
    expect(full.SchemaFunction?.Properties?.VpcConfig).toEqual({ SubnetIds: REQUIRED.PrivateSubnetIds!.split(','), SecurityGroupIds: ['<SchemaFunctionSecurityGroup>'] });
    expect(res.SpiceDBSchema).toBeUndefined();
  });
});

describe('template.yaml: Rules', () => {
  const violations = (overrides: Params): string[] => new Evaluator(template, { ...REQUIRED, ...overrides }).ruleViolations();

  it.each([
    ['the defaults', {}, []],
    ['memory with one task', { Datastore: 'memory', DesiredCount: '1' }, []],
    ['memory with three tasks', { Datastore: 'memory', DesiredCount: '3' }, ['MemoryDatastoreRunsOneTask']],
    ['existing postgres without its URI secret', { Datastore: 'postgres' }, ['ExistingPostgresNeedsUriSecret']],
    ['existing postgres with its URI secret', { Datastore: 'postgres', DatastoreUriSecretArn: SECRET_ARN }, []],
    ['no client CIDR or group', { ClientCidr: '' }, ['ClientsMustBeNamed']],
    ['only a client group', { ClientCidr: '', ClientSecurityGroupId: 'sg-0123456789abcdef0' }, []],
    ['internet-facing plaintext with real data', { LoadBalancerScheme: 'internet-facing', LoadBalancerSubnetIds: 'subnet-1,subnet-2' }, ['PlaintextInternetOnlyForQuickstart']],
    ['internet-facing without public subnets', { LoadBalancerScheme: 'internet-facing', Datastore: 'memory', DesiredCount: '1' }, ['InternetFacingNeedsSubnets']],
    ['a certificate without its DNS name', { CertificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/0d2f9c1e' }, ['TlsNeedsDnsName']],
    ['relationships without a schema', { Relationships: 'document:1#viewer@user:emilia' }, ['SeedNeedsSchema']],
    ['relationships with a schema', { Relationships: 'document:1#viewer@user:emilia', Schema: 'definition user {}' }, []],
  ] as [string, Params, string[]][])('%s -> %j', (_case, overrides, expected) => {
    expect(violations(overrides)).toEqual(expected);
  });

  it('enforces the memory datastore\'s one task on the template\'s own DesiredCount default too', () => {
    expect(Number(template.Parameters?.DesiredCount?.Default)).toBeGreaterThan(1);
    expect(violations({ Datastore: 'memory' })).toContain('MemoryDatastoreRunsOneTask');
  });
});

describe('template.yaml: secrets stay out of parameters and outputs', () => {
  it('asks for no secret value as a parameter: anything naming a key, password, token or URI is an ARN reference', () => {
    const words = (name: string): string[] => name.split(/(?=[A-Z])/).map((w) => w.toLowerCase());
    const sensitive = Object.entries(template.Parameters ?? {}).filter(([name]) => words(name).some((w) => ['key', 'password', 'token', 'uri', 'secret'].includes(w)));
    expect(sensitive.map(([name]) => name).sort()).toEqual(['DatastoreUriSecretArn', 'SecretsKmsKeyArn']);
    for (const [name, p] of sensitive) {
      expect([name, p.NoEcho === true || /\^arn:aws/.test(String(p.AllowedPattern))]).toEqual([name, true]);
    }
  });

  it.each(configs.map((c) => [c.name, c.ev] as const))('%s: outputs name secrets by ARN; the zed command reads the key from Secrets Manager when run', (_name, ev) => {
    const outputs = ev.outputs();
    for (const [name, value] of Object.entries(outputs)) {
      // No dynamic reference (it would put the value into the stack's outputs).
      expect([name, JSON.stringify(value).includes('{{resolve:')]).toEqual([name, false]);
    }
    expect(outputs.PresharedKeySecretArn).toBe('<PresharedKeySecret>');
    const zed = String(outputs.ZedContextCommand);
    expect(zed).toContain(`--secret-id <PresharedKeySecret> --query SecretString --output text`);
    expect(zed).toMatch(/^zed context set mystack \S+:50051 "\$\(aws secretsmanager get-secret-value /);
    const tls = ev.params.CertificateArn !== '';
    expect(zed.endsWith(' --insecure')).toBe(!tls);
  });

  it('keeps the DNS name the certificate covers as the endpoint when TLS is on', () => {
    const outputs = new Evaluator(template, CONFIGS['existing postgres, TLS, gateway, schema, KMS']).outputs();
    expect(outputs.Endpoint).toBe('spicedb.example.com:50051');
    expect(outputs.HttpGatewayEndpoint).toBe('https://spicedb.example.com:8443');
  });
});

describe('templates/vpc.yaml', () => {
  const vpc = loadTemplate(path.join(ROOT, 'templates', 'vpc.yaml'));
  const both = new Evaluator(vpc, { Egress: 'nat-and-endpoints' }).resources();

  it('enables DNS support and hostnames (Cloud Map private DNS and interface endpoints need both)', () => {
    expect(both.Vpc?.Properties).toMatchObject({ EnableDnsSupport: true, EnableDnsHostnames: true });
  });

  it('spreads two private and two public subnets over two AZs', () => {
    const subnets = Object.entries(both).filter(([, r]) => r.Type === 'AWS::EC2::Subnet');
    expect(subnets.map(([id]) => id).sort()).toEqual(['PrivateSubnet1', 'PrivateSubnet2', 'PublicSubnet1', 'PublicSubnet2']);
    expect(new Set(subnets.filter(([id]) => id.startsWith('Private')).map(([, r]) => r.Properties?.AvailabilityZone)).size).toBe(2);
    for (const [, r] of subnets) expect(r.Properties?.MapPublicIpOnLaunch).toBe(false);
  });

  it('offers endpoints for every AWS API the stack calls from the VPC, and S3 always', () => {
    const services = (res: Record<string, Resource>): string[] =>
      Object.values(res)
        .filter((r) => r.Type === 'AWS::EC2::VPCEndpoint')
        .map((r) => String(r.Properties?.ServiceName).replace('com.amazonaws.us-east-1.', ''))
        .sort();
    expect(services(both)).toEqual(['ecr.api', 'ecr.dkr', 'ecs', 'logs', 's3', 'secretsmanager', 'servicediscovery']);
    expect(services(new Evaluator(vpc, { Egress: 'nat' }).resources())).toEqual(['s3']);
    expect(new Evaluator(vpc, { Egress: 'endpoints' }).resources().NatGateway).toBeUndefined();
  });

  it('outputs what the SpiceDB stack takes', () => {
    expect(Object.keys(vpc.Outputs ?? {})).toEqual(expect.arrayContaining(['VpcId', 'PrivateSubnetIds', 'PublicSubnetIds']));
    expect(Object.keys(template.Parameters ?? {})).toEqual(expect.arrayContaining(['VpcId', 'PrivateSubnetIds', 'LoadBalancerSubnetIds']));
  });
});

describe('samconfig.toml', () => {
  const text = readFileSync(path.join(ROOT, 'samconfig.toml'), 'utf8');

  it('overrides only parameters the template has, with allowed values', () => {
    const overrides = [...text.matchAll(/^\s*"([A-Za-z0-9]+)=([^"]*)",?$/gm)].map((m) => [m[1] as string, m[2] as string] as const);
    expect(overrides.length).toBeGreaterThan(0);
    for (const [name, value] of overrides) {
      const p = template.Parameters?.[name];
      expect([name, p !== undefined]).toEqual([name, true]);
      if (Array.isArray(p?.AllowedValues)) expect(p.AllowedValues.map(String)).toContain(value);
    }
  });

  it('keeps a quickstart environment the Rules accept (memory, one task)', () => {
    const quick = text.slice(text.indexOf('[quickstart.deploy.parameters]'));
    const overrides = Object.fromEntries([...quick.matchAll(/^\s*"([A-Za-z0-9]+)=([^"]*)",?$/gm)].map((m) => [m[1] as string, m[2] as string]));
    expect(overrides).toMatchObject({ Datastore: 'memory', DesiredCount: '1' });
    expect(new Evaluator(template, { ...REQUIRED, ...overrides }).ruleViolations()).toEqual([]);
  });
});
