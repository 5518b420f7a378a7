/**
 * The ECS endpoint the local stack's functions talk to: every call goes to
 * the emulator unchanged, except DescribeTasks, which is answered through a
 * client that overlays what only this machine knows (each task's loopback
 * "private IP", its health and ECS's version counter; see LocalEcs). The
 * functions' bundles stay unmodified: only AWS_ENDPOINT_URL_ECS differs.
 */
import { DescribeTasksCommand, type DescribeTasksCommandInput, type ECSClient } from '@aws-sdk/client-ecs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

const DESCRIBE_TASKS = 'AmazonEC2ContainerServiceV20141113.DescribeTasks';

/** Back to ECS's JSON wire form: timestamps as epoch seconds, no SDK metadata. */
function serialize(output: object): string {
  return JSON.stringify(output, function (this: Record<string, unknown>, key, value: unknown) {
    const raw = this[key];
    if (raw instanceof Date) return raw.getTime() / 1000;
    return key === '$metadata' ? undefined : value;
  });
}

export async function startEcsProxy(motoEndpoint: string, overlaid: ECSClient): Promise<{ endpoint: string; stop(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const answer = async (): Promise<void> => {
        if (req.headers['x-amz-target'] === DESCRIBE_TASKS) {
          const input = JSON.parse(body.toString('utf8')) as DescribeTasksCommandInput;
          const output = await overlaid.send(new DescribeTasksCommand(input));
          res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' }).end(serialize(output));
          return;
        }
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host') headers[k] = v;
        const upstream = await fetch(`${motoEndpoint}${req.url ?? '/'}`, { method: req.method, headers, body: body.length ? body : undefined });
        const out = Buffer.from(await upstream.arrayBuffer());
        res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' }).end(out);
      };
      answer().catch((err: unknown) => {
        res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ __type: 'ServerException', message: String(err) }));
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
