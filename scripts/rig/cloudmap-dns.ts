/**
 * A DNS view of one Cloud Map namespace held in the emulator: the stand-in for
 * the Route 53 private hosted zone Cloud Map manages. An A query for
 * `<service>.<namespace>` is answered from the service's registered instances
 * (ListInstances, `AWS_INSTANCE_IPV4`), read at query time, with the TTL of the
 * service's DnsConfig and at most 8 records, as Route 53 answers MULTIVALUE
 * (a random subset when there are more). No instances: NXDOMAIN with the
 * namespace's SOA, as Cloud Map deletes an empty record set.
 *
 * SpiceDB resolves it as `dns://HOST:PORT/<service>.<namespace>:<dispatch port>`.
 * All clients reach it from 127.0.0.1, so to count queries per client each
 * client can get its own view (a listener on the client's own loopback
 * address); every view answers the same.
 */
import { isIPv4 } from 'node:net';
import {
  GetNamespaceCommand,
  GetServiceCommand,
  ListInstancesCommand,
  ListServicesCommand,
  type DnsConfig,
  type ServiceDiscoveryClient,
} from '@aws-sdk/client-servicediscovery';
import DNS from 'dns2';
import { freePort } from './net';

/** Route 53 answers a MULTIVALUE query with at most this many healthy records. */
export const MULTIVALUE_MAX_RECORDS = 8;

export type DnsRcode = 'NOERROR' | 'NXDOMAIN' | 'SERVFAIL';

export interface DnsAnswer {
  rcode: DnsRcode;
  /** IPv4 addresses in the answer (empty for NXDOMAIN and for NODATA). */
  addresses: string[];
  /** TTL of the A records, from the Cloud Map service's DnsConfig. */
  ttlSeconds: number;
  /** How many instances the service holds (can exceed the 8 answered). */
  instanceCount: number;
}

/** One query the server answered. */
export interface DnsQuery {
  /** Epoch ms when it arrived. */
  at: number;
  /** Which view (listener host) it came to: one per client when views are used. */
  view: string;
  name: string;
  type: string;
  rcode: DnsRcode;
  addresses: string[];
}

export interface CloudMapDnsOptions {
  serviceDiscovery: ServiceDiscoveryClient;
  /** The Cloud Map private DNS namespace to serve. */
  namespaceId: string;
  /** Address of the main listener (default 127.0.0.1). */
  host?: string;
  port?: number;
}

export interface CloudMapDns {
  host: string;
  port: number;
  /** `host:port` of the main listener. */
  endpoint: string;
  namespaceName: string;
  /** A further listener on `host` (a client's own loopback address); returns its `host:port`. */
  addView(host: string): Promise<string>;
  removeView(host: string): Promise<void>;
  /** SpiceDB's `--dispatch-upstream-addr` for `name` through the view on `viewHost` (default: the main listener). */
  upstreamAddr(name: string, port: number, viewHost?: string): string;
  /** What an A query for `name` gets right now. */
  answer(name: string): Promise<DnsAnswer>;
  /** The queries answered so far (the last 20,000), oldest first. */
  queries(filter?: { view?: string; since?: number; type?: string }): DnsQuery[];
  /** Number of queries per view. */
  queryCounts(): Record<string, number>;
  stop(): Promise<void>;
}

interface ServiceInfo {
  id: string;
  ttlSeconds: number;
  routing: string;
}

const TYPE_NAME: Record<number, string> = Object.fromEntries(Object.entries(DNS.Packet.TYPE).map(([k, v]) => [v, k]));
const MAX_LOG = 20_000;

