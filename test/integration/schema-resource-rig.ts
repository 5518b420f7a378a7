/**
 * The rig for the schema resource's integration tests: a real SpiceDB with a
 * preshared key, moto holding the key in Secrets Manager, and the local
 * response server standing in for CloudFormation's ResponseURL. Events are
 * built from test/events/cloudformation and invoked through a handler the
 * way Lambda would (a fake Context with a settable remaining time).
 */
import { v1 } from '@authzed/authzed-node';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { CloudFormationCustomResourceEvent, Context } from 'aws-lambda';
import type { CustomResourceResponse } from '../../functions/shared/custom-resource';
import { formatRelationship, fromV1Relationship, parseRelationship, toV1Relationship } from '../../functions/shared/relationships';
import { component } from '../../scripts/rig/components';
import { startMoto, type Moto } from '../../scripts/rig/moto';
import { freePort, loopbackHost } from '../../scripts/rig/net';
import { ManagedProcess } from '../../scripts/rig/process';
import { startSpiceDB, type SpiceDB } from '../../scripts/rig/spicedb';
import { lambdaContext } from '../helpers/lambda-context';
import { cloudFormationEvent, startResponseServer, type ResponseServer } from '../helpers/response-server';
import { Cleanup, randomKey, uniqueName } from '../helpers/rig';

export type Handler = (event: CloudFormationCustomResourceEvent, context: Context) => Promise<void>;
export type Props = Record<string, unknown>;

export const FULL = v1.Consistency.create({ requirement: { oneofKind: 'fullyConsistent', fullyConsistent: true } });

/** The seed's post/user schema with a group for subject relations. */
export const SCHEMA_V1 = `definition user {}

definition group {
  relation member: user
}

definition post {
  relation reader: user | user:* | group#member
  relation writer: user

  permission read = reader + writer
  permission write = writer
}
`;

export interface SchemaRig {
  spicedb: SpiceDB;
  moto: Moto;
  responses: ResponseServer;
  presharedKey: string;
  /** A secret whose string is the key. */
  secretArn: string;
  /** A secret holding {"presharedKey": ...}. */
  jsonSecretArn: string;
  /** A test-side client, for checking what the resource did. */
  client: v1.ZedPromiseClientInterface;
  cleanup: Cleanup;
  /** Base properties pointing at this rig's SpiceDB and secret. */
  props(overrides?: Props): Props;
  /** All relationships of `resourceType`, as sorted text (fully consistent). */
  relationships(resourceType: string): Promise<string[]>;
  /** DiffSchema of `schema` against the stored one: [] when they are the same. */
  schemaDiff(schema: string): Promise<string[]>;
}

