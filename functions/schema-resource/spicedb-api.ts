/**
 * The slice of the SpiceDB API this resource uses, call deadlines bounded by
 * the invocation's remaining time, and SpiceDB's own error text in messages.
 */
import { v1 } from '@authzed/authzed-node';
import { Metadata, status as GrpcStatus, type CallOptions } from '@grpc/grpc-js';

export type SchemaClient = Pick<
  v1.ZedPromiseClientInterface,
  'writeSchema' | 'diffSchema' | 'reflectSchema' | 'writeRelationships' | 'checkBulkPermissions'
>;

/** Reads that must see the writes just made (field-facts: read-after-write). */
export const FULL_CONSISTENCY: v1.Consistency = v1.Consistency.create({
  requirement: { oneofKind: 'fullyConsistent', fullyConsistent: true },
});

/** Per-call deadlines: `callMs`, but never past the invocation's own deadline. */
export class CallBudget {
  constructor(
    private readonly remainingMs: () => number,
    private readonly callMs: number,
  ) {}

  /** The metadata and options arguments of a promise-client call. */
  args(): [Metadata, Partial<CallOptions>] {
    return [new Metadata(), { deadline: new Date(Date.now() + Math.max(1, Math.min(this.callMs, this.remainingMs()))) }];
  }
}

/** A SpiceDB call failed; the message carries the gRPC code and SpiceDB's text. */
export class SpiceDBError extends Error {
  constructor(
    message: string,
    readonly code: number | undefined,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'SpiceDBError';
  }
}

interface GrpcLikeError {
  code?: unknown;
  details?: unknown;
  message?: unknown;
}

/** `OP failed: CODE: <SpiceDB's message>` (parse errors keep their line and column). */
export function spicedbError(operation: string, err: unknown): SpiceDBError {
  const e = (err ?? {}) as GrpcLikeError;
  const code = typeof e.code === 'number' ? e.code : undefined;
  const name = code !== undefined ? (GrpcStatus[code] ?? String(code)) : undefined;
  const text = typeof e.details === 'string' && e.details !== '' ? e.details : typeof e.message === 'string' ? e.message : String(err);
  return new SpiceDBError(`${operation} failed: ${name ? `${name}: ` : ''}${text}`, code, { cause: err });
}

/** Runs `call`, rethrowing failures as SpiceDBError. */
export async function rpc<T>(operation: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw spicedbError(operation, err);
  }
}
