/**
 * The standard gRPC health check (grpc.health.v1.Health/Check), which SpiceDB
 * serves without a token. SpiceDB answers NOT_SERVING until its datastore is
 * migrated and its dispatcher is ready. The two messages are one field each,
 * so they are encoded here rather than pulling in a proto loader.
 */
import { credentials, makeGenericClientConstructor, type ChannelCredentials, type ChannelOptions, type Client } from '@grpc/grpc-js';

export type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';
const STATUS: readonly ServingStatus[] = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

function encodeRequest(service: string): Buffer {
  const name = Buffer.from(service, 'utf8');
  if (name.length === 0) return Buffer.alloc(0);
  if (name.length > 127) throw new Error('health check service name too long');
  return Buffer.concat([Buffer.from([0x0a, name.length]), name]);
}

function decodeResponse(buf: Buffer): ServingStatus {
  // Field 1 (status), varint: tag 0x08. An empty message means UNKNOWN (0).
  if (buf.length >= 2 && buf[0] === 0x08) return STATUS[buf[1] ?? 0] ?? 'UNKNOWN';
  return 'UNKNOWN';
}

const HealthClient = makeGenericClientConstructor(
  {
    check: {
      path: '/grpc.health.v1.Health/Check',
      requestStream: false,
      responseStream: false,
      requestSerialize: encodeRequest,
      requestDeserialize: (b: Buffer) => b.toString(),
      responseSerialize: (s: ServingStatus) => Buffer.from([0x08, STATUS.indexOf(s)]),
      responseDeserialize: decodeResponse,
    },
  },
  'Health',
);

export interface HealthChecker {
  /** One check with a deadline; rejects on transport errors. */
  check(service?: string, timeoutMs?: number): Promise<ServingStatus>;
  close(): void;
}

/**
 * A health client for `endpoint` (`host:port`), plaintext unless credentials
 * are given. `options` are gRPC channel options (e.g. a short reconnect
 * backoff for callers that poll until the server is up).
 */
export function healthChecker(endpoint: string, creds: ChannelCredentials = credentials.createInsecure(), options?: ChannelOptions): HealthChecker {
  const client = new HealthClient(endpoint, creds, options) as unknown as Client & {
    check(req: string, opts: { deadline: Date }, cb: (err: Error | null, res?: ServingStatus) => void): void;
  };
  return {
    check: (service = '', timeoutMs = 2000) =>
      new Promise((resolve, reject) => {
        client.check(service, { deadline: new Date(Date.now() + timeoutMs) }, (err, res) => {
          if (err) reject(err);
          else resolve(res ?? 'UNKNOWN');
        });
      }),
    close: () => client.close(),
  };
}