export async function createSecret(moto: Moto, name: string, value: string): Promise<string> {
  const sm = new SecretsManagerClient({ endpoint: moto.endpoint, region: moto.awsEnv.AWS_REGION, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  try {
    const out = await sm.send(new CreateSecretCommand({ Name: name, SecretString: value }));
    return out.ARN as string;
  } finally {
    sm.destroy();
  }
}

/** Starts moto, the response server and SpiceDB (memory datastore); points the SDK at moto. */
export async function startSchemaRig(): Promise<SchemaRig> {
  const cleanup = new Cleanup();
  const host = loopbackHost();
  const presharedKey = randomKey();
  try {
    const [moto, responses, spicedb] = await Promise.all([
      startMoto({ host }).then((m) => cleanup.add(m)),
      startResponseServer(host).then((r) => cleanup.add(r)),
      startSpiceDB({ host, presharedKey }).then((s) => cleanup.add(s)),
    ]);
    // The handler's module-scope SDK clients read these on first use; the
    // previous values come back at cleanup (jest reuses worker processes).
    const saved = Object.fromEntries(Object.keys(moto.awsEnv).map((k) => [k, process.env[k]]));
    Object.assign(process.env, moto.awsEnv);
    cleanup.defer(() => {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    });
    const secretArn = await createSecret(moto, uniqueName('spicedb_key'), presharedKey);
    const jsonSecretArn = await createSecret(moto, uniqueName('spicedb_key_json'), JSON.stringify({ presharedKey, note: 'json form' }));
    const c = v1.NewClient(presharedKey, spicedb.grpcEndpoint, v1.ClientSecurity.INSECURE_PLAINTEXT_CREDENTIALS);
    cleanup.defer(() => c.close());
    const client = c.promises;
    return {
      spicedb,
      moto,
      responses,
      presharedKey,
      secretArn,
      jsonSecretArn,
      client,
      cleanup,
      props: (overrides = {}) => ({
        ServiceToken: 'arn:aws:lambda:us-east-1:123456789012:function:spicedb-ecs-SchemaFunction-AbCdEf123456',
        SpiceDBEndpoint: spicedb.grpcEndpoint,
        SpiceDBTls: 'false',
        PresharedKeySecretArn: secretArn,
        Schema: SCHEMA_V1,
        ...overrides,
      }),
      relationships: (resourceType) => relationshipsOf(client, resourceType),
      async schemaDiff(schema) {
        const res = await client.diffSchema(v1.DiffSchemaRequest.create({ consistency: FULL, comparisonSchema: schema }));
        return res.diffs.map((d) => d.diff.oneofKind ?? '?');
      },
    };
  } catch (err) {
    await cleanup.runAll().catch(() => undefined);
    throw err;
  }
}

/** All relationships of `resourceType` on the server behind `client`, as sorted text (fully consistent). */
/** TOUCHes relationships written in the zed syntax, as someone other than the resource would. */
export async function touchRelationships(client: v1.ZedPromiseClientInterface, relationships: string[]): Promise<void> {
  await client.writeRelationships(
    v1.WriteRelationshipsRequest.create({
      updates: relationships.map((r) =>
        v1.RelationshipUpdate.create({ operation: v1.RelationshipUpdate_Operation.TOUCH, relationship: toV1Relationship(parseRelationship(r)) }),
      ),
    }),
  );
}

export async function relationshipsOf(client: v1.ZedPromiseClientInterface, resourceType: string): Promise<string[]> {
  const rows = await client.readRelationships(
    v1.ReadRelationshipsRequest.create({ consistency: FULL, relationshipFilter: v1.RelationshipFilter.create({ resourceType }) }),
  );
  return rows.map((r) => formatRelationship(fromV1Relationship(r.relationship as v1.Relationship))).sort();
}

let sequence = 0;

/** A request of `type` from the fixtures, with its own RequestId and ResponseURL. */
export function request(
  rig: Pick<SchemaRig, 'responses'>,
  type: 'Create' | 'Update' | 'Delete',
  props: Props,
  extra: { old?: Props; physicalId?: string; logicalId?: string } = {},
): CloudFormationCustomResourceEvent {
  const fixture = { Create: 'schema-create', Update: 'schema-update', Delete: 'schema-delete' }[type];
  const event = cloudFormationEvent(fixture) as CloudFormationCustomResourceEvent & Record<string, unknown>;
  sequence++;
  event.RequestId = `00000000-0000-4000-8000-${String(sequence).padStart(12, '0')}`;
  event.ResponseURL = rig.responses.url(`${type.toLowerCase()}-${sequence}`);
  event.ResourceProperties = props as CloudFormationCustomResourceEvent['ResourceProperties'];
  if (extra.logicalId) event.LogicalResourceId = extra.logicalId;
  if (type !== 'Create') event.PhysicalResourceId = extra.physicalId ?? 'unset-physical-id';
  if (type === 'Update') event.OldResourceProperties = extra.old ?? {};
  return event;
}

/** Invokes `handler` like Lambda and returns the one response it PUT. */
export async function invoke(
  rig: Pick<SchemaRig, 'responses'>,
  handler: Handler,
  event: CloudFormationCustomResourceEvent,
  remainingMs = 90_000,
): Promise<CustomResourceResponse> {
  await handler(event, lambdaContext(remainingMs));
  const accepted = rig.responses.responsesFor(event.ResponseURL);
  if (accepted.length !== 1) throw new Error(`expected exactly one response for ${event.RequestId}, got ${accepted.length}`);
  return accepted[0] as CustomResourceResponse;
}

/**
 * `spicedb serve` on a given host and port without waiting for it: the
 * rig's startSpiceDB picks its own port and waits for SERVING over
 * plaintext, but a test of "not up yet" needs the endpoint before the server
 * exists, and a TLS server does not answer plaintext health checks.
 */
export async function spawnSpiceDB(opts: {
  host: string;
  port: number;
  presharedKey: string;
  /** PostgreSQL URI; the memory datastore when absent. */
  datastoreUri?: string;
  extraArgs?: string[];
}): Promise<ManagedProcess> {
  const metricsPort = await freePort(opts.host);
  return new ManagedProcess({
    name: `spicedb@${opts.host}:${opts.port}`,
    command: component('SPICEDB_BIN'),
    args: [
      'serve',
      `--grpc-addr=${opts.host}:${opts.port}`,
      `--metrics-addr=${opts.host}:${metricsPort}`,
      '--http-enabled=false',
      '--telemetry-endpoint=',
      '--skip-release-check',
      '--log-format=json',
      '--log-level=error',
      ...(opts.datastoreUri ? ['--datastore-engine=postgres', `--datastore-conn-uri=${opts.datastoreUri}`] : ['--datastore-engine=memory']),
      ...(opts.extraArgs ?? []),
    ],
    env: { ...process.env, SPICEDB_GRPC_PRESHARED_KEY: opts.presharedKey },
  });
}
