/**
 * CloudFormation's side of a custom resource, for tests: the request
 * fixtures in test/events/cloudformation (cloned per use), and a local HTTP
 * server standing in for the presigned S3 ResponseURL that records every PUT
 * (headers and raw body) and can be told to answer the next requests with an
 * error status first.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import type { CustomResourceResponse } from '../../functions/shared/custom-resource';

const EVENTS = path.join(__dirname, '..', 'events', 'cloudformation');

/** A fresh copy of test/events/cloudformation/<name>.json. */
export function cloudFormationEvent<T extends CloudFormationCustomResourceEvent = CloudFormationCustomResourceEvent>(name: string): T {
  return structuredClone(JSON.parse(readFileSync(path.join(EVENTS, `${name}.json`), 'utf8')) as T);
}

export interface RecordedPut {
  method: string;
  /** Path and query, as requested. */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The status this server answered. */
  answered: number;
}

export interface ResponseServer {
  /** A URL shaped like a presigned one; each call gives a distinct path. */
  url(name?: string): string;
  /** Every request received, in order (including those answered with an error). */
  readonly requests: RecordedPut[];
  /** The parsed bodies of the requests answered 200 for `url` (by path). */
  responsesFor(url: string): CustomResourceResponse[];
  /** Answers the next `count` requests with `status` (e.g. 503) before answering 200 again. */
  failNext(count: number, status?: number): void;
  /** Waits until `count` accepted responses exist for `url`. */
  waitFor(url: string, count?: number, timeoutMs?: number): Promise<CustomResourceResponse[]>;
  stop(): Promise<void>;
}

export async function startResponseServer(host = '127.0.0.1'): Promise<ResponseServer> {
  const requests: RecordedPut[] = [];
  let failures: { count: number; status: number } = { count: 0, status: 503 };
  let seq = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let status = 200;
      if (failures.count > 0) {
        failures.count--;
        status = failures.status;
      }
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks), answered: status });
      res.writeHead(status, { 'content-type': 'application/xml' });
      res.end(status === 200 ? '' : '<Error><Code>ServiceUnavailable</Code></Error>');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const pathOf = (url: string): string => {
    const u = new URL(url);
    return u.pathname + u.search;
  };
  const accepted = (url: string): CustomResourceResponse[] =>
    requests
      .filter((r) => r.url === pathOf(url) && r.answered === 200)
      .map((r) => JSON.parse(r.body.toString('utf8')) as CustomResourceResponse);
  return {
    url: (name = 'response') =>
      `http://${host}:${port}/cloudformation-custom-resource-response-useast1/${name}-${++seq}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=not-a-real-signature`,
    requests,
    responsesFor: accepted,
    failNext(count, status = 503) {
      failures = { count, status };
    },
    async waitFor(url, count = 1, timeoutMs = 30_000) {
      const until = Date.now() + timeoutMs;
      while (accepted(url).length < count) {
        if (Date.now() > until) throw new Error(`no ${count} response(s) for ${pathOf(url)} within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return accepted(url);
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Node's global agent keeps connections alive; do not wait for them.
        server.closeAllConnections();
      }),
  };
}
