/** The assertion gate over CheckBulkPermissions: expectations, messages, chunking, consistency. */
import { v1 } from '@authzed/authzed-node';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { AssertionsFailedError, runAssertions } from '../../../functions/schema-resource/assertions';
import { parseProperties } from '../../../functions/schema-resource/properties';
import { CallBudget } from '../../../functions/schema-resource/spicedb-api';
import { FakeSpiceDB } from './fake-spicedb';

const P = v1.CheckPermissionResponse_Permissionship;
const budget = new CallBudget(() => 60_000, 10_000);
const assertions = (a: Record<string, string[]>) =>
  parseProperties({
    SpiceDBEndpoint: 'spicedb:50051',
    PresharedKeySecretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:k-AbCdEf',
    Schema: 'definition user {}',
    Assertions: a,
  }).assertions;
const answer = (permissionship: v1.CheckPermissionResponse_Permissionship, missing: string[] = []): v1.CheckBulkPermissionsPair['response'] => ({
  oneofKind: 'item',
  item: v1.CheckBulkPermissionsResponseItem.create({ permissionship, ...(missing.length ? { partialCaveatInfo: { missingRequiredContext: missing } } : {}) }),
});

describe('runAssertions', () => {
  it('expects HAS_PERMISSION, NO_PERMISSION and CONDITIONAL_PERMISSION as zed validate does', async () => {
    const fake = new FakeSpiceDB();
    fake.onCheck = (item) => (item.subject?.object?.objectId === 'yes' ? answer(P.HAS_PERMISSION) : item.subject?.object?.objectId === 'maybe' ? answer(P.CONDITIONAL_PERMISSION, ['ip']) : answer(P.NO_PERMISSION));
    const out = await runAssertions(
      fake.client,
      budget,
      assertions({ AssertTrue: ['doc:1#view@user:yes'], AssertFalse: ['doc:1#view@user:no'], AssertCaveated: ['doc:1#view@user:maybe'] }),
    );
    expect(out).toEqual({ checked: 3, failures: [] });
  });

  it('names each failing assertion and what it got, including missing caveat context and errors', async () => {
    const fake = new FakeSpiceDB();
    fake.onCheck = (item) =>
      item.permission === 'nope'
        ? { oneofKind: 'error', error: { code: GrpcStatus.FAILED_PRECONDITION, message: 'relation/permission `nope` not found under definition `doc`', details: [] } }
        : answer(P.CONDITIONAL_PERMISSION, ['ip', 'day']);
    const out = await runAssertions(fake.client, budget, assertions({ AssertTrue: ['doc:1#view@user:a', 'doc:1#nope@user:a'], AssertFalse: ['doc:1#view@user:b'] }));
    expect(out.failures).toEqual([
      'Assertions.AssertTrue[0] "doc:1#view@user:a": expected HAS_PERMISSION, got CONDITIONAL_PERMISSION (missing caveat context: ip, day)',
      'Assertions.AssertTrue[1] "doc:1#nope@user:a": expected HAS_PERMISSION, got error FAILED_PRECONDITION: relation/permission `nope` not found under definition `doc`',
      'Assertions.AssertFalse[0] "doc:1#view@user:b": expected NO_PERMISSION, got CONDITIONAL_PERMISSION (missing caveat context: ip, day)',
    ]);
    expect(new AssertionsFailedError(out.failures, out.checked).message).toMatch(/^3 of 3 assertions failed: Assertions\.AssertTrue\[0\]/);
  });

  it('checks at full consistency and passes the caveat context', async () => {
    const fake = new FakeSpiceDB();
    await runAssertions(fake.client, budget, assertions({ AssertTrue: ['doc:1#view@user:a with {"ip":"10.0.0.1"}'] }));
    const req = fake.calls[0]?.request as v1.CheckBulkPermissionsRequest;
    expect(req.consistency?.requirement).toEqual({ oneofKind: 'fullyConsistent', fullyConsistent: true });
    expect(v1.PbStruct.toJson(req.items[0]?.context as v1.PbStruct)).toEqual({ ip: '10.0.0.1' });
  });

  it('sends large sets in several bulk calls', async () => {
    const fake = new FakeSpiceDB();
    const out = await runAssertions(fake.client, budget, assertions({ AssertTrue: Array.from({ length: 1200 }, (_, i) => `doc:${i}#view@user:a`) }));
    expect(out.checked).toBe(1200);
    expect(fake.calls.map((c) => (c.request as v1.CheckBulkPermissionsRequest).items.length)).toEqual([500, 500, 200]);
  });

  it('makes no call without assertions', async () => {
    const fake = new FakeSpiceDB();
    expect(await runAssertions(fake.client, budget, [])).toEqual({ checked: 0, failures: [] });
    expect(fake.calls).toEqual([]);
  });
});
