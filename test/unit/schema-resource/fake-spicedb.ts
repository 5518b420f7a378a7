/**
 * A scripted stand-in for the slice of the SpiceDB API the resource uses,
 * recording each call, for unit tests of ordering, batching and retries
 * (the real server is exercised in test/integration).
 */
import { v1 } from '@authzed/authzed-node';
import type { SchemaClient } from '../../../functions/schema-resource/spicedb-api';

export interface Call {
  method: string;
  request: unknown;
}

export class FakeSpiceDB {
  readonly calls: Call[] = [];
  inFlight = 0;
  maxInFlight = 0;
  private tokenSeq = 0;
  /** Lines DiffSchema reports (as diffs) before the schema is written; none after. */
  pendingDiffs: v1.ReflectionSchemaDiff[] = [];
  definitions: v1.ReflectionDefinition[] = [];
  /** Called for each WriteRelationships; throw from it to fail that call. */
  onWrite: (req: v1.WriteRelationshipsRequest, n: number) => void = () => undefined;
  /** Answers for CheckBulkPermissions, by item. */
  onCheck: (item: v1.CheckBulkPermissionsRequestItem) => v1.CheckBulkPermissionsPair['response'] = () => ({
    oneofKind: 'item',
    item: v1.CheckBulkPermissionsResponseItem.create({ permissionship: v1.CheckPermissionResponse_Permissionship.HAS_PERMISSION }),
  });
  private writes = 0;

  private token(): v1.ZedToken {
    return v1.ZedToken.create({ token: `t${++this.tokenSeq}` });
  }

  private async record<T>(method: string, request: unknown, answer: () => T): Promise<T> {
    this.calls.push({ method, request });
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise((r) => setTimeout(r, 2));
      return answer();
    } finally {
      this.inFlight--;
    }
  }

  readonly client: SchemaClient = {
    writeSchema: (req) =>
      this.record('writeSchema', req, () => {
        this.pendingDiffs = [];
        return v1.WriteSchemaResponse.create({ writtenAt: this.token() });
      }),
    diffSchema: (req) => this.record('diffSchema', req, () => v1.DiffSchemaResponse.create({ diffs: this.pendingDiffs, readAt: this.token() })),
    reflectSchema: (req) => this.record('reflectSchema', req, () => v1.ReflectSchemaResponse.create({ definitions: this.definitions, readAt: this.token() })),
    writeRelationships: (req) =>
      this.record('writeRelationships', req, () => {
        this.onWrite(req, ++this.writes);
        return v1.WriteRelationshipsResponse.create({ writtenAt: this.token() });
      }),
    checkBulkPermissions: (req) =>
      this.record('checkBulkPermissions', req, () =>
        v1.CheckBulkPermissionsResponse.create({ pairs: req.items.map((item) => ({ request: item, response: this.onCheck(item) })), checkedAt: this.token() }),
      ),
  } as SchemaClient;

  methods(): string[] {
    return this.calls.map((c) => c.method);
  }
}

/** A gRPC-style error as @grpc/grpc-js rejects with. */
export function grpcError(code: number, details: string): Error & { code: number; details: string } {
  return Object.assign(new Error(`${code} ${details}`), { code, details });
}
