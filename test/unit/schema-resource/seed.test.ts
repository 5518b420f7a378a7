/**
 * The declarative seed: what to delete, which deletes the schema allows,
 * and batched writes (size, concurrency, last-token, retries, culprit).
 */
import { v1 } from '@authzed/authzed-node';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { readSchemaShape, removedFromSeed, schemaAllows, writeInBatches, type WriteItem } from '../../../functions/schema-resource/seed';
import { CallBudget, SpiceDBError } from '../../../functions/schema-resource/spicedb-api';
import { parseRelationship, relationshipKey } from '../../../functions/shared/relationships';
import { FakeSpiceDB, grpcError } from './fake-spicedb';

const rel = parseRelationship;
const budget = new CallBudget(() => 60_000, 10_000);
const TOUCH = v1.RelationshipUpdate_Operation.TOUCH;
const DELETE = v1.RelationshipUpdate_Operation.DELETE;
const items = (n: number): WriteItem[] => Array.from({ length: n }, (_, i) => ({ relationship: rel(`doc:d${i}#viewer@user:u${i}`), where: `Relationships[${i}]` }));

describe('removedFromSeed', () => {
  it('lists what the previous seed had and the new one does not, by identity', () => {
    const previous = ['doc:1#viewer@user:a', 'doc:1#viewer@user:b[cav]', 'doc:1#viewer@user:c'].map(rel);
    const desired = ['doc:1#viewer@user:a[expiration:2030-01-01T00:00:00Z]', 'doc:1#viewer@user:d'].map(rel);
    expect(removedFromSeed(desired, previous).map(relationshipKey)).toEqual(['doc:1#viewer@user:b', 'doc:1#viewer@user:c']);
  });

  it('removes nothing when there was no previous seed', () => {
    expect(removedFromSeed([rel('doc:1#viewer@user:a')], [])).toEqual([]);
  });
});

describe('schemaAllows', () => {
  const type = (def: string, typeref: v1.ReflectionTypeReference['typeref'], caveat = ''): v1.ReflectionTypeReference =>
    v1.ReflectionTypeReference.create({ subjectDefinitionName: def, optionalCaveatName: caveat, typeref });
  const plain = { oneofKind: 'isTerminalSubject', isTerminalSubject: false } as const;
  const fake = new FakeSpiceDB();
  fake.definitions = [
    v1.ReflectionDefinition.create({ name: 'user' }),
    v1.ReflectionDefinition.create({ name: 'group', relations: [v1.ReflectionRelation.create({ name: 'member', subjectTypes: [type('user', plain)] })] }),
    v1.ReflectionDefinition.create({
      name: 'doc',
      relations: [
        v1.ReflectionRelation.create({
          name: 'viewer',
          subjectTypes: [type('user', plain), type('user', { oneofKind: 'isPublicWildcard', isPublicWildcard: true }), type('group', { oneofKind: 'optionalRelationName', optionalRelationName: 'member' })],
        }),
        v1.ReflectionRelation.create({ name: 'owner', subjectTypes: [type('user', plain, 'only_tuesday')] }),
      ],
      permissions: [v1.ReflectionPermission.create({ name: 'view' })],
    }),
  ];

  it.each([
    ['a plain subject of an allowed type', 'doc:1#viewer@user:a', true],
    ['a caveated relationship (caveats do not matter to a delete)', 'doc:1#owner@user:a', true],
    ['the public wildcard where allowed', 'doc:1#viewer@user:*', true],
    ['a subject relation where allowed', 'doc:1#viewer@group:eng#member', true],
    ['an unknown resource definition', 'folder:1#viewer@user:a', false],
    ['an unknown relation', 'doc:1#editor@user:a', false],
    ['a permission instead of a relation', 'doc:1#view@user:a', false],
    ['an unknown subject definition', 'doc:1#viewer@robot:r', false],
    ['a subject type the relation does not allow', 'doc:1#owner@group:eng', false],
    ['the wildcard where only plain subjects are allowed', 'doc:1#owner@user:*', false],
    ['a plain group where only group#member is allowed', 'doc:1#viewer@group:eng', false],
    ['a subject relation the subject type lacks', 'doc:1#viewer@group:eng#admin', false],
  ])('%s: %s -> %s', async (_case, text, expected) => {
    const shape = await readSchemaShape(fake.client, budget);
    expect(schemaAllows(shape, rel(text))).toBe(expected);
  });
});

