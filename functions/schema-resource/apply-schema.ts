/**
 * The schema step: learn what the write will change (DiffSchema, which also
 * rejects a schema that does not compile before anything is written), write
 * it, and read it back: a DiffSchema of the intended schema against the
 * stored one at full consistency must find no difference.
 */
import { v1 } from '@authzed/authzed-node';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { describeDiff, summarizeDiff } from './diff';
import { FULL_CONSISTENCY, rpc, SpiceDBError, type CallBudget, type SchemaClient } from './spicedb-api';

export interface SchemaChange {
  /** One line per change; empty when the schema is unchanged. */
  lines: string[];
  /** Short form for the response Data. */
  summary: string;
  /** The write removes a definition, relation, allowed type, permission or caveat (or the diff is unknown). */
  removesTypes: boolean;
}

async function diff(client: SchemaClient, budget: CallBudget, schema: string, operation: string): Promise<string[] | undefined> {
  try {
    const res = await rpc(operation, () =>
      client.diffSchema(v1.DiffSchemaRequest.create({ consistency: FULL_CONSISTENCY, comparisonSchema: schema }), ...budget.args()),
    );
    return res.diffs.map(describeDiff);
  } catch (err) {
    // A SpiceDB without DiffSchema: go on without a summary.
    if (err instanceof SpiceDBError && err.code === GrpcStatus.UNIMPLEMENTED) return undefined;
    throw err;
  }
}

/** What writing `schema` will change; throws SpiceDB's error when it does not compile. */
export async function planSchema(client: SchemaClient, budget: CallBudget, schema: string): Promise<SchemaChange> {
  const lines = await diff(client, budget, schema, 'Schema (DiffSchema)');
  if (lines === undefined) return { lines: [], summary: 'unknown (this SpiceDB has no DiffSchema)', removesTypes: true };
  return { lines, summary: summarizeDiff(lines), removesTypes: lines.some((l) => l.startsWith('-')) };
}

/** WriteSchema, then the read-back check; resolves with the write's ZedToken. */
export async function writeAndVerifySchema(client: SchemaClient, budget: CallBudget, schema: string): Promise<string | undefined> {
  const res = await rpc('WriteSchema', () => client.writeSchema(v1.WriteSchemaRequest.create({ schema }), ...budget.args()));
  const left = await diff(client, budget, schema, 'reading the schema back (DiffSchema)');
  if (left !== undefined && left.length > 0) {
    throw new Error(`the schema read back differs from the one written: ${summarizeDiff(left)}`);
  }
  return res.writtenAt?.token;
}
