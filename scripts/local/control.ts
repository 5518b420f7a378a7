/**
 * The running local stack's control channel: a JSON-over-HTTP endpoint on
 * loopback, written to $CACHE/local-stack/control.json, so that `status`,
 * `scale`, `kill`, `update`, `invoke` and `down` typed in another terminal
 * reach the stack that `up` started.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export type Command = 'status' | 'scale' | 'kill' | 'update' | 'invoke' | 'down';
export type CommandHandler = (command: Command, args: Record<string, unknown>) => Promise<unknown>;

export const controlFile = (stateDir: string): string => path.join(stateDir, 'control.json');

export async function serveControl(stateDir: string, handle: CommandHandler): Promise<{ url: string; stop(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const command = (req.url ?? '/').slice(1) as Command;
      let args: Record<string, unknown>;
      try {
        args = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>) : {};
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'body must be JSON' }));
        return;
      }
      handle(command, args).then(
        (result) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result ?? null)),
        (err: unknown) =>
          res
            .writeHead(400, { 'content-type': 'application/json' })
            .end(JSON.stringify({ error: err instanceof Error ? err.message : String(err) })),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(controlFile(stateDir), JSON.stringify({ url, pid: process.pid }));
  return {
    url,
    stop: () =>
      new Promise((r) => {
        rmSync(controlFile(stateDir), { force: true });
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Sends a command to the stack running with this state folder. */
export async function sendCommand(stateDir: string, command: Command, args: Record<string, unknown> = {}): Promise<unknown> {
  const file = controlFile(stateDir);
  if (!existsSync(file)) throw new Error(`no local stack is running (no ${file}): start one with \`bash scripts/local-stack.sh\``);
  const { url } = JSON.parse(readFileSync(file, 'utf8')) as { url: string };
  let res: Response;
  try {
    res = await fetch(`${url}/${command}`, { method: 'POST', body: JSON.stringify(args) });
  } catch {
    throw new Error(`the local stack at ${url} does not answer (stale ${file}?)`);
  }
  const body = (await res.json()) as unknown;
  if (!res.ok) throw new Error((body as { error?: string }).error ?? `HTTP ${res.status}`);
  return body;
}
