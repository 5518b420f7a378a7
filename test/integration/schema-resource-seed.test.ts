/**
 * A large seed on SpiceDB backed by PostgreSQL (the production datastore):
 * 20,000 relationships written in batches of at most 1000 with bounded
 * concurrency, shrunk declaratively, then deleted. Durations are printed for
 * the record, not asserted (the benchmark is scripts/bench-seed.ts).
 */
import { v1 } from '@authzed/authzed-node';
import path from 'node:path';
import { handler } from '../../functions/schema-resource/handler';
import { closeSpiceDBClients } from '../../functions/shared/spicedb-client';
import { component } from '../../scripts/rig/components';
import { loopbackHost } from '../../scripts/rig/net';
import { startPostgres } from '../../scripts/rig/postgres';
import { run } from '../../scripts/rig/process';
import { migrate, startSpiceDB } from '../../scripts/rig/spicedb';
import { Cleanup, randomKey, uniqueName } from '../helpers/rig';
import { createSecret, invoke, relationshipsOf, request, startSchemaRig, type SchemaRig } from './schema-resource-rig';

const SCHEMA = `definition user {}

definition document {
  relation viewer: user
  relation editor: user
  permission view = viewer + editor
}
`;

const cleanup = new Cleanup();
let rig: SchemaRig;
let props: Record<string, unknown>;
let client: v1.ZedPromiseClientInterface;
let datastoreUri = '';

/** `count` distinct relationships over 1000 documents and 5000 users. */
const seed = (count: number): string[] =>
  Array.from({ length: count }, (_, i) => `document:doc${i % 1000}#${i % 7 === 0 ? 'editor' : 'viewer'}@user:u${Math.floor(i / 1000)}_${i % 5000}`);

beforeAll(async () => {
  // The rig gives moto (the key) and the response server; the seed goes to
  // a SpiceDB of its own on PostgreSQL.
  rig = await startSchemaRig();
  cleanup.defer(() => rig.cleanup.runAll());
  const host = loopbackHost();
  const postgres = cleanup.add(await startPostgres({ host }));
  const uri = await postgres.createDatabase(uniqueName('seed'));
  datastoreUri = uri;
  await migrate(uri);
  const key = randomKey();
  const spicedb = cleanup.add(await startSpiceDB({ host, presharedKey: key, datastoreUri: uri }));
  const c = v1.NewClient(key, spicedb.grpcEndpoint, v1.ClientSecurity.INSECURE_PLAINTEXT_CREDENTIALS);
  cleanup.defer(() => c.close());
  client = c.promises;
  props = rig.props({
    SpiceDBEndpoint: spicedb.grpcEndpoint,
    PresharedKeySecretArn: await createSecret(rig.moto, uniqueName('pg_key'), key),
    Schema: SCHEMA,
    DeleteMode: 'delete-relationships',
  });
}, 180_000);
afterAll(async () => {
  closeSpiceDBClients();
  await cleanup.runAll();
});

describe('a 20,000-relationship seed on PostgreSQL', () => {
  let id = '';

  it('creates it in batches and every relationship is there', async () => {
    const all = seed(20_000);
    const started = Date.now();
    const res = await invoke(rig, handler, request(rig, 'Create', { ...props, Relationships: all, Assertions: { AssertTrue: ['document:doc0#view@user:u0_0'] } }), 120_000);
    console.log(`create with 20,000 relationships: ${Date.now() - started} ms`);
    expect(res).toMatchObject({ Status: 'SUCCESS', Data: { RelationshipsTouched: '20000', AssertionsChecked: '1' } });
    id = res.PhysicalResourceId;
    const stored = await relationshipsOf(client, 'document');
    expect(stored).toHaveLength(20_000);
    expect(stored).toEqual([...all].sort());
  });

  it('shrinks it to 15,000, deleting exactly the 5,000 removed', async () => {
    // A live database has table statistics (autovacuum analyzes it); without
    // them PostgreSQL plans SpiceDB's batched DELETE as a filtered scan of
    // the whole table, about 1 s per 1000 deletes at this size.
    await run({ name: 'psql analyze', command: path.join(component('POSTGRES_BIN_DIR'), 'psql'), args: [datastoreUri, '-qAtc', 'ANALYZE'] });
    const before = { ...props, Relationships: seed(20_000) };
    const after = { ...props, Relationships: seed(15_000) };
    const started = Date.now();
    const res = await invoke(rig, handler, request(rig, 'Update', after, { old: before, physicalId: id }), 120_000);
    console.log(`update shrinking 20,000 to 15,000: ${Date.now() - started} ms`);
    expect(res).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: id, Data: { RelationshipsDeleted: '5000', RelationshipsTouched: '15000' } });
    expect(await relationshipsOf(client, 'document')).toEqual([...seed(15_000)].sort());
  });

  it('deletes all of it with DeleteMode delete-relationships', async () => {
    const res = await invoke(rig, handler, request(rig, 'Delete', { ...props, Relationships: seed(15_000) }, { physicalId: id }), 120_000);
    expect(res).toMatchObject({ Status: 'SUCCESS', Data: { RelationshipsDeleted: '15000' } });
    expect(await relationshipsOf(client, 'document')).toEqual([]);
  });
});
