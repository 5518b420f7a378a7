/**
 * The rig's PostgreSQL is real: `spicedb datastore migrate head` runs against
 * it, and two `spicedb serve` processes on that database see each other's
 * writes (the shape of a multi-task service).
 */
import { v1 } from '@authzed/authzed-node';
import { loopbackHost } from '../../scripts/rig/net';
import { migrate, startSpiceDB, type SpiceDB } from '../../scripts/rig/spicedb';
import { startPostgres } from '../../scripts/rig/postgres';
import { Cleanup, POST_SCHEMA, randomKey, uniqueName } from '../helpers/rig';

const cleanup = new Cleanup();
const key = randomKey();
let nodes: SpiceDB[];
let datastoreUri: string;

beforeAll(async () => {
  const pg = cleanup.add(await startPostgres());
  datastoreUri = await pg.createDatabase(uniqueName('spicedb'));
  await migrate(datastoreUri);
  nodes = await Promise.all(
    [0, 1].map(async (i) => cleanup.add(await startSpiceDB({ host: loopbackHost(), presharedKey: key, datastoreUri, name: `node-${i}` }))),
  );
});
afterAll(() => cleanup.runAll());

const client = (node: SpiceDB): v1.ZedPromiseClientInterface => {
  const c = v1.NewClient(key, node.grpcEndpoint, v1.ClientSecurity.INSECURE_PLAINTEXT_CREDENTIALS);
  cleanup.defer(() => c.close());
  return c.promises;
};
const full = v1.Consistency.create({ requirement: { oneofKind: 'fullyConsistent', fullyConsistent: true } });

describe('spicedb on the rig PostgreSQL', () => {
  it('migrating again at head succeeds (a no-op)', async () => {
    await expect(migrate(datastoreUri)).resolves.toBeDefined();
  });

  it('two serve processes on one database see each other\'s writes', async () => {
    const [a, b] = nodes.map(client) as [v1.ZedPromiseClientInterface, v1.ZedPromiseClientInterface];
    await a.writeSchema(v1.WriteSchemaRequest.create({ schema: POST_SCHEMA }));
    await b.writeRelationships(
      v1.WriteRelationshipsRequest.create({
        updates: [
          v1.RelationshipUpdate.create({
            operation: v1.RelationshipUpdate_Operation.TOUCH,
            relationship: v1.Relationship.create({
              resource: v1.ObjectReference.create({ objectType: 'post', objectId: 'shared' }),
              relation: 'reader',
              subject: v1.SubjectReference.create({ object: v1.ObjectReference.create({ objectType: 'user', objectId: 'ana' }) }),
            }),
          }),
        ],
      }),
    );
    // The schema written through A is read back through B, and B's write is checked through A.
    const schema = await b.readSchema(v1.ReadSchemaRequest.create({}));
    expect(schema.schemaText).toContain('definition post');
    const check = await a.checkPermission(
      v1.CheckPermissionRequest.create({
        resource: v1.ObjectReference.create({ objectType: 'post', objectId: 'shared' }),
        permission: 'read',
        subject: v1.SubjectReference.create({ object: v1.ObjectReference.create({ objectType: 'user', objectId: 'ana' }) }),
        consistency: full,
      }),
    );
    expect(check.permissionship).toBe(v1.CheckPermissionResponse_Permissionship.HAS_PERMISSION);
  });
});
