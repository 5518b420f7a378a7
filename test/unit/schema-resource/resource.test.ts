/**
 * The order of the resource's steps, against a recording fake SpiceDB:
 * what is written when, and what Create/Update/Delete answer.
 */
import { v1 } from '@authzed/authzed-node';
import type { CloudFormationCustomResourceCreateEvent, CloudFormationCustomResourceDeleteEvent, CloudFormationCustomResourceUpdateEvent } from 'aws-lambda';
import { createOrUpdate, remove, type SchemaResourceDeps } from '../../../functions/schema-resource/resource';
import type { HandleContext } from '../../../functions/shared/custom-resource';
import type { HealthChecker } from '../../../functions/shared/grpc-health';
import { cloudFormationEvent } from '../../helpers/response-server';
import { FakeSpiceDB } from './fake-spicedb';

const ctx = (): HandleContext => ({ remainingMs: () => 60_000, signal: new AbortController().signal });
const serving: HealthChecker = { check: () => Promise.resolve('SERVING'), close: () => undefined };

function deps(fake: FakeSpiceDB, reads: string[] = []): SchemaResourceDeps {
  return {
    readPresharedKey: (arn) => {
      reads.push(arn);
      return Promise.resolve('k_test');
    },
    client: () => fake.client,
    health: () => serving,
  };
}

const removal = v1.ReflectionSchemaDiff.create({ diff: { oneofKind: 'relationRemoved', relationRemoved: v1.ReflectionRelation.create({ parentDefinitionName: 'post', name: 'reader' }) } });
const addition = v1.ReflectionSchemaDiff.create({ diff: { oneofKind: 'relationAdded', relationAdded: v1.ReflectionRelation.create({ parentDefinitionName: 'post', name: 'editor' }) } });
const postShape = [
  v1.ReflectionDefinition.create({ name: 'user' }),
  v1.ReflectionDefinition.create({
    name: 'post',
    relations: ['reader', 'writer'].map((name) =>
      v1.ReflectionRelation.create({ name, subjectTypes: [v1.ReflectionTypeReference.create({ subjectDefinitionName: 'user', typeref: { oneofKind: 'isTerminalSubject', isTerminalSubject: false } })] }),
    ),
  }),
];

