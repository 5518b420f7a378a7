/**
 * The local stand-in for the Network Load Balancer: a TCP proxy on one
 * stable address that spreads connections over the live SpiceDB tasks.
 * Like an NLB target group, a task leaves it when it starts draining (new
 * connections stop; open ones keep flowing until the task stops).
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface TcpBalancer {
  host: string;
  port: number;
  endpoint: string;
  setTargets(targets: string[]): void;
  targets(): string[];
  stop(): Promise<void>;
}

export async function startTcpBalancer(host: string, port: number): Promise<TcpBalancer> {
  let targets: string[] = [];
  let next = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    if (targets.length === 0) {
      client.destroy();
      return;
    }
    const target = targets[next++ % targets.length] as string;
    const sep = target.lastIndexOf(':');
    const upstream = connect({ host: target.slice(0, sep), port: Number(target.slice(sep + 1)) });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    client.pipe(upstream).pipe(client);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  const boundPort = addr && typeof addr === 'object' ? addr.port : port;
  return {
    host,
    port: boundPort,
    endpoint: `${host}:${boundPort}`,
    setTargets(t) {
      targets = [...t];
    },
    targets: () => [...targets],
    stop: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