/** Starts the DNS view; resolves once the main listener is bound. */
export async function startCloudMapDns(opts: CloudMapDnsOptions): Promise<CloudMapDns> {
  const sd = opts.serviceDiscovery;
  const host = opts.host ?? '127.0.0.1';
  const ns = await sd.send(new GetNamespaceCommand({ Id: opts.namespaceId }));
  const namespaceName = (ns.Namespace?.Name ?? '').toLowerCase();
  if (!namespaceName) throw new Error(`Cloud Map namespace ${opts.namespaceId} has no name`);
  const soaTtl = ns.Namespace?.Properties?.DnsProperties?.SOA?.TTL ?? 15;

  // Services rarely change, their TTL may: a name is looked up again after a few seconds.
  const services = new Map<string, { info: ServiceInfo | undefined; readAt: number }>();
  const readService = async (label: string): Promise<ServiceInfo | undefined> => {
    let token: string | undefined;
    do {
      const page = await sd.send(new ListServicesCommand({ NextToken: token, Filters: [{ Name: 'NAMESPACE_ID', Values: [opts.namespaceId], Condition: 'EQ' }] }));
      for (const summary of page.Services ?? []) {
        if ((summary.Name ?? '').toLowerCase() !== label || !summary.Id) continue;
        // ListServices' summaries carry no namespace (and moto ignores the filter): ask.
        const { Service: svc } = await sd.send(new GetServiceCommand({ Id: summary.Id }));
        if (svc?.NamespaceId === opts.namespaceId) return serviceInfo(summary.Id, svc.DnsConfig);
      }
      token = page.NextToken;
    } while (token);
    return undefined;
  };
  const service = async (label: string): Promise<ServiceInfo | undefined> => {
    const cached = services.get(label);
    if (cached && Date.now() - cached.readAt < 3000) return cached.info;
    const info = await readService(label);
    services.set(label, { info, readAt: Date.now() });
    return info;
  };

  const answer = async (rawName: string): Promise<DnsAnswer> => {
    const name = rawName.toLowerCase().replace(/\.$/, '');
    const suffix = `.${namespaceName}`;
    const label = name.endsWith(suffix) ? name.slice(0, -suffix.length) : undefined;
    const svc = label && !label.includes('.') ? await service(label) : undefined;
    if (!svc) return { rcode: 'NXDOMAIN', addresses: [], ttlSeconds: soaTtl, instanceCount: 0 };
    // Cloud Map keeps one record per instance id; moto may list a re-registered id twice.
    const byId = new Map<string, string>();
    let token: string | undefined;
    do {
      const page = await sd.send(new ListInstancesCommand({ ServiceId: svc.id, NextToken: token }));
      for (const i of page.Instances ?? []) {
        const ip = i.Attributes?.AWS_INSTANCE_IPV4;
        if (i.Id && ip && isIPv4(ip)) byId.set(i.Id, ip);
      }
      token = page.NextToken;
    } while (token);
    const all = [...new Set(byId.values())];
    if (all.length === 0) return { rcode: 'NXDOMAIN', addresses: [], ttlSeconds: soaTtl, instanceCount: 0 };
    const limit = svc.routing === 'WEIGHTED' ? 1 : MULTIVALUE_MAX_RECORDS;
    return { rcode: 'NOERROR', addresses: shuffle(all).slice(0, limit), ttlSeconds: svc.ttlSeconds, instanceCount: all.length };
  };

  const log: DnsQuery[] = [];
  const record = (q: DnsQuery): void => {
    log.push(q);
    if (log.length > MAX_LOG) log.splice(0, log.length - MAX_LOG);
  };

  const handler =
    (view: string): DNS.DnsHandler =>
    (request, send) => {
      void (async () => {
        const response = DNS.Packet.createResponseFromRequest(request);
        response.header.aa = 1;
        const question = request.questions[0];
        if (!question) {
          response.header.rcode = DNS.Packet.RCODE.FORMERR;
          await send(response);
          return;
        }
        const type = TYPE_NAME[question.type] ?? String(question.type);
        let result: DnsAnswer;
        try {
          result = await answer(question.name);
        } catch {
          result = { rcode: 'SERVFAIL', addresses: [], ttlSeconds: 0, instanceCount: 0 };
        }
        // A name that has A records answers other types with NODATA (NOERROR, no records).
        const addresses = question.type === DNS.Packet.TYPE.A ? result.addresses : [];
        response.header.rcode = DNS.Packet.RCODE[result.rcode];
        for (const address of addresses) {
          response.answers.push(DNS.Packet.createResourceFromQuestion(question, { type: DNS.Packet.TYPE.A, class: DNS.Packet.CLASS.IN, ttl: result.ttlSeconds, address }));
        }
        if (addresses.length === 0 && result.rcode !== 'SERVFAIL') {
          // Negative answers carry the zone's SOA; its minimum is the negative-caching TTL.
          response.authorities.push(DNS.Packet.createResourceFromQuestion(question, {
            name: namespaceName,
            type: DNS.Packet.TYPE.SOA,
            class: DNS.Packet.CLASS.IN,
            ttl: soaTtl,
            primary: 'ns-1536.awsdns-00.co.uk',
            admin: 'awsdns-hostmaster.amazon.com',
            serial: 1,
            refresh: 7200,
            retry: 900,
            expiration: 1209600,
            minimum: soaTtl,
          }));
        }
        record({ at: Date.now(), view, name: question.name.toLowerCase(), type, rcode: result.rcode, addresses });
        await send(response);
      })().catch(() => undefined);
    };

  const listeners = new Map<string, DNS.DnsServer>();
  const listen = async (viewHost: string, port?: number): Promise<number> => {
    // UDP and TCP on the same port (Go's resolver retries over TCP when truncated).
    for (let attempt = 0; ; attempt++) {
      const p = port ?? (await freePort(viewHost));
      const server = DNS.createServer({ udp: true, tcp: true, handle: handler(viewHost) });
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ udp: { port: p, address: viewHost }, tcp: { port: p, address: viewHost } }).then(() => resolve(), reject);
        });
        server.on('error', () => undefined);
        listeners.set(viewHost, server);
        return p;
      } catch (err) {
        await server.close().catch(() => undefined);
        if (port !== undefined || attempt >= 5) throw err;
      }
    }
  };

  const port = await listen(host, opts.port);
  const ports = new Map<string, number>([[host, port]]);
  return {
    host,
    port,
    endpoint: `${host}:${port}`,
    namespaceName,
    async addView(viewHost) {
      const existing = ports.get(viewHost);
      if (existing !== undefined) return `${viewHost}:${existing}`;
      const p = await listen(viewHost);
      ports.set(viewHost, p);
      return `${viewHost}:${p}`;
    },
    async removeView(viewHost) {
      if (viewHost === host) return;
      const server = listeners.get(viewHost);
      listeners.delete(viewHost);
      ports.delete(viewHost);
      await server?.close();
    },
    upstreamAddr(name, dispatchPort, viewHost = host) {
      const p = ports.get(viewHost);
      if (p === undefined) throw new Error(`no DNS view on ${viewHost}: call addView first`);
      return `dns://${viewHost}:${p}/${name}:${dispatchPort}`;
    },
    answer,
    queries(filter = {}) {
      return log.filter((q) => (filter.view === undefined || q.view === filter.view) && (filter.since === undefined || q.at >= filter.since) && (filter.type === undefined || q.type === filter.type));
    },
    queryCounts() {
      const counts: Record<string, number> = {};
      for (const q of log) counts[q.view] = (counts[q.view] ?? 0) + 1;
      return counts;
    },
    async stop() {
      const all = [...listeners.values()];
      listeners.clear();
      await Promise.all(all.map((s) => s.close().catch(() => undefined)));
    },
  };
}

function serviceInfo(id: string, dns: DnsConfig | undefined): ServiceInfo {
  const a = dns?.DnsRecords?.find((r) => r.Type === 'A');
  return { id, ttlSeconds: a?.TTL ?? 60, routing: dns?.RoutingPolicy ?? 'MULTIVALUE' };
}

function shuffle<T>(items: T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}
