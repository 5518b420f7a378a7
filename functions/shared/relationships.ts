/**
 * Relationships and assertions in the text syntax of SpiceDB validation files
 * and zed:
 *
 *   resource:id#relation@subject:id[#relation][[caveat[:{json}]]][[expiration:RFC3339]]
 *
 * (`user:*` is the public wildcard; a subject relation `...` means none). The
 * grammar mirrors SpiceDB's own parser (pkg/tuple/parsing.go, unchanged from
 * v1.56.0 to the pinned v1.56.2), so what parses here parses there. Assertions
 * are `relationship [with {json context}]` (pkg/validationfile/blocks/assertions.go).
 */
import { v1 } from '@authzed/authzed-node';

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface ObjectRef {
  type: string;
  id: string;
}

export interface SubjectRef extends ObjectRef {
  /** The subject relation; absent for a plain subject (`...`). */
  relation?: string;
}

export interface Caveat {
  name: string;
  context?: JsonObject;
}

/** An instant with nanosecond precision, as a protobuf Timestamp carries it. */
export interface Expiration {
  seconds: number;
  nanos: number;
}

export interface Relationship {
  resource: ObjectRef;
  relation: string;
  subject: SubjectRef;
  caveat?: Caveat;
  expiration?: Expiration;
}

/** A check with its expected outcome context. */
export interface Assertion {
  relationship: Relationship;
  /** Caveat context passed to the check (`with {...}`). */
  context?: JsonObject;
  /** The text as given, for messages. */
  text: string;
}

/** A relationship or assertion text that does not parse; the message says why. */
export class RelationshipSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RelationshipSyntaxError';
  }
}

export const RELATIONSHIP_FORM = 'resource:id#relation@subject:id[#relation][[caveat:{json}]][[expiration:RFC3339]]';

// The expressions of pkg/tuple/parsing.go.
const NAMESPACE = '(?:[a-z][a-z0-9_]{1,61}[a-z0-9]/)*[a-z][a-z0-9_]{1,62}[a-z0-9]';
const RESOURCE_ID = '[a-zA-Z0-9/_|\\-=+]{1,}';
const SUBJECT_ID = `${RESOURCE_ID}|\\*`;
const RELATION = '[a-z][a-z0-9_]{1,62}[a-z0-9]';
const PARSER = new RegExp(
  `^(${NAMESPACE}):(${RESOURCE_ID})#(${RELATION})` +
    `@(${NAMESPACE}):(${SUBJECT_ID})(?:#(${RELATION}|\\.\\.\\.))?` +
    `(?:\\[(${NAMESPACE})(?::(\\{.+\\}))?\\])?` +
    `(?:\\[expiration:([\\d\\-.:TZ]+)\\])?$`,
);
const MAX_ID_LENGTH = 1024;
const ELLIPSIS = '...';

/** Parses one relationship; throws RelationshipSyntaxError. Surrounding whitespace is ignored. */
export function parseRelationship(text: string): Relationship {
  const m = PARSER.exec(text.trim());
  if (!m) throw new RelationshipSyntaxError(`invalid relationship string; expected ${RELATIONSHIP_FORM}`);
  const [, resourceType, resourceId, relation, subjectType, subjectId, subjectRelation, caveatName, caveatContext, expiration] = m;
  for (const [what, id] of [
    ['resource', resourceId],
    ['subject', subjectId],
  ] as const) {
    if ((id ?? '').length > MAX_ID_LENGTH) throw new RelationshipSyntaxError(`invalid ${what} id; must be <= ${MAX_ID_LENGTH} characters`);
  }
  const rel: Relationship = {
    resource: { type: resourceType as string, id: resourceId as string },
    relation: relation as string,
    subject: { type: subjectType as string, id: subjectId as string },
  };
  if (subjectRelation !== undefined && subjectRelation !== ELLIPSIS) rel.subject.relation = subjectRelation;
  if (caveatName !== undefined) {
    rel.caveat = { name: caveatName };
    if (caveatContext !== undefined) rel.caveat.context = parseJsonObject(caveatContext, 'invalid caveat context JSON');
  }
  if (expiration !== undefined) rel.expiration = parseExpiration(expiration);
  return rel;
}

/** Parses `relationship [with {json}]`, as a validation file's assertTrue/assertFalse/assertCaveated entry. */
export function parseAssertion(text: string): Assertion {
  const trimmed = text.trim();
  const at = trimmed.indexOf(' with ');
  const relText = at < 0 ? trimmed : trimmed.slice(0, at);
  const relationship = parseRelationship(relText);
  // SpiceDB fails such assertions when it runs them; here they fail at once.
  if (relationship.caveat) throw new RelationshipSyntaxError('cannot specify a caveat on an assertion (give caveat context with `with {...}`)');
  if (relationship.expiration) throw new RelationshipSyntaxError('cannot specify an expiration on an assertion');
  const assertion: Assertion = { relationship, text: trimmed };
  if (at >= 0) assertion.context = parseJsonObject(trimmed.slice(at + ' with '.length), 'invalid caveat context JSON in assertion');
  return assertion;
}

