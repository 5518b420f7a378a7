/**
 * The schema resource's steps, in order. Create/Update: validate, read the
 * key, wait for SERVING, diff the schema (which also rejects a schema that
 * does not compile), write and verify the schema, touch the seed (now that
 * the schema has its types), run the assertions. Relationships no longer
 * seeded are deleted after the schema write, or before it when the new
 * schema removes types (while the current schema still has them). Delete:
 * keep everything, or delete the seed.
 *
 * Each step is idempotent, so a re-delivered request is harmless, and a
 * rollback Update (old and new properties swapped) restores the previous
 * schema and seed by the same path.
 */
import type {
  CloudFormationCustomResourceCreateEvent,
  CloudFormationCustomResourceDeleteEvent,
  CloudFormationCustomResourceUpdateEvent,
} from 'aws-lambda';
import { v1 } from '@authzed/authzed-node';
import type { HandleContext, HandleResult } from '../shared/custom-resource';
import type { HealthChecker } from '../shared/grpc-health';
import { logger } from '../shared/logger';
import type { Relationship } from '../shared/relationships';
import { healthCredentials, waitUntilServing, type SpiceDBConnection } from '../shared/spicedb-client';
import { planSchema, writeAndVerifySchema } from './apply-schema';
import { AssertionsFailedError, runAssertions } from './assertions';
import { physicalResourceId } from './physical-id';
import { deleteModeOf, parseProperties, previousSeed, type SchemaResourceProperties } from './properties';
import { readSchemaShape, removedFromSeed, schemaAllows, writeInBatches, type WriteOptions } from './seed';
import { CallBudget, type SchemaClient } from './spicedb-api';

/** What the steps need from the outside world; the handler passes module-scope clients. */
export interface SchemaResourceDeps {
  readPresharedKey(arn: string, signal: AbortSignal): Promise<string>;
  client(conn: SpiceDBConnection): SchemaClient;
  health(conn: SpiceDBConnection): HealthChecker;
  /** Relationship write batches in flight at once (default 4). */
  writeConcurrency?: number;
  /** Updates per WriteRelationships call (default and maximum 1000). */
  writeBatchSize?: number;
}

const writeOptions = (ctx: HandleContext, deps: SchemaResourceDeps): WriteOptions => ({
  signal: ctx.signal,
  ...(deps.writeConcurrency !== undefined ? { concurrency: deps.writeConcurrency } : {}),
  ...(deps.writeBatchSize !== undefined ? { batchSize: deps.writeBatchSize } : {}),
});

interface Session {
  client: SchemaClient;
  budget: CallBudget;
}

async function connect(props: SchemaResourceProperties, ctx: HandleContext, deps: SchemaResourceDeps): Promise<Session> {
  const presharedKey = await deps.readPresharedKey(props.presharedKeySecretArn, ctx.signal);
  const conn: SpiceDBConnection = { endpoint: props.endpoint, tls: props.tls, presharedKey, ...(props.caPem ? { caPem: props.caPem } : {}) };
  // Stop waiting a little before the wrapper's deadline, so that the Reason
  // says what was awaited rather than only that time ran out.
  const remaining = ctx.remainingMs();
  const waitMs = Math.min(remaining - Math.min(2000, remaining / 5), props.timeouts.servingMs ?? Number.POSITIVE_INFINITY);
  await waitUntilServing(conn.endpoint, healthCredentials(conn), Date.now() + waitMs, { signal: ctx.signal, checker: deps.health(conn) });
  return { client: deps.client(conn), budget: new CallBudget(ctx.remainingMs, props.timeouts.callMs) };
}

/** Deletes those of `rels` the stored schema allows (others cannot exist); returns the count and token. */
async function deleteSeeded(
  session: Session,
  rels: readonly Relationship[],
  ctx: HandleContext,
  deps: SchemaResourceDeps,
): Promise<{ deleted: number; skipped: number; token?: string }> {
  if (rels.length === 0) return { deleted: 0, skipped: 0 };
  const shape = await readSchemaShape(session.client, session.budget);
  const deletable = rels.filter((r) => schemaAllows(shape, r));
  const res = await writeInBatches(
    session.client,
    session.budget,
    v1.RelationshipUpdate_Operation.DELETE,
    deletable.map((relationship) => ({ relationship })),
    writeOptions(ctx, deps),
  );
  return { deleted: deletable.length, skipped: rels.length - deletable.length, ...(res.token !== undefined ? { token: res.token } : {}) };
}

