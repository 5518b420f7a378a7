/**
 * The validation-file relationship and assertion syntax, against cases taken
 * from SpiceDB's own parser tests (pkg/tuple) and a round-trip property.
 */
import fc from 'fast-check';
import {
  formatRelationship,
  fromV1Relationship,
  parseAssertion,
  parseRelationship,
  relationshipKey,
  RelationshipSyntaxError,
  toV1Relationship,
  type Relationship,
} from '../../functions/shared/relationships';

describe('parseRelationship', () => {
  it.each<[string, Relationship]>([
    ['document:1#viewer@user:tom', { resource: { type: 'document', id: '1' }, relation: 'viewer', subject: { type: 'user', id: 'tom' } }],
    [
      'document:1#viewer@group:eng#member',
      { resource: { type: 'document', id: '1' }, relation: 'viewer', subject: { type: 'group', id: 'eng', relation: 'member' } },
    ],
    ['document:1#viewer@user:tom#...', { resource: { type: 'document', id: '1' }, relation: 'viewer', subject: { type: 'user', id: 'tom' } }],
    ['document:public#viewer@user:*', { resource: { type: 'document', id: 'public' }, relation: 'viewer', subject: { type: 'user', id: '*' } }],
    [
      'tenant1/document:a/b|c=d+e-f_g#viewer@tenant1/user:x',
      { resource: { type: 'tenant1/document', id: 'a/b|c=d+e-f_g' }, relation: 'viewer', subject: { type: 'tenant1/user', id: 'x' } },
    ],
    [
      'document:1#viewer@user:tom[only_on_tuesday]',
      { resource: { type: 'document', id: '1' }, relation: 'viewer', subject: { type: 'user', id: 'tom' }, caveat: { name: 'only_on_tuesday' } },
    ],
    [
      'document:1#viewer@user:tom[ip_ok:{"cidr":"10.0.0.0/8","n":[1,{"a":null}]}]',
      {
        resource: { type: 'document', id: '1' },
        relation: 'viewer',
        subject: { type: 'user', id: 'tom' },
        caveat: { name: 'ip_ok', context: { cidr: '10.0.0.0/8', n: [1, { a: null }] } },
      },
    ],
    [
      'document:1#viewer@user:tom[expiration:2030-01-02T03:04:05Z]',
      {
        resource: { type: 'document', id: '1' },
        relation: 'viewer',
        subject: { type: 'user', id: 'tom' },
        expiration: { seconds: Date.UTC(2030, 0, 2, 3, 4, 5) / 1000, nanos: 0 },
      },
    ],
    [
      'document:1#viewer@user:tom[ip_ok:{"a":"b"}][expiration:2030-01-02T03:04:05.25-02:00]',
      {
        resource: { type: 'document', id: '1' },
        relation: 'viewer',
        subject: { type: 'user', id: 'tom' },
        caveat: { name: 'ip_ok', context: { a: 'b' } },
        expiration: { seconds: Date.UTC(2030, 0, 2, 5, 4, 5) / 1000, nanos: 250_000_000 },
      },
    ],
    ['  document:1#viewer@user:tom  ', { resource: { type: 'document', id: '1' }, relation: 'viewer', subject: { type: 'user', id: 'tom' } }],
  ])('parses %s', (text, expected) => {
    expect(parseRelationship(text)).toEqual(expected);
  });

  it.each([
    ['no subject', 'document:1#viewer', /invalid relationship string/],
    ['no relation', 'document:1@user:tom', /invalid relationship string/],
    ['a space inside', 'document:1#viewer @user:tom', /invalid relationship string/],
    ['a two-letter type (names need three characters)', 'dc:1#viewer@user:tom', /invalid relationship string/],
    ['an upper-case relation', 'document:1#Viewer@user:tom', /invalid relationship string/],
    ['a wildcard resource', 'document:*#viewer@user:tom', /invalid relationship string/],
    ['a bad character in an id', 'document:a.b#viewer@user:tom', /invalid relationship string/],
    ['caveat context that is not JSON', 'document:1#viewer@user:tom[cv1:{nope}]', /invalid caveat context JSON/],
    ['an expiration that is not a date', 'document:1#viewer@user:tom[expiration:2030-13-01T00:00:00Z]', /invalid expiration time/],
    ['an expiration on 30 February', 'document:1#viewer@user:tom[expiration:2030-02-30T00:00:00Z]', /invalid expiration time/],
    ['an expiration with a + offset (SpiceDB does not take it)', 'document:1#viewer@user:tom[expiration:2030-01-01T00:00:00+02:00]', /invalid relationship string/],
    ['an id over 1024 characters', `document:${'a'.repeat(1025)}#viewer@user:tom`, /must be <= 1024 characters/],
  ])('rejects %s', (_case, text, message) => {
    expect(() => parseRelationship(text)).toThrow(RelationshipSyntaxError);
    expect(() => parseRelationship(text)).toThrow(message);
  });
});

