/**
 * The declarative seed: TOUCH every listed relationship, DELETE those the
 * previous properties listed and these no longer do, never anything else.
 * Writes go in batches within SpiceDB's per-call limit with bounded
 * concurrency; the last batch is written alone, after all others, so its
 * ZedToken is at least as fresh as every write.
 */
import { v1 } from '@authzed/authzed-node';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { formatRelationship, relationshipKey, toV1Relationship, type Relationship } from '../shared/relationships';
import { FULL_CONSISTENCY, rpc, SpiceDBError, type CallBudget, type SchemaClient } from './spicedb-api';

/** SpiceDB's default --write-relationships-max-updates-per-call. */
export const MAX_UPDATES_PER_CALL = 1000;
/** Write calls in flight at once: hides round trips without crowding SpiceDB's datastore. */
export const DEFAULT_WRITE_CONCURRENCY = 4;

/** What `previous` seeded that `desired` no longer lists (by identity; caveat and expiration aside). */
export function removedFromSeed(desired: readonly Relationship[], previous: readonly Relationship[]): Relationship[] {
  const keep = new Set(desired.map(relationshipKey));
  const seen = new Set<string>();
  const remove: Relationship[] = [];
  for (const rel of previous) {
    const key = relationshipKey(rel);
    if (keep.has(key) || seen.has(key)) continue;
    seen.add(key);
    remove.push(rel);
  }
  return remove;
}

/** The types of the stored schema, enough to tell whether a relationship can exist. */
export type SchemaShape = Map<string, { relations: Map<string, v1.ReflectionTypeReference[]>; permissions: Set<string> }>;

/** The stored schema's definitions, relations (with allowed subject types) and permissions, at full consistency. */
export async function readSchemaShape(client: SchemaClient, budget: CallBudget): Promise<SchemaShape> {
  const res = await rpc('ReflectSchema', () => client.reflectSchema(v1.ReflectSchemaRequest.create({ consistency: FULL_CONSISTENCY }), ...budget.args()));
  const shape: SchemaShape = new Map();
  for (const def of res.definitions) {
    shape.set(def.name, {
      relations: new Map(def.relations.map((r) => [r.name, r.subjectTypes])),
      permissions: new Set(def.permissions.map((p) => p.name)),
    });
  }
  return shape;
}

/**
 * Whether the stored schema allows `rel` at all, by the rules SpiceDB applies
 * to a DELETE (internal/relationships/validation.go: definitions, relation,
 * subject relation and a matching allowed subject type; caveats ignored). A
 * relationship the schema does not allow cannot exist, and SpiceDB would
 * reject deleting it, so such deletes are skipped.
 */
export function schemaAllows(shape: SchemaShape, rel: Relationship): boolean {
  const resource = shape.get(rel.resource.type);
  const subject = shape.get(rel.subject.type);
  const allowed = resource?.relations.get(rel.relation);
  if (!resource || !subject || !allowed) return false;
  const subjectRelation = rel.subject.relation;
  if (subjectRelation !== undefined && !subject.relations.has(subjectRelation) && !subject.permissions.has(subjectRelation)) return false;
  return allowed.some((t) => {
    if (t.subjectDefinitionName !== rel.subject.type) return false;
    const wildcard = t.typeref.oneofKind === 'isPublicWildcard' && t.typeref.isPublicWildcard;
    if (rel.subject.id === '*') return wildcard;
    if (wildcard) return false;
    const typeRelation = t.typeref.oneofKind === 'optionalRelationName' ? t.typeref.optionalRelationName : '';
    return subjectRelation === undefined ? typeRelation === '' || typeRelation === '...' : typeRelation === subjectRelation;
  });
}

export interface WriteOptions {
  batchSize?: number;
  concurrency?: number;
  signal?: AbortSignal;
}

/** A relationship to write, with where it came from (e.g. `Relationships[3]`) for error messages. */
export interface WriteItem {
  relationship: Relationship;
  where?: string;
}

export interface WriteResult {
  /** ZedToken of the last write; undefined when nothing was written. */
  token?: string;
  written: number;
  calls: number;
}

/** SpiceDB's answers worth another try: serialization conflicts between concurrent writes, a dropped connection. */
const TRANSIENT = new Set([GrpcStatus.ABORTED, GrpcStatus.UNAVAILABLE]);
const MAX_ATTEMPTS = 6;