/** Create and Update (including CloudFormation's rollback Update). */
export async function createOrUpdate(
  event: CloudFormationCustomResourceCreateEvent | CloudFormationCustomResourceUpdateEvent,
  ctx: HandleContext,
  deps: SchemaResourceDeps,
): Promise<HandleResult> {
  const props = parseProperties(event.ResourceProperties);
  const previous = event.RequestType === 'Update' ? previousSeed(event.OldResourceProperties) : undefined;
  // Another endpoint is another SpiceDB: nothing was seeded there yet.
  const sameEndpoint = previous !== undefined && previous.endpoint === props.endpoint;
  const physicalId =
    event.RequestType === 'Update' && sameEndpoint ? event.PhysicalResourceId : physicalResourceId(event.StackId, event.LogicalResourceId, props.endpoint);
  if (event.RequestType === 'Update' && !sameEndpoint) {
    logger.info('SpiceDBEndpoint changed: seeding the new endpoint as a new resource', { from: previous?.endpoint, to: props.endpoint, physicalResourceId: physicalId });
  }
  if (previous && previous.skipped > 0) logger.info('previous relationships that did not parse were never written; ignored', { skipped: previous.skipped });

  const session = await connect(props, ctx, deps);
  const change = await planSchema(session.client, session.budget, props.schema);
  logger.info('schema change', { changes: change.lines.slice(0, 100), count: change.lines.length });

  const toRemove = removedFromSeed(
    props.seed.map((e) => e.relationship),
    sameEndpoint ? previous.relationships : [],
  );
  // Relationships under a type the new schema removes must go before the
  // schema write (SpiceDB refuses the removal while they exist); otherwise
  // they go after it, so that a failed write leaves the seed as it was.
  const deleteFirst = change.removesTypes;
  let removed = deleteFirst ? await deleteSeeded(session, toRemove, ctx, deps) : undefined;
  const schemaToken = await writeAndVerifySchema(session.client, session.budget, props.schema);
  removed ??= await deleteSeeded(session, toRemove, ctx, deps);
  if (toRemove.length > 0) logger.info('deleted relationships no longer seeded', { deleted: removed.deleted, notInSchema: removed.skipped, beforeSchemaWrite: deleteFirst });
  let token = deleteFirst ? (schemaToken ?? removed.token) : (removed.token ?? schemaToken);
  const touched = await writeInBatches(session.client, session.budget, v1.RelationshipUpdate_Operation.TOUCH, props.seed, writeOptions(ctx, deps));
  token = touched.token ?? token;
  logger.info('seed written', { touched: touched.written, calls: touched.calls });

  const outcome = await runAssertions(session.client, session.budget, props.assertions);
  if (outcome.failures.length > 0) throw new AssertionsFailedError(outcome.failures, outcome.checked);
  logger.info('assertions passed', { checked: outcome.checked });

  return {
    physicalResourceId: physicalId,
    data: {
      ZedToken: token ?? '',
      SchemaChanges: change.summary,
      RelationshipsTouched: String(touched.written),
      RelationshipsDeleted: String(removed.deleted),
      AssertionsChecked: String(outcome.checked),
    },
  };
}

/** Delete: keep everything (default), or delete the seeded relationships. The schema always stays. */
export async function remove(event: CloudFormationCustomResourceDeleteEvent, ctx: HandleContext, deps: SchemaResourceDeps): Promise<HandleResult> {
  if (deleteModeOf(event.ResourceProperties) === 'keep') {
    logger.info('DeleteMode keep: the schema and relationships stay');
    return { physicalResourceId: event.PhysicalResourceId };
  }
  const props = parseProperties(event.ResourceProperties);
  const session = await connect(props, ctx, deps);
  const removed = await deleteSeeded(
    session,
    props.seed.map((e) => e.relationship),
    ctx,
    deps,
  );
  logger.info('deleted the seeded relationships', { deleted: removed.deleted, notInSchema: removed.skipped });
  return {
    physicalResourceId: event.PhysicalResourceId,
    data: { RelationshipsDeleted: String(removed.deleted), ...(removed.token !== undefined ? { ZedToken: removed.token } : {}) },
  };
}