function parseJsonObject(text: string, what: string): JsonObject {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new RelationshipSyntaxError(`${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new RelationshipSyntaxError(`${what}: must be a JSON object`);
  return value as JsonObject;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|-(\d{2}):(\d{2}))$/;

/** RFC 3339 as Go's time.Parse(time.RFC3339Nano) takes it, within SpiceDB's character set (no `+` offsets). */
function parseExpiration(text: string): Expiration {
  const m = RFC3339.exec(text);
  const bad = (): never => {
    throw new RelationshipSyntaxError(`invalid expiration time "${text}"; expected RFC 3339, e.g. 2030-01-01T00:00:00Z`);
  };
  if (!m) return bad();
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59) return bad();
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  if (new Date(ms).getUTCDate() !== d) return bad();
  const offsetMinutes = m[8] === 'Z' ? 0 : -(Number(m[9]) * 60 + Number(m[10]));
  return { seconds: ms / 1000 - offsetMinutes * 60, nanos: Number((m[7] ?? '').padEnd(9, '0')) };
}

function formatExpiration(e: Expiration): string {
  const iso = new Date(e.seconds * 1000).toISOString().slice(0, 19);
  // Go's RFC3339Nano drops trailing zeros of the fraction.
  const fraction = e.nanos === 0 ? '' : `.${String(e.nanos).padStart(9, '0').replace(/0+$/, '')}`;
  return `${iso}${fraction}Z`;
}

const subjectText = (s: SubjectRef): string => `${s.type}:${s.id}${s.relation ? `#${s.relation}` : ''}`;

/** The identity of a relationship in SpiceDB: resource, relation and subject (no caveat, no expiration). */
export function relationshipKey(rel: Relationship): string {
  return `${rel.resource.type}:${rel.resource.id}#${rel.relation}@${subjectText(rel.subject)}`;
}

/** The text form; parseRelationship(formatRelationship(r)) equals r. */
export function formatRelationship(rel: Relationship): string {
  let out = relationshipKey(rel);
  if (rel.caveat) out += `[${rel.caveat.name}${rel.caveat.context ? `:${JSON.stringify(rel.caveat.context)}` : ''}]`;
  if (rel.expiration) out += `[expiration:${formatExpiration(rel.expiration)}]`;
  return out;
}

// Plain literals rather than `.create()`: the messages are complete as
// written, and create()'s reflection is most of the client-side cost of a
// large seed (about 10 µs per relationship).
export const objectReference = (o: ObjectRef): v1.ObjectReference => ({ objectType: o.type, objectId: o.id });

export const subjectReference = (s: SubjectRef): v1.SubjectReference => ({ object: objectReference(s), optionalRelation: s.relation ?? '' });

/** A JSON object as a protobuf Struct (caveat context). */
export const toStruct = (o: JsonObject): v1.PbStruct => v1.PbStruct.fromJson(o);

/** The API message. `withTraits: false` leaves out caveat and expiration (enough to delete). */
export function toV1Relationship(rel: Relationship, withTraits = true): v1.Relationship {
  const out: v1.Relationship = { resource: objectReference(rel.resource), relation: rel.relation, subject: subjectReference(rel.subject) };
  if (withTraits && rel.caveat) {
    out.optionalCaveat = v1.ContextualizedCaveat.create({
      caveatName: rel.caveat.name,
      ...(rel.caveat.context ? { context: toStruct(rel.caveat.context) } : {}),
    });
  }
  if (withTraits && rel.expiration) out.optionalExpiresAt = { seconds: String(rel.expiration.seconds), nanos: rel.expiration.nanos };
  return out;
}

/** From the API message (e.g. ReadRelationships), for comparisons and messages. */
export function fromV1Relationship(rel: v1.Relationship): Relationship {
  const out: Relationship = {
    resource: { type: rel.resource?.objectType ?? '', id: rel.resource?.objectId ?? '' },
    relation: rel.relation,
    subject: { type: rel.subject?.object?.objectType ?? '', id: rel.subject?.object?.objectId ?? '' },
  };
  const subjectRelation = rel.subject?.optionalRelation;
  if (subjectRelation && subjectRelation !== ELLIPSIS) out.subject.relation = subjectRelation;
  if (rel.optionalCaveat?.caveatName) {
    out.caveat = { name: rel.optionalCaveat.caveatName };
    const ctx = rel.optionalCaveat.context ? (v1.PbStruct.toJson(rel.optionalCaveat.context) as JsonObject) : undefined;
    if (ctx && Object.keys(ctx).length > 0) out.caveat.context = ctx;
  }
  if (rel.optionalExpiresAt) out.expiration = { seconds: Number(rel.optionalExpiresAt.seconds), nanos: rel.optionalExpiresAt.nanos };
  return out;
}
