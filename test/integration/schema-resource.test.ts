/**
 * Custom::SpiceDBSchema end to end: the handler of
 * functions/schema-resource/handler.ts against a real SpiceDB (preshared
 * key), the key in moto's Secrets Manager, and the local response server as
 * the ResponseURL. Each test uses its own object ids (or resource types), so
 * tests share one server without seeing each other's seed.
 */
import { v1 } from '@authzed/authzed-node';
import { handler } from '../../functions/schema-resource/handler';
import { PHYSICAL_ID_PREFIX } from '../../functions/schema-resource/physical-id';
import { FAILED_CREATE_PREFIX } from '../../functions/shared/custom-resource';
import { closeSpiceDBClients } from '../../functions/shared/spicedb-client';
import { freePort, loopbackHost } from '../../scripts/rig/net';
import { startSpiceDB } from '../../scripts/rig/spicedb';
import { invoke, relationshipsOf, request, SCHEMA_V1, startSchemaRig, touchRelationships, type Props, type SchemaRig } from './schema-resource-rig';

let rig: SchemaRig;

beforeAll(async () => {
  rig = await startSchemaRig();
});
afterAll(async () => {
  closeSpiceDBClients();
  await rig.cleanup.runAll();
});

/** A schema with the seed's types plus an `editor` relation. */
const SCHEMA_V2 = SCHEMA_V1.replace('  relation writer: user\n', '  relation writer: user\n  relation editor: user\n').replace(
  '  permission write = writer\n',
  '  permission write = writer + editor\n',
);
/** SCHEMA_V1 without `reader` (read = writer). */
const SCHEMA_NO_READER = SCHEMA_V1.replace('  relation reader: user | user:* | group#member\n', '').replace('permission read = reader + writer', 'permission read = writer');

/** Creates a resource and returns its id and properties. */
async function created(props: Props): Promise<{ id: string; props: Props }> {
  const res = await invoke(rig, handler, request(rig, 'Create', props));
  expect(res).toMatchObject({ Status: 'SUCCESS' });
  return { id: res.PhysicalResourceId, props };
}

const update = (id: string, props: Props, old: Props) => invoke(rig, handler, request(rig, 'Update', props, { old, physicalId: id }));

describe('Create', () => {
  it('writes the schema and seed, runs the assertions and returns a usable ZedToken', async () => {
    // Prepare
    const props = rig.props({
      Relationships: ['post:c1#writer@user:sid', 'post:c1#reader@user:lena', 'post:c1#reader@group:eng#member', 'group:eng#member@user:ann', 'post:pub1#reader@user:*'],
      Assertions: {
        AssertTrue: ['post:c1#read@user:lena', 'post:c1#read@user:ann', 'post:c1#write@user:sid', 'post:pub1#read@user:anyone'],
        AssertFalse: ['post:c1#write@user:lena'],
      },
    });
    // Act
    const res = await invoke(rig, handler, request(rig, 'Create', props));
    // Assess
    expect(res.Status).toBe('SUCCESS');
    expect(res.PhysicalResourceId.startsWith(PHYSICAL_ID_PREFIX)).toBe(true);
    expect(res.Data).toMatchObject({ RelationshipsTouched: '5', RelationshipsDeleted: '0', AssertionsChecked: '5' });
    expect(await rig.schemaDiff(SCHEMA_V1)).toEqual([]);
    expect(await rig.relationships('post')).toEqual(expect.arrayContaining(['post:c1#reader@group:eng#member', 'post:c1#reader@user:lena', 'post:c1#writer@user:sid', 'post:pub1#reader@user:*']));
    // The token reads at least as fresh as the seed.
    const token = String(res.Data?.ZedToken);
    expect(token).not.toBe('');
    const check = await rig.client.checkPermission(
      v1.CheckPermissionRequest.create({
        consistency: v1.Consistency.create({ requirement: { oneofKind: 'atLeastAsFresh', atLeastAsFresh: v1.ZedToken.create({ token }) } }),
        resource: v1.ObjectReference.create({ objectType: 'post', objectId: 'c1' }),
        permission: 'read',
        subject: v1.SubjectReference.create({ object: v1.ObjectReference.create({ objectType: 'user', objectId: 'ann' }) }),
      }),
    );
    expect(check.permissionship).toBe(v1.CheckPermissionResponse_Permissionship.HAS_PERMISSION);
  });

  it('gives the same PhysicalResourceId to a re-delivered Create', async () => {
    const props = rig.props({ Relationships: ['post:dup1#writer@user:sid'] });
    const first = await invoke(rig, handler, request(rig, 'Create', props));
    const again = await invoke(rig, handler, request(rig, 'Create', props));
    expect(first.Status).toBe('SUCCESS');
    expect(again).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: first.PhysicalResourceId });
    expect((await rig.relationships('post')).filter((r) => r.startsWith('post:dup1#'))).toEqual(['post:dup1#writer@user:sid']);
  });

  it('reads a key stored as JSON {"presharedKey": ...}', async () => {
    const res = await invoke(rig, handler, request(rig, 'Create', rig.props({ PresharedKeySecretArn: rig.jsonSecretArn })));
    expect(res.Status).toBe('SUCCESS');
  });
});

