/**
 * Validation of the resource's properties: defaults, CloudFormation's
 * string scalars, and one clear message per problem.
 */
import { ValidationError } from '../../../functions/shared/errors';
import { deleteModeOf, parseProperties, previousSeed, KNOWN_PROPERTIES, MAX_SCHEMA_BYTES } from '../../../functions/schema-resource/properties';

const base = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  ServiceToken: 'arn:aws:lambda:us-east-1:123456789012:function:f',
  SpiceDBEndpoint: 'spicedb.internal:50051',
  PresharedKeySecretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:spicedb-key-AbCdEf',
  Schema: 'definition user {}',
  ...overrides,
});

const messageOf = (raw: unknown): string => {
  try {
    parseProperties(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as Error).message;
  }
  throw new Error('expected a ValidationError');
};

describe('parseProperties', () => {
  it('applies the defaults', () => {
    expect(parseProperties(base())).toEqual({
      endpoint: 'spicedb.internal:50051',
      tls: false,
      presharedKeySecretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:spicedb-key-AbCdEf',
      schema: 'definition user {}',
      seed: [],
      assertions: [],
      deleteMode: 'keep',
      timeouts: { callMs: 60_000 },
    });
  });

  it.each([
    ['"true"', 'true', true],
    ['"TRUE"', 'TRUE', true],
    ['"false"', 'false', false],
    ['a real boolean', true, true],
    ['an empty string (default)', '', false],
  ])('reads SpiceDBTls given as %s', (_case, value, expected) => {
    expect(parseProperties(base({ SpiceDBTls: value })).tls).toBe(expected);
  });

  it('parses Timeouts given as CloudFormation strings', () => {
    expect(parseProperties(base({ Timeouts: { ServingSeconds: '120', CallSeconds: '2.5' } })).timeouts).toEqual({ servingMs: 120_000, callMs: 2500 });
  });

  it('takes Relationships as one newline-separated string, skipping blank lines and // comments, naming lines', () => {
    const props = parseProperties(base({ Relationships: '// seed\npost:1#writer@user:sid\n\n  post:1#reader@user:lena  \n' }));
    expect(props.seed.map((e) => e.where)).toEqual(['Relationships line 2', 'Relationships line 4']);
    expect(props.seed[1]?.relationship.subject.id).toBe('lena');
  });

  it('skips blank list entries such as the tail of !Split', () => {
    const props = parseProperties(base({ Relationships: ['post:1#writer@user:sid', ''], Assertions: { AssertTrue: ['post:1#write@user:sid', ''] } }));
    expect(props.seed).toHaveLength(1);
    expect(props.assertions).toEqual([expect.objectContaining({ kind: 'AssertTrue', where: 'Assertions.AssertTrue[0]' })]);
  });

  it('keeps caveat context given with `with` on assertions', () => {
    const [a] = parseProperties(base({ Assertions: { AssertCaveated: ['post:1#read@user:sid with {"ip":"10.0.0.1"}'] } })).assertions;
    expect(a).toMatchObject({ kind: 'AssertCaveated', context: { ip: '10.0.0.1' }, where: 'Assertions.AssertCaveated[0]' });
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['a missing SpiceDBEndpoint', { SpiceDBEndpoint: undefined }, 'SpiceDBEndpoint is required'],
    ['an endpoint without a port', { SpiceDBEndpoint: 'spicedb.internal' }, 'SpiceDBEndpoint: expected host:port (e.g. spicedb.internal:50051), got "spicedb.internal"'],
    ['an endpoint with port 0', { SpiceDBEndpoint: 'spicedb.internal:0' }, 'SpiceDBEndpoint: expected host:port'],
    ['an endpoint with a scheme', { SpiceDBEndpoint: 'https://spicedb.internal:443' }, 'SpiceDBEndpoint: expected host:port'],
    ['a TLS flag that is not a boolean', { SpiceDBTls: 'yes' }, 'SpiceDBTls: expected "true" or "false", got "yes"'],
    ['a CA without TLS', { SpiceDBCaPem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n' }, 'SpiceDBCaPem is set but SpiceDBTls is "false"'],
    ['a CA that is not PEM', { SpiceDBTls: 'true', SpiceDBCaPem: 'not a cert' }, 'SpiceDBCaPem: expected PEM text'],
    ['a missing secret ARN', { PresharedKeySecretArn: undefined }, 'PresharedKeySecretArn is required'],
    ['a secret name instead of an ARN', { PresharedKeySecretArn: 'spicedb-key' }, 'PresharedKeySecretArn: expected a Secrets Manager secret ARN'],
    ['a missing Schema', { Schema: undefined }, 'Schema is required'],
    ['a blank Schema', { Schema: '  \n' }, 'Schema is empty'],
    ['a Schema that is not a string', { Schema: { definition: 'user' } }, 'Schema: expected a string, got {"definition":"user"}'],
    ['Relationships that are neither list nor string', { Relationships: { a: 1 } }, 'Relationships: expected a list of strings, got {"a":1}'],
    ['a relationship that is not a string', { Relationships: ['post:1#writer@user:sid', 7] }, 'Relationships[1]: expected a string, got 7'],
    ['a malformed relationship', { Relationships: ['post:1#writer@user:sid', 'post:1#writer'] }, 'Relationships[1]: invalid relationship "post:1#writer": invalid relationship string'],
    ['a repeated relationship', { Relationships: ['post:1#writer@user:sid', 'post:1#writer@user:sid[cav:{"a":1}]'] }, 'Relationships[1]: "post:1#writer@user:sid[cav:{\\"a\\":1}]" repeats Relationships[0]'],
    ['Assertions that are a list', { Assertions: ['post:1#read@user:sid'] }, 'Assertions: expected an object with AssertTrue, AssertFalse, AssertCaveated'],
    ['an unknown assertion kind', { Assertions: { assertTrue: [] } }, 'Assertions: unknown key "assertTrue"; known keys: AssertTrue, AssertFalse, AssertCaveated'],
    ['an assertion list that is a string', { Assertions: { AssertTrue: 'post:1#read@user:sid' } }, 'Assertions.AssertTrue: expected a list of strings'],
    ['a malformed assertion', { Assertions: { AssertFalse: ['post:1#read@user:sid', 'post:1#read'] } }, 'Assertions.AssertFalse[1]: invalid assertion "post:1#read": invalid relationship string'],
    ['an unknown DeleteMode', { DeleteMode: 'wipe' }, 'DeleteMode: expected one of "keep", "delete-relationships", got "wipe"'],
    ['an unknown Timeouts key', { Timeouts: { Serving: '5' } }, 'Timeouts: unknown key "Serving"; known keys: ServingSeconds, CallSeconds'],
    ['a Timeouts value that is not a number', { Timeouts: { CallSeconds: 'soon' } }, 'Timeouts.CallSeconds: expected a number of seconds between 0 and 3600, got "soon"'],
    ['an unknown property', { Schemas: 'x' }, `unknown property "Schemas"; known properties: ${KNOWN_PROPERTIES.join(', ')}`],
  ])('rejects %s', (_case, overrides, expected) => {
    expect(messageOf(base(overrides))).toContain(expected);
  });

  it('rejects a schema over 4 MiB, counting bytes', () => {
    const schema = `definition user {}\n//${'é'.repeat(MAX_SCHEMA_BYTES / 2)}`;
    expect(messageOf(base({ Schema: schema }))).toContain(`Schema: ${Buffer.byteLength(schema)} bytes exceeds SpiceDB's limit of 4 MiB (4194304 bytes)`);
  });

  it('reports every problem at once', () => {
    const message = messageOf(base({ SpiceDBEndpoint: 'nope', DeleteMode: 'x', Relationships: ['bad'] }));
    expect(message).toMatch(/^invalid properties: SpiceDBEndpoint: .*; Relationships\[0\]: .*; DeleteMode: /);
  });

  it('rejects properties that are not an object', () => {
    expect(messageOf('Schema')).toBe('invalid properties: ResourceProperties must be an object');
  });
});

describe('previousSeed', () => {
  it('reads the relationships the previous properties seeded, skipping those that never parsed', () => {
    const prev = previousSeed(base({ Relationships: ['post:1#writer@user:sid', 'garbage', 'post:1#reader@user:lena'] }));
    expect(prev.endpoint).toBe('spicedb.internal:50051');
    expect(prev.relationships.map((r) => r.subject.id)).toEqual(['sid', 'lena']);
    expect(prev.skipped).toBe(1);
  });

  it.each([
    ['no properties', undefined],
    ['Relationships of the wrong type', base({ Relationships: 5 })],
  ])('yields nothing for %s', (_case, raw) => {
    expect(previousSeed(raw).relationships).toEqual([]);
  });
});

describe('deleteModeOf', () => {
  it.each([
    [{ DeleteMode: 'delete-relationships' }, 'delete-relationships'],
    [{ DeleteMode: 'keep' }, 'keep'],
    [{}, 'keep'],
    [undefined, 'keep'],
  ])('reads %j as %s', (raw, expected) => {
    expect(deleteModeOf(raw)).toBe(expected);
  });
});