describe('createOrUpdate', () => {
  it('on Create: diff, write, verify, touch the seed, then assert; returns the last write\'s token', async () => {
    const fake = new FakeSpiceDB();
    // The fixture asserts that lena may not write.
    fake.onCheck = (item) => ({
      oneofKind: 'item',
      item: v1.CheckBulkPermissionsResponseItem.create({
        permissionship:
          item.permission === 'write' && item.subject?.object?.objectId === 'lena'
            ? v1.CheckPermissionResponse_Permissionship.NO_PERMISSION
            : v1.CheckPermissionResponse_Permissionship.HAS_PERMISSION,
      }),
    });
    const event = cloudFormationEvent<CloudFormationCustomResourceCreateEvent>('schema-create');
    const res = await createOrUpdate(event, ctx(), deps(fake));
    expect(fake.methods()).toEqual(['diffSchema', 'writeSchema', 'diffSchema', 'writeRelationships', 'checkBulkPermissions']);
    expect(res.physicalResourceId).toMatch(/^spicedb-schema-[0-9a-f]{20}$/);
    expect(res.data).toEqual({ ZedToken: 't4', SchemaChanges: 'no changes', RelationshipsTouched: '2', RelationshipsDeleted: '0', AssertionsChecked: '3' });
  });

  it('deletes removed seed after the schema write when the schema removes nothing', async () => {
    const fake = new FakeSpiceDB();
    fake.definitions = postShape;
    fake.pendingDiffs = [addition];
    const event = cloudFormationEvent<CloudFormationCustomResourceUpdateEvent>('schema-update');
    const res = await createOrUpdate(event, ctx(), deps(fake));
    expect(fake.methods()).toEqual(['diffSchema', 'writeSchema', 'diffSchema', 'reflectSchema', 'writeRelationships', 'writeRelationships']);
    const [del] = fake.calls.filter((c) => c.method === 'writeRelationships').map((c) => (c.request as v1.WriteRelationshipsRequest).updates);
    expect(del?.map((u) => [u.operation, u.relationship?.subject?.object?.objectId])).toEqual([[v1.RelationshipUpdate_Operation.DELETE, 'lena']]);
    expect(res).toMatchObject({ physicalResourceId: event.PhysicalResourceId, data: { RelationshipsDeleted: '1', RelationshipsTouched: '1', SchemaChanges: '1 change: +relation post#editor' } });
  });

  it('deletes removed seed before the schema write when the schema removes a relation', async () => {
    const fake = new FakeSpiceDB();
    fake.definitions = postShape;
    fake.pendingDiffs = [removal];
    await createOrUpdate(cloudFormationEvent<CloudFormationCustomResourceUpdateEvent>('schema-update'), ctx(), deps(fake));
    expect(fake.methods()).toEqual(['diffSchema', 'reflectSchema', 'writeRelationships', 'writeSchema', 'diffSchema', 'writeRelationships']);
  });

  it('treats a new SpiceDBEndpoint as a new resource: new id, nothing deleted there', async () => {
    const fake = new FakeSpiceDB();
    const event = cloudFormationEvent<CloudFormationCustomResourceUpdateEvent>('schema-update');
    event.ResourceProperties.SpiceDBEndpoint = 'spicedb-2.internal:50051';
    const res = await createOrUpdate(event, ctx(), deps(fake));
    expect(res.physicalResourceId).not.toBe(event.PhysicalResourceId);
    expect(fake.methods()).not.toContain('reflectSchema');
    expect(res.data).toMatchObject({ RelationshipsDeleted: '0' });
  });

  it('fails when the schema read back differs from the one written', async () => {
    const fake = new FakeSpiceDB();
    const write = fake.client.writeSchema;
    fake.client.writeSchema = async (req) => {
      const out = await write(req);
      fake.pendingDiffs = [addition];
      return out;
    };
    await expect(createOrUpdate(cloudFormationEvent<CloudFormationCustomResourceCreateEvent>('schema-create'), ctx(), deps(fake))).rejects.toThrow(
      'the schema read back differs from the one written: 1 change: +relation post#editor',
    );
  });

  it('fails after writing when an assertion fails', async () => {
    const fake = new FakeSpiceDB();
    fake.onCheck = () => ({ oneofKind: 'item', item: v1.CheckBulkPermissionsResponseItem.create({ permissionship: v1.CheckPermissionResponse_Permissionship.NO_PERMISSION }) });
    await expect(createOrUpdate(cloudFormationEvent<CloudFormationCustomResourceCreateEvent>('schema-create'), ctx(), deps(fake))).rejects.toThrow(/^2 of 3 assertions failed: Assertions\.AssertTrue\[0\]/);
    expect(fake.methods()).toContain('writeRelationships');
  });

  it('validates before reading the secret or calling SpiceDB', async () => {
    const fake = new FakeSpiceDB();
    const reads: string[] = [];
    const event = cloudFormationEvent<CloudFormationCustomResourceCreateEvent>('schema-create');
    event.ResourceProperties.Relationships = ['oops'];
    await expect(createOrUpdate(event, ctx(), deps(fake, reads))).rejects.toThrow(/^invalid properties: Relationships\[0\]/);
    expect(reads).toEqual([]);
    expect(fake.calls).toEqual([]);
  });
});

describe('remove', () => {
  it('keeps everything by default, without reading the secret or calling SpiceDB', async () => {
    const fake = new FakeSpiceDB();
    const reads: string[] = [];
    const event = cloudFormationEvent<CloudFormationCustomResourceDeleteEvent>('schema-delete');
    event.ResourceProperties.DeleteMode = 'keep';
    const res = await remove(event, ctx(), deps(fake, reads));
    expect(res).toEqual({ physicalResourceId: event.PhysicalResourceId });
    expect(reads).toEqual([]);
    expect(fake.calls).toEqual([]);
  });

  it('deletes the seed the schema allows with delete-relationships, and never touches the schema', async () => {
    const fake = new FakeSpiceDB();
    fake.definitions = postShape;
    const res = await remove(cloudFormationEvent<CloudFormationCustomResourceDeleteEvent>('schema-delete'), ctx(), deps(fake));
    expect(fake.methods()).toEqual(['reflectSchema', 'writeRelationships']);
    expect(res.data).toMatchObject({ RelationshipsDeleted: '2' });
  });

  it('skips seeded relationships whose types the schema no longer has', async () => {
    const fake = new FakeSpiceDB();
    fake.definitions = [v1.ReflectionDefinition.create({ name: 'user' })];
    const res = await remove(cloudFormationEvent<CloudFormationCustomResourceDeleteEvent>('schema-delete'), ctx(), deps(fake));
    expect(fake.methods()).toEqual(['reflectSchema']);
    expect(res.data).toEqual({ RelationshipsDeleted: '0' });
  });
});
