/**
 * The declarative seed: TOUCH every listed relationship, DELETE those the
 * previous properties listed and these no longer do, never anything else.
 * Writes go in batches within SpiceDB's per-call limit with bounded
 * concurrency; the last batch is written alone, after all others, so its
 * ZedToken is at least as fresh as every write.
 */
import { v1 } from '@authzed/authzed-node';
import { relationshipKey, toV1Relationship, type Relationship } from '../shared/relationships';
import { FULL_CONSISTENCY, rpc, type CallBudget, type SchemaClient } from './spicedb-api';

/** SpiceDB's default --write-relationships-max-updates-per-call. */
export const MAX_UPDATES_PER_CALL = 1000;
export const DEFAULT_WRITE_CONCURRENCY = 4;

export interface SeedPlan {
  touch: Relationship[];
  /** Previously seeded, no longer listed. */
  remove: Relationship[];
}

/** What to write so that exactly `desired` is seeded, given what `previous` seeded. */
export function planSeed(desired: readonly Relationship[], previous: readonly Relationship[]): SeedPlan {
  const keep = new Set(desired.map(relationshipKey));
  const seen = new Set<string>();
  const remove: Relationship[] = [];
  for (const rel of previous) {
    const key = relationshipKey(rel);
    if (keep.has(key) || seen.has(key)) continue;
    seen.add(key);
    remove.push(rel);
  }
  return { touch: [...desired], remove };
}

/** The types of the stored schema, enough to tell whether a relationship can exist. */
export type SchemaShape = Map<string, { relations: Map<string, v1.ReflectionTypeReference[]>; permissions: Set<string> }>;

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
  /** Names the entries of a batch for error messages, e.g. `Relationships[0]..[999]`. */
  describe?: (from: number, to: number) => string;
}

export interface WriteResult {
  /** ZedToken of the last write; undefined when nothing was written. */
  token?: string;
  written: number;
  calls: number;
}

/** Writes `rels` with one operation in batches; TOUCH carries caveats and expirations, DELETE only identities. */
export async function writeInBatches(
  client: SchemaClient,
  budget: CallBudget,
  operation: v1.RelationshipUpdate_Operation.TOUCH | v1.RelationshipUpdate_Operation.DELETE,
  rels: readonly Relationship[],
  opts: WriteOptions = {},
): Promise<WriteResult> {
  const size = Math.min(opts.batchSize ?? MAX_UPDATES_PER_CALL, MAX_UPDATES_PER_CALL);
  const withTraits = operation === v1.RelationshipUpdate_Operation.TOUCH;
  const opName = withTraits ? 'TOUCH' : 'DELETE';
  const batches: { from: number; updates: v1.RelationshipUpdate[] }[] = [];
  for (let from = 0; from < rels.length; from += size) {
    batches.push({
      from,
      updates: rels.slice(from, from + size).map((rel) => v1.RelationshipUpdate.create({ operation, relationship: toV1Relationship(rel, withTraits) })),
    });
  }
  if (batches.length === 0) return { written: 0, calls: 0 };

  const send = async (b: { from: number; updates: v1.RelationshipUpdate[] }): Promise<string | undefined> => {
    if (opts.signal?.aborted) throw opts.signal.reason instanceof Error ? opts.signal.reason : new Error('aborted');
    const what = opts.describe?.(b.from, b.from + b.updates.length - 1) ?? `relationships ${b.from}..${b.from + b.updates.length - 1}`;
    const res = await rpc(`WriteRelationships (${opName} ${what})`, () =>
      client.writeRelationships(v1.WriteRelationshipsRequest.create({ updates: b.updates }), ...budget.args()),
    );
    return res.writtenAt?.token;
  };

  const last = batches.pop() as { from: number; updates: v1.RelationshipUpdate[] };
  await pool(batches, Math.max(1, opts.concurrency ?? DEFAULT_WRITE_CONCURRENCY), send);
  const token = await send(last);
  return { ...(token !== undefined ? { token } : {}), written: rels.length, calls: batches.length + 1 };
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