describe('formatRelationship', () => {
  it('writes caveat and expiration the way SpiceDB prints them', () => {
    const text = 'document:1#viewer@group:eng#member[ip_ok:{"a":1}][expiration:2030-01-02T03:04:05.123Z]';
    expect(formatRelationship(parseRelationship(text))).toBe(text);
  });

  it('round-trips any relationship the grammar allows', () => {
    const name = fc.stringMatching(/^[a-z][a-z0-9_]{1,10}[a-z0-9]$/);
    const id = fc.stringMatching(/^[a-zA-Z0-9/_|\-=+]{1,12}$/);
    const json = fc.dictionary(fc.stringMatching(/^[a-z]{1,5}$/), fc.oneof(fc.integer(), fc.string(), fc.boolean(), fc.constant(null)), {
      minKeys: 1,
      maxKeys: 3,
    });
    const rel = fc.record(
      {
        resource: fc.record({ type: name, id }),
        relation: name,
        subject: fc.oneof(
          fc.record({ type: name, id }),
          fc.record({ type: name, id: fc.constant('*') }),
          fc.record({ type: name, id, relation: name }),
        ),
        caveat: fc.oneof(fc.record({ name }), fc.record({ name, context: json })),
        expiration: fc.record({ seconds: fc.integer({ min: 0, max: 4_000_000_000 }), nanos: fc.integer({ min: 0, max: 999_999_999 }) }),
      },
      { requiredKeys: ['resource', 'relation', 'subject'] },
    );
    fc.assert(
      fc.property(rel, (r) => {
        expect(parseRelationship(formatRelationship(r))).toEqual(r);
      }),
      { numRuns: 300 },
    );
  });
});

describe('relationshipKey', () => {
  it('ignores caveat and expiration, as SpiceDB identifies relationships', () => {
    const a = parseRelationship('document:1#viewer@user:tom[cv1:{"x":1}]');
    const b = parseRelationship('document:1#viewer@user:tom[expiration:2030-01-01T00:00:00Z]');
    expect(relationshipKey(a)).toBe(relationshipKey(b));
    expect(relationshipKey(a)).toBe('document:1#viewer@user:tom');
  });

  it('tells a subject relation apart from a plain subject', () => {
    expect(relationshipKey(parseRelationship('document:1#viewer@group:eng#member'))).not.toBe(
      relationshipKey(parseRelationship('document:1#viewer@group:eng')),
    );
  });
});

describe('toV1Relationship / fromV1Relationship', () => {
  it('carries caveat context and expiration into the API message and back', () => {
    const rel = parseRelationship('document:1#viewer@group:eng#member[ip_ok:{"cidr":"10.0.0.0/8","n":2}][expiration:2030-01-02T03:04:05.5Z]');
    const msg = toV1Relationship(rel);
    expect(msg.subject?.optionalRelation).toBe('member');
    expect(msg.optionalCaveat?.caveatName).toBe('ip_ok');
    expect(msg.optionalExpiresAt).toEqual({ seconds: String(Date.UTC(2030, 0, 2, 3, 4, 5) / 1000), nanos: 500_000_000 });
    expect(fromV1Relationship(msg)).toEqual(rel);
  });

  it('leaves the traits out when asked (a DELETE needs only the identity)', () => {
    const msg = toV1Relationship(parseRelationship('document:1#viewer@user:tom[ip_ok:{"a":1}][expiration:2030-01-01T00:00:00Z]'), false);
    expect(msg.optionalCaveat).toBeUndefined();
    expect(msg.optionalExpiresAt).toBeUndefined();
  });
});

describe('parseAssertion', () => {
  it('parses a plain assertion', () => {
    expect(parseAssertion('document:1#view@user:tom')).toEqual({
      relationship: { resource: { type: 'document', id: '1' }, relation: 'view', subject: { type: 'user', id: 'tom' } },
      text: 'document:1#view@user:tom',
    });
  });

  it('parses caveat context given with `with`', () => {
    const a = parseAssertion('document:1#view@user:tom with {"ip":"10.1.2.3","n":[1]}');
    expect(a.context).toEqual({ ip: '10.1.2.3', n: [1] });
    expect(a.relationship.subject).toEqual({ type: 'user', id: 'tom' });
  });

  it.each([
    ['a caveat on the relationship', 'document:1#view@user:tom[cv1]', /cannot specify a caveat on an assertion/],
    ['an expiration', 'document:1#view@user:tom[expiration:2030-01-01T00:00:00Z]', /cannot specify an expiration/],
    ['context that is not an object', 'document:1#view@user:tom with [1]', /must be a JSON object/],
    ['context that is not JSON', 'document:1#view@user:tom with {a}', /invalid caveat context JSON in assertion/],
    ['a malformed relationship', 'document:1#view', /invalid relationship string/],
  ])('rejects %s', (_case, text, message) => {
    expect(() => parseAssertion(text)).toThrow(message);
  });
});
