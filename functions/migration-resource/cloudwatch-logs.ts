/**
 * A minimal CloudWatch Logs client (JSON 1.1 protocol, SigV4) for the one
 * read this function needs: the last lines of the migration container's log
 * stream. It borrows the credential chain, region and hash of an SDK client,
 * so it authenticates exactly as the SDK does, and honours AWS_ENDPOINT_URL
 * (the emulator in tests).
 *
 * Why not @aws-sdk/client-cloudwatch-logs: it is not a dependency of this
 * project yet. `CloudWatchLogsJson` is the seam to replace with it
 * (GetLogEventsCommand) once it is; `LogTail` stays as is.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentityProvider, ChecksumConstructor, HashConstructor, Provider } from '@smithy/types';

/** What is borrowed from an SDK client's resolved config (e.g. `ecsClient().config`). */
export interface SigningConfig {
  credentials: AwsCredentialIdentityProvider;
  region: Provider<string>;
  sha256: ChecksumConstructor | HashConstructor;
}

/** An error answered by CloudWatch Logs (`name` is its `__type`, e.g. ResourceNotFoundException). */
export class CloudWatchLogsError extends Error {
  readonly status: number;
  constructor(name: string, message: string, status: number) {
    super(message);
    this.name = name;
    this.status = status;
  }
}

const dnsSuffix = (region: string): string => (region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com');

/** Signed JSON calls to CloudWatch Logs (`Logs_20140328.<Operation>`). */
export class CloudWatchLogsJson {
  constructor(
    private readonly config: SigningConfig,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  async call<T>(operation: string, input: Record<string, unknown>, timeoutMs = 10_000): Promise<T> {
    const region = await this.config.region();
    const endpoint = new URL(this.env.AWS_ENDPOINT_URL_CLOUDWATCH_LOGS ?? this.env.AWS_ENDPOINT_URL ?? `https://logs.${region}.${dnsSuffix(region)}`);
    const body = JSON.stringify(input);
    const signer = new SignatureV4({ service: 'logs', region, credentials: this.config.credentials, sha256: this.config.sha256 });
    const signed = await signer.sign({
      method: 'POST',
      protocol: endpoint.protocol,
      hostname: endpoint.hostname,
      ...(endpoint.port ? { port: Number(endpoint.port) } : {}),
      path: endpoint.pathname || '/',
      query: {},
      headers: {
        host: endpoint.host,
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': `Logs_20140328.${operation}`,
        'content-length': String(Buffer.byteLength(body)),
      },
      body,
    });
    const { status, text } = await post(endpoint, signed.headers, body, timeoutMs);
    const parsed: unknown = text === '' ? {} : JSON.parse(text);
    if (status < 200 || status >= 300) {
      const err = (parsed ?? {}) as { __type?: string; message?: string; Message?: string };
      const name = (err.__type ?? 'CloudWatchLogsError').split('#').pop() as string;
      throw new CloudWatchLogsError(name, err.message ?? err.Message ?? `HTTP ${status}`, status);
    }
    return parsed as T;
  }
}

function post(url: URL, headers: Record<string, string>, body: string, timeoutMs: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
    const req = send(url, { method: 'POST', headers, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`CloudWatch Logs call timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Reads the end of a log stream. */
export interface LogTail {
  /** The last `limit` messages, oldest first; undefined when the stream does not exist. */
  lastMessages(logGroupName: string, logStreamName: string, limit: number): Promise<string[] | undefined>;
}

/** LogTail over CloudWatch Logs GetLogEvents. */
export function cloudWatchLogTail(logs: CloudWatchLogsJson): LogTail {
  return {
    async lastMessages(logGroupName, logStreamName, limit) {
      try {
        const out = await logs.call<{ events?: { message?: string }[] }>('GetLogEvents', {
          logGroupName,
          logStreamName,
          limit,
          startFromHead: false,
        });
        return (out.events ?? []).map((e) => e.message ?? '');
      } catch (err) {
        if (err instanceof CloudWatchLogsError && err.name === 'ResourceNotFoundException') return undefined;
        throw err;
      }
    },
  };
}