describe('writeInBatches', () => {
  it('writes nothing and returns no token for an empty list', async () => {
    const fake = new FakeSpiceDB();
    expect(await writeInBatches(fake.client, budget, TOUCH, [])).toEqual({ written: 0, calls: 0 });
    expect(fake.calls).toEqual([]);
  });

  it('splits into calls of at most 1000 updates, with bounded concurrency, the last one alone and last', async () => {
    const fake = new FakeSpiceDB();
    const res = await writeInBatches(fake.client, budget, TOUCH, items(4500), { concurrency: 3 });
    const sizes = fake.calls.map((c) => (c.request as v1.WriteRelationshipsRequest).updates.length);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(4500);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(1000);
    expect(fake.calls).toHaveLength(5);
    expect(fake.maxInFlight).toBeLessThanOrEqual(3);
    expect(fake.maxInFlight).toBeGreaterThan(1);
    // The token of the call made last.
    expect(res).toEqual({ token: 't5', written: 4500, calls: 5 });
  });

  it('never sends more than 1000 updates even when asked to', async () => {
    const fake = new FakeSpiceDB();
    await writeInBatches(fake.client, budget, TOUCH, items(2500), { batchSize: 5000 });
    expect(fake.calls.map((c) => (c.request as v1.WriteRelationshipsRequest).updates.length).sort()).toEqual([1000, 1000, 500]);
  });

  it('sends TOUCH with caveat and expiration, DELETE without them', async () => {
    const fake = new FakeSpiceDB();
    const r = [{ relationship: rel('doc:1#viewer@user:a[cav:{"x":1}][expiration:2030-01-01T00:00:00Z]') }];
    await writeInBatches(fake.client, budget, TOUCH, r);
    await writeInBatches(fake.client, budget, DELETE, r);
    const [touch, del] = fake.calls.map((c) => (c.request as v1.WriteRelationshipsRequest).updates[0]);
    expect(touch?.operation).toBe(TOUCH);
    expect(touch?.relationship?.optionalCaveat?.caveatName).toBe('cav');
    expect(touch?.relationship?.optionalExpiresAt).toBeDefined();
    expect(del?.operation).toBe(DELETE);
    expect(del?.relationship?.optionalCaveat).toBeUndefined();
    expect(del?.relationship?.optionalExpiresAt).toBeUndefined();
  });

  it('sorts by identity so that each batch covers its own key range', async () => {
    const fake = new FakeSpiceDB();
    const shuffled = items(2000).reverse();
    await writeInBatches(fake.client, budget, TOUCH, shuffled, { concurrency: 1 });
    const keys = fake.calls.flatMap((c) => (c.request as v1.WriteRelationshipsRequest).updates.map((u) => `${u.relationship?.resource?.objectId}`));
    expect(keys).toEqual([...keys].sort());
  });

  it('retries a serialization conflict (ABORTED) and succeeds', async () => {
    const fake = new FakeSpiceDB();
    fake.onWrite = (_req, n) => {
      if (n <= 2) throw grpcError(GrpcStatus.ABORTED, 'max retries exceeded: unable to write relationships due to a serialization error');
    };
    const res = await writeInBatches(fake.client, budget, TOUCH, items(10));
    expect(res.written).toBe(10);
    expect(fake.calls).toHaveLength(3);
  });

  it('gives up on a conflict that persists, with SpiceDB\'s text', async () => {
    const fake = new FakeSpiceDB();
    fake.onWrite = () => {
      throw grpcError(GrpcStatus.ABORTED, 'serialization error');
    };
    await expect(writeInBatches(fake.client, budget, TOUCH, items(3))).rejects.toThrow('WriteRelationships (TOUCH) failed: ABORTED: serialization error');
    expect(fake.calls).toHaveLength(6);
  });

  it('bisects a rejected batch down to the entry SpiceDB rejects and names it', async () => {
    const fake = new FakeSpiceDB();
    fake.onWrite = (req) => {
      if (req.updates.some((u) => u.relationship?.resource?.objectId === 'd613')) throw grpcError(GrpcStatus.FAILED_PRECONDITION, 'relation/permission `viewer` not found under definition `doc`');
    };
    const err = await writeInBatches(fake.client, budget, TOUCH, items(1000)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpiceDBError);
    expect((err as Error).message).toBe(
      'Relationships[613] "doc:d613#viewer@user:u613": WriteRelationships (TOUCH) failed: FAILED_PRECONDITION: relation/permission `viewer` not found under definition `doc`',
    );
    // log2(1000) halvings, not one call per entry.
    expect(fake.calls.length).toBeLessThan(25);
  });

  it('stops when the invocation is out of time', async () => {
    const fake = new FakeSpiceDB();
    const controller = new AbortController();
    controller.abort(new Error('timed out'));
    await expect(writeInBatches(fake.client, budget, TOUCH, items(5), { signal: controller.signal })).rejects.toThrow('timed out');
    expect(fake.calls).toEqual([]);
  });
});