describe('Update', () => {
  it('applies the same update twice without change or error', async () => {
    const { id, props } = await created(rig.props({ Relationships: ['post:u1#writer@user:sid', 'post:u1#reader@user:lena'] }));
    const first = await update(id, props, props);
    const second = await update(id, props, props);
    for (const res of [first, second]) {
      expect(res).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: id });
      expect(res.Data).toMatchObject({ SchemaChanges: 'no changes', RelationshipsTouched: '2', RelationshipsDeleted: '0' });
    }
    expect((await rig.relationships('post')).filter((r) => r.startsWith('post:u1#'))).toEqual(['post:u1#reader@user:lena', 'post:u1#writer@user:sid']);
  });

  it('changes the schema, reports the change and seeds the new relation', async () => {
    const { id, props } = await created(rig.props({ Relationships: ['post:u2#writer@user:sid'] }));
    const next = { ...props, Schema: SCHEMA_V2, Relationships: ['post:u2#writer@user:sid', 'post:u2#editor@user:ed'], Assertions: { AssertTrue: ['post:u2#write@user:ed'] } };
    const res = await update(id, next, props);
    expect(res).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: id });
    expect(String(res.Data?.SchemaChanges)).toContain('+relation post#editor');
    expect(String(res.Data?.SchemaChanges)).toContain('~permission post#write');
    expect(await rig.schemaDiff(SCHEMA_V2)).toEqual([]);
    expect(await rig.relationships('post')).toContain('post:u2#editor@user:ed');
    // Put the shared server back to SCHEMA_V1 for the other tests.
    const back = await update(id, props, next);
    expect(back.Status).toBe('SUCCESS');
    expect(await rig.schemaDiff(SCHEMA_V1)).toEqual([]);
    expect(await rig.relationships('post')).not.toContain('post:u2#editor@user:ed');
  });

  it('fails a removal blocked by data with SpiceDB\'s text, and the rollback restores the old schema and seed', async () => {
    // Prepare: the seed has readers, and someone else wrote a reader too.
    const { id, props } = await created(rig.props({ Relationships: ['post:r1#writer@user:sid', 'post:r1#reader@user:lena'] }));
    await touchRelationships(rig.client, ['post:r1#reader@user:outsider']);
    const next = { ...props, Schema: SCHEMA_NO_READER, Relationships: ['post:r1#writer@user:sid'] };
    // Act
    const failed = await update(id, next, props);
    // Assess
    expect(failed.Status).toBe('FAILED');
    expect(failed.Reason).toMatch(/^WriteSchema failed: (INVALID_ARGUMENT|FAILED_PRECONDITION): cannot delete relation `reader` in object definition `post`/);
    // CloudFormation's rollback: the old properties again, the failed ones as old.
    const rollback = await update(id, props, next);
    expect(rollback).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: id });
    expect(await rig.schemaDiff(SCHEMA_V1)).toEqual([]);
    expect((await rig.relationships('post')).filter((r) => r.startsWith('post:r1#'))).toEqual([
      'post:r1#reader@user:lena',
      'post:r1#reader@user:outsider',
      'post:r1#writer@user:sid',
    ]);
  });

  it('fails on failed assertions, naming each and what it got, and the rollback restores', async () => {
    const { id, props } = await created(rig.props({ Relationships: ['post:a1#writer@user:sid'] }));
    const next = {
      ...props,
      Schema: SCHEMA_V2,
      Relationships: ['post:a1#writer@user:sid', 'post:a1#editor@user:ed'],
      Assertions: { AssertTrue: ['post:a1#read@user:ed', 'post:a1#write@user:ed'], AssertFalse: ['post:a1#write@user:sid'] },
    };
    const failed = await update(id, next, props);
    expect(failed.Status).toBe('FAILED');
    expect(failed.Reason).toBe(
      '2 of 3 assertions failed: Assertions.AssertTrue[0] "post:a1#read@user:ed": expected HAS_PERMISSION, got NO_PERMISSION; ' +
        'Assertions.AssertFalse[0] "post:a1#write@user:sid": expected NO_PERMISSION, got HAS_PERMISSION',
    );
    // The failed update had written its schema and seed.
    expect(await rig.relationships('post')).toContain('post:a1#editor@user:ed');
    const rollback = await update(id, props, next);
    expect(rollback.Status).toBe('SUCCESS');
    expect(await rig.schemaDiff(SCHEMA_V1)).toEqual([]);
    expect((await rig.relationships('post')).filter((r) => r.startsWith('post:a1#'))).toEqual(['post:a1#writer@user:sid']);
  });

  it('fails a schema that does not parse with line and column, touching nothing, and the rollback succeeds', async () => {
    const { id, props } = await created(rig.props({ Relationships: ['post:p1#writer@user:sid'] }));
    const broken = { ...props, Schema: 'definition user {}\n\ndefinition post {\n  relation writer: user\n  permission write = \n}\n', Relationships: [] };
    const failed = await update(id, broken, props);
    expect(failed.Status).toBe('FAILED');
    expect(failed.Reason).toMatch(/^Schema \(DiffSchema\) failed: INVALID_ARGUMENT: parse error in `schema`, line \d+, column \d+: /);
    // Nothing was deleted: the schema did not compile, so no step ran.
    expect(await rig.relationships('post')).toContain('post:p1#writer@user:sid');
    const rollback = await update(id, props, broken);
    expect(rollback.Status).toBe('SUCCESS');
    expect(await rig.schemaDiff(SCHEMA_V1)).toEqual([]);
  });

  it('deletes only the seeded relationships that were removed from the list', async () => {
    const { id, props } = await created(rig.props({ Relationships: ['post:s1#reader@user:a', 'post:s1#reader@user:b', 'post:s1#reader@user:c', 'post:s1#writer@user:w'] }));
    await touchRelationships(rig.client, ['post:s1#reader@user:x', 'post:s1#reader@user:b2']);
    const res = await update(id, { ...props, Relationships: ['post:s1#reader@user:a', 'post:s1#writer@user:w'] }, props);
    expect(res.Status).toBe('SUCCESS');
    expect(res.Data).toMatchObject({ RelationshipsDeleted: '2', RelationshipsTouched: '2' });
    expect((await rig.relationships('post')).filter((r) => r.startsWith('post:s1#'))).toEqual([
      'post:s1#reader@user:a',
      'post:s1#reader@user:b2',
      'post:s1#reader@user:x',
      'post:s1#writer@user:w',
    ]);
  });

  it('skips the malformed entries of the failed properties when rolling back from a validation failure', async () => {
    const { id, props } = await created(rig.props({ Relationships: ['post:v1#writer@user:sid'] }));
    const bad = { ...props, Relationships: ['post:v1#writer@user:sid', 'not a relationship'] };
    const failed = await update(id, bad, props);
    expect(failed.Status).toBe('FAILED');
    expect(failed.Reason).toBe('invalid properties: Relationships[1]: invalid relationship "not a relationship": invalid relationship string; expected resource:id#relation@subject:id[#relation][[caveat:{json}]][[expiration:RFC3339]]');
    const rollback = await update(id, props, bad);
    expect(rollback.Status).toBe('SUCCESS');
    expect((await rig.relationships('post')).filter((r) => r.startsWith('post:v1#'))).toEqual(['post:v1#writer@user:sid']);
  });

  it('gives a new PhysicalResourceId when SpiceDBEndpoint changes, and the Delete of the old id does no harm', async () => {
    // Prepare: a resource on another SpiceDB (same key), with DeleteMode delete-relationships.
    const other = await startSpiceDB({ host: loopbackHost(), presharedKey: rig.presharedKey });
    rig.cleanup.add(other);
    const seed = ['post:e1#writer@user:sid'];
    const oldProps = rig.props({ SpiceDBEndpoint: other.grpcEndpoint, Relationships: seed, DeleteMode: 'delete-relationships' });
    const { id: oldId } = await created(oldProps);
    const otherClient = v1.NewClient(rig.presharedKey, other.grpcEndpoint, v1.ClientSecurity.INSECURE_PLAINTEXT_CREDENTIALS);
    rig.cleanup.defer(() => otherClient.close());
    expect(await relationshipsOf(otherClient.promises, 'post')).toEqual(seed);
    const newProps = { ...oldProps, SpiceDBEndpoint: rig.spicedb.grpcEndpoint };
    // Act: the update that moves the resource, then CloudFormation's Delete of the old id.
    const moved = await update(oldId, newProps, oldProps);
    const del = await invoke(rig, handler, request(rig, 'Delete', oldProps, { physicalId: oldId }));
    // Assess
    expect(moved.Status).toBe('SUCCESS');
    expect(moved.PhysicalResourceId).not.toBe(oldId);
    expect(moved.PhysicalResourceId.startsWith(PHYSICAL_ID_PREFIX)).toBe(true);
    expect(del).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: oldId, Data: { RelationshipsDeleted: '1' } });
    // The new SpiceDB keeps its seed; the old one lost only what the old resource seeded.
    expect(await rig.relationships('post')).toContain('post:e1#writer@user:sid');
    expect(await relationshipsOf(otherClient.promises, 'post')).toEqual([]);
    // A rollback to the old endpoint gets the old id back.
    const back = await update(moved.PhysicalResourceId, oldProps, newProps);
    expect(back).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: oldId });
  });
});

