/**
 * The deployment gate: every assertion checked at full consistency
 * (CheckBulkPermissions), as `zed validate` reads them: AssertTrue expects
 * HAS_PERMISSION, AssertFalse NO_PERMISSION, AssertCaveated
 * CONDITIONAL_PERMISSION (pkg/development/assertions.go).
 */
import { v1 } from '@authzed/authzed-node';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { objectReference, subjectReference, toStruct } from '../shared/relationships';
import type { AssertionEntry, AssertionKind } from './properties';
import { FULL_CONSISTENCY, rpc, type CallBudget, type SchemaClient } from './spicedb-api';

const Permissionship = v1.CheckPermissionResponse_Permissionship;

const EXPECTED: Record<AssertionKind, v1.CheckPermissionResponse_Permissionship> = {
  AssertTrue: Permissionship.HAS_PERMISSION,
  AssertFalse: Permissionship.NO_PERMISSION,
  AssertCaveated: Permissionship.CONDITIONAL_PERMISSION,
};

/** SpiceDB answers at most 10,000 items per bulk check; stay well below. */
const ITEMS_PER_CALL = 500;

export interface AssertionOutcome {
  checked: number;
  /** One line per failing assertion: where, text, expected, got. */
  failures: string[];
}

/** Assertions failed; the message names each one and what it got. */
export class AssertionsFailedError extends Error {
  constructor(
    readonly failures: string[],
    checked: number,
  ) {
    super(`${failures.length} of ${checked} assertion${checked === 1 ? '' : 's'} failed: ${failures.join('; ')}`);
    this.name = 'AssertionsFailedError';
  }
}

function got(pair: v1.CheckBulkPermissionsPair | undefined): { permissionship?: v1.CheckPermissionResponse_Permissionship; text: string } {
  const r = pair?.response;
  if (r?.oneofKind === 'item') {
    const p = r.item.permissionship;
    const missing = r.item.partialCaveatInfo?.missingRequiredContext ?? [];
    const suffix = p === Permissionship.CONDITIONAL_PERMISSION && missing.length > 0 ? ` (missing caveat context: ${missing.join(', ')})` : '';
    return { permissionship: p, text: `${Permissionship[p] ?? String(p)}${suffix}` };
  }
  if (r?.oneofKind === 'error') return { text: `error ${GrpcStatus[r.error.code] ?? r.error.code}: ${r.error.message}` };
  return { text: 'no answer' };
}

/** Checks every assertion; returns the failures (an empty list means the gate passed). */
export async function runAssertions(client: SchemaClient, budget: CallBudget, entries: readonly AssertionEntry[]): Promise<AssertionOutcome> {
  const failures: string[] = [];
  for (let from = 0; from < entries.length; from += ITEMS_PER_CALL) {
    const chunk = entries.slice(from, from + ITEMS_PER_CALL);
    const items = chunk.map((a) =>
      v1.CheckBulkPermissionsRequestItem.create({
        resource: objectReference(a.relationship.resource),
        permission: a.relationship.relation,
        subject: subjectReference(a.relationship.subject),
        ...(a.context ? { context: toStruct(a.context) } : {}),
      }),
    );
    const res = await rpc('CheckBulkPermissions (assertions)', () =>
      client.checkBulkPermissions(v1.CheckBulkPermissionsRequest.create({ consistency: FULL_CONSISTENCY, items }), ...budget.args()),
    );
    chunk.forEach((a, i) => {
      const outcome = got(res.pairs[i]);
      const expected = EXPECTED[a.kind];
      if (outcome.permissionship !== expected) {
        failures.push(`${a.where} ${JSON.stringify(a.text)}: expected ${Permissionship[expected]}, got ${outcome.text}`);
      }
    });
  }
  return { checked: entries.length, failures };
}