/**
 * Writes `items` with one operation in batches (TOUCH carries caveats and
 * expirations, DELETE only identities). Items are sorted by identity first,
 * so concurrent batches touch disjoint key ranges (PostgreSQL's
 * serializable transactions conflict less). Serialization conflicts are
 * retried with backoff (both operations are idempotent). A batch SpiceDB
 * rejects is bisected down to the entry it rejects, which the error names.
 */
export async function writeInBatches(
  client: SchemaClient,
  budget: CallBudget,
  operation: v1.RelationshipUpdate_Operation.TOUCH | v1.RelationshipUpdate_Operation.DELETE,
  items: readonly WriteItem[],
  opts: WriteOptions = {},
): Promise<WriteResult> {
  const size = Math.max(1, Math.min(opts.batchSize ?? MAX_UPDATES_PER_CALL, MAX_UPDATES_PER_CALL));
  const withTraits = operation === v1.RelationshipUpdate_Operation.TOUCH;
  const opName = withTraits ? 'TOUCH' : 'DELETE';
  const sorted = items
    .map((item) => ({ item, key: relationshipKey(item.relationship) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map((e) => e.item);
  const batches: WriteItem[][] = [];
  for (let from = 0; from < sorted.length; from += size) batches.push(sorted.slice(from, from + size));
  if (batches.length === 0) return { written: 0, calls: 0 };
  let calls = 0;

  const attempt = async (batch: readonly WriteItem[]): Promise<string | undefined> => {
    const request = v1.WriteRelationshipsRequest.create({
      updates: batch.map((i): v1.RelationshipUpdate => ({ operation, relationship: toV1Relationship(i.relationship, withTraits) })),
    });
    for (let n = 1; ; n++) {
      if (opts.signal?.aborted) throw opts.signal.reason instanceof Error ? opts.signal.reason : new Error('aborted');
      calls++;
      try {
        const res = await rpc(`WriteRelationships (${opName})`, () => client.writeRelationships(request, ...budget.args()));
        return res.writtenAt?.token;
      } catch (err) {
        if (!(err instanceof SpiceDBError) || err.code === undefined || !TRANSIENT.has(err.code) || n >= MAX_ATTEMPTS) throw err;
        await new Promise((r) => setTimeout(r, 50 * 2 ** n * (0.5 + Math.random() / 2)));
      }
    }
  };

  const send = async (batch: readonly WriteItem[]): Promise<string | undefined> => {
    try {
      return await attempt(batch);
    } catch (err) {
      if (!(err instanceof SpiceDBError) || (err.code !== undefined && TRANSIENT.has(err.code))) throw err;
      throw await culprit(batch, err);
    }
  };

  /** Halves a rejected batch until one entry is left; entries of accepted halves are written (they are wanted anyway). */
  const culprit = async (batch: readonly WriteItem[], err: SpiceDBError): Promise<Error> => {
    if (batch.length === 1) {
      const only = batch[0] as WriteItem;
      const text = formatRelationship(only.relationship);
      return new SpiceDBError(`${only.where ?? 'relationship'} ${JSON.stringify(text)}: ${err.message}`, err.code, { cause: err });
    }
    const half = Math.ceil(batch.length / 2);
    for (const part of [batch.slice(0, half), batch.slice(half)]) {
      try {
        await attempt(part);
      } catch (inner) {
        if (inner instanceof SpiceDBError && !(inner.code !== undefined && TRANSIENT.has(inner.code))) return culprit(part, inner);
        return inner instanceof Error ? inner : err;
      }
    }
    // Both halves went through alone: the batch failed as a whole (e.g. a size limit).
    return err;
  };

  const last = batches.pop() as WriteItem[];
  await pool(batches, Math.max(1, opts.concurrency ?? DEFAULT_WRITE_CONCURRENCY), send);
  const token = await send(last);
  return { ...(token !== undefined ? { token } : {}), written: items.length, calls };
}

/** Runs `work` over `items` with at most `limit` in flight; the first failure stops new work and is thrown. */
async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const runner = async (): Promise<void> => {
    while (failed === undefined && next < items.length) {
      const item = items[next++] as T;
      try {
        await work(item);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, runner));
  if (failed !== undefined) throw failed;
}