describe('Delete', () => {
  it('keeps the schema and relationships by default, whatever state SpiceDB is in', async () => {
    const { id, props } = await created(rig.props({ Relationships: ['post:d1#writer@user:sid'] }));
    const host = loopbackHost();
    const unreachable = { ...props, SpiceDBEndpoint: `${host}:${await freePort(host)}` };
    const res = await invoke(rig, handler, request(rig, 'Delete', unreachable, { physicalId: id }));
    expect(res).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: id });
    expect(await rig.relationships('post')).toContain('post:d1#writer@user:sid');
    expect(await rig.schemaDiff(SCHEMA_V1)).toEqual([]);
  });

  it('deletes the seeded relationships (only those) with DeleteMode delete-relationships, and keeps the schema', async () => {
    const { id, props } = await created(rig.props({ DeleteMode: 'delete-relationships', Relationships: ['post:d2#writer@user:sid', 'post:d2#reader@user:lena'] }));
    await touchRelationships(rig.client, ['post:d2#reader@user:outsider']);
    const res = await invoke(rig, handler, request(rig, 'Delete', props, { physicalId: id }));
    expect(res).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: id, Data: { RelationshipsDeleted: '2' } });
    expect((await rig.relationships('post')).filter((r) => r.startsWith('post:d2#'))).toEqual(['post:d2#reader@user:outsider']);
    expect(await rig.schemaDiff(SCHEMA_V1)).toEqual([]);
  });

  it('answers the Delete after a failed Create at once, even when asked to delete data from an unreachable SpiceDB', async () => {
    const host = loopbackHost();
    const props = rig.props({ SpiceDBEndpoint: `${host}:${await freePort(host)}`, DeleteMode: 'delete-relationships', Assertions: { AssertTrue: ['post:f1#read@user:nobody'] } });
    const failed = await invoke(rig, handler, request(rig, 'Create', props), 6000);
    expect(failed.Status).toBe('FAILED');
    expect(failed.PhysicalResourceId.startsWith(FAILED_CREATE_PREFIX)).toBe(true);
    const del = await invoke(rig, handler, request(rig, 'Delete', props, { physicalId: failed.PhysicalResourceId }), 6000);
    expect(del).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: failed.PhysicalResourceId });
  });
});

