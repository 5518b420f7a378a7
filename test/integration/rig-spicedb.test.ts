/**
 * The rig's SpiceDB is real: `spicedb serve` with a preshared key on a
 * task-like loopback address answers the API through @authzed/authzed-node,
 * refuses a wrong key, and grpc_health_probe reports SERVING.
 */
import { v1 } from '@authzed/authzed-node';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { component } from '../../scripts/rig/components';
import { loopbackHost } from '../../scripts/rig/net';
import { run } from '../../scripts/rig/process';
import { startSpiceDB, type SpiceDB } from '../../scripts/rig/spicedb';
import { Cleanup, POST_SCHEMA, randomKey } from '../helpers/rig';

const cleanup = new Cleanup();
const key = randomKey();
let spicedb: SpiceDB;
let client: v1.ZedPromiseClientInterface;

beforeAll(async () => {
  spicedb = cleanup.add(await startSpiceDB({ host: loopbackHost(), presharedKey: key }));
  const c = v1.NewClient(key, spicedb.grpcEndpoint, v1.ClientSecurity.INSECURE_PLAINTEXT_CREDENTIALS);
  cleanup.defer(() => c.close());
  client = c.promises;
});
afterAll(() => cleanup.runAll());

const full = v1.Consistency.create({ requirement: { oneofKind: 'fullyConsistent', fullyConsistent: true } });
const ref = (objectType: string, objectId: string) => v1.ObjectReference.create({ objectType, objectId });
const subject = (id: string) => v1.SubjectReference.create({ object: ref('user', id) });

describe('spicedb serve on a task-like loopback address', () => {
  it('listens on an address other than 127.0.0.1', () => {
    expect(spicedb.host).not.toBe('127.0.0.1');
    expect(spicedb.grpcEndpoint.startsWith(`${spicedb.host}:`)).toBe(true);
  });

  it('answers WriteSchema, WriteRelationships, CheckPermission and LookupSubjects', async () => {
    await client.writeSchema(v1.WriteSchemaRequest.create({ schema: POST_SCHEMA }));
    const written = await client.writeRelationships(
      v1.WriteRelationshipsRequest.create({
        updates: [
          ['writer', 'sid'],
          ['reader', 'lena'],
        ].map(([relation, user]) =>
          v1.RelationshipUpdate.create({
            operation: v1.RelationshipUpdate_Operation.TOUCH,
            relationship: v1.Relationship.create({ resource: ref('post', '1'), relation, subject: subject(user as string) }),
          }),
        ),
      }),
    );
    expect(written.writtenAt?.token).toBeTruthy();

    const check = await client.checkPermission(
      v1.CheckPermissionRequest.create({ resource: ref('post', '1'), permission: 'read', subject: subject('lena'), consistency: full }),
    );
    expect(check.permissionship).toBe(v1.CheckPermissionResponse_Permissionship.HAS_PERMISSION);
    const denied = await client.checkPermission(
      v1.CheckPermissionRequest.create({ resource: ref('post', '1'), permission: 'write', subject: subject('lena'), consistency: full }),
    );
    expect(denied.permissionship).toBe(v1.CheckPermissionResponse_Permissionship.NO_PERMISSION);

    const subjects = await client.lookupSubjects(
      v1.LookupSubjectsRequest.create({ resource: ref('post', '1'), permission: 'read', subjectObjectType: 'user', consistency: full }),
    );
    expect(subjects.map((s) => s.subject?.subjectObjectId).sort()).toEqual(['lena', 'sid']);
  });

  // SpiceDB answers a missing key with UNAUTHENTICATED and a wrong one with
  // PERMISSION_DENIED ("invalid preshared key").
  it.each([
    ['a wrong preshared key', randomKey(), GrpcStatus.PERMISSION_DENIED],
    ['no preshared key', '', GrpcStatus.UNAUTHENTICATED],
  ])('refuses %s', async (_case, token, code) => {
    const other = v1.NewClient(token, spicedb.grpcEndpoint, v1.ClientSecurity.INSECURE_PLAINTEXT_CREDENTIALS);
    try {
      await expect(other.promises.readSchema(v1.ReadSchemaRequest.create({}))).rejects.toMatchObject({ code });
    } finally {
      other.close();
    }
  });

  it('is SERVING for grpc_health_probe, the checker the image ships', async () => {
    const out = await run({
      name: 'grpc_health_probe',
      command: component('GRPC_HEALTH_PROBE_BIN'),
      args: [`-addr=${spicedb.grpcEndpoint}`, '-connect-timeout=2s', '-rpc-timeout=2s'],
    });
    expect(out).toContain('status: SERVING');
  });
});