describe('bad input', () => {
  it.each<[string, Props, RegExp]>([
    ['a malformed relationship, naming list, index and text', { Relationships: ['post:b1#writer@user:sid', 'post:b1#writer'] }, /Relationships\[1\]: invalid relationship "post:b1#writer": invalid relationship string/],
    ['a malformed assertion', { Assertions: { AssertFalse: ['post:b1#read@'] } }, /Assertions\.AssertFalse\[0\]: invalid assertion "post:b1#read@"/],
    ['an unknown property, listing the known ones', { Schemas: 'x' }, /unknown property "Schemas"; known properties: ServiceToken, ServiceTimeout, SpiceDBEndpoint, SpiceDBTls, SpiceDBCaPem, PresharedKeySecretArn, Schema, Relationships, Assertions, DeleteMode, Timeouts/],
    ['a missing Schema', { Schema: undefined }, /Schema is required/],
    ['a schema over 4 MiB', { Schema: `definition user {}\n${'// padding\n'.repeat(400_000)}` }, /Schema: \d+ bytes exceeds SpiceDB's limit of 4 MiB \(4194304 bytes\)/],
    ['a TLS flag that is not a boolean', { SpiceDBTls: 'yes' }, /SpiceDBTls: expected "true" or "false", got "yes"/],
    [
      'a relationship SpiceDB rejects for the schema, naming the entry among many',
      { Relationships: [...Array.from({ length: 60 }, (_, i) => `post:b2#reader@user:u${i}`).slice(0, 37), 'post:b2#owner@user:sid', 'post:b2#writer@user:w'] },
      /^Relationships\[37\] "post:b2#owner@user:sid": WriteRelationships \(TOUCH\) failed: FAILED_PRECONDITION: relation\/permission `owner` not found under definition `post`$/,
    ],
  ])('answers FAILED for %s', async (_case, overrides, reason) => {
    const res = await invoke(rig, handler, request(rig, 'Create', rig.props(overrides)));
    expect(res.Status).toBe('FAILED');
    expect(res.Reason).toMatch(reason);
  });

  it('answers FAILED with a clear Reason when the secret cannot be read', async () => {
    const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:does-not-exist-AbCdEf';
    const res = await invoke(rig, handler, request(rig, 'Create', rig.props({ PresharedKeySecretArn: arn })));
    expect(res.Status).toBe('FAILED');
    expect(res.Reason).toMatch(new RegExp(`^could not read PresharedKeySecretArn ${arn}: ResourceNotFoundException: `));
  });

  it('keeps the key and the presigned signature out of every response and log line', async () => {
    const writes: string[] = [];
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      writes.push(String(chunk));
      return true;
    });
    try {
      await invoke(rig, handler, request(rig, 'Create', rig.props({ Relationships: ['post:k1#writer@user:sid'] })));
      await invoke(rig, handler, request(rig, 'Create', rig.props({ Relationships: ['post:k1#nope@user:sid'] })));
    } finally {
      spy.mockRestore();
    }
    const bodies = rig.responses.requests.map((r) => r.body.toString());
    // The logs were captured: both requests were logged and answered.
    expect(writes.filter((w) => w.includes('"message":"answering"'))).toHaveLength(2);
    for (const text of [...writes, ...bodies]) {
      expect(text).not.toContain(rig.presharedKey);
      expect(text).not.toContain('X-Amz-Signature');
    }
  });

  it('answers FAILED with PERMISSION_DENIED when the secret holds a wrong key, without the key in the Reason', async () => {
    const { createSecret } = await import('./schema-resource-rig');
    const wrong = `wrong_${rig.presharedKey}`;
    const arn = await createSecret(rig.moto, `wrong_key_${Date.now()}`, wrong);
    const res = await invoke(rig, handler, request(rig, 'Create', rig.props({ PresharedKeySecretArn: arn })));
    expect(res.Status).toBe('FAILED');
    expect(res.Reason).toMatch(/PERMISSION_DENIED/);
    expect(res.Reason).not.toContain(wrong);
  });
});
