/**
 * The DNS view of Cloud Map (the stand-in for the private hosted zone Cloud
 * Map manages) answers from the emulator's registered instances as Route 53
 * would: A records with the service's TTL, at most 8 for MULTIVALUE,
 * NXDOMAIN when no instance is registered, NODATA for other types, and counts
 * queries per view.
 */
import { Resolver } from 'node:dns/promises';
import { EC2Client } from '@aws-sdk/client-ec2';
import { ECSClient } from '@aws-sdk/client-ecs';
import { DeregisterInstanceCommand, RegisterInstanceCommand, ServiceDiscoveryClient } from '@aws-sdk/client-servicediscovery';
import { MULTIVALUE_MAX_RECORDS, startCloudMapDns, type CloudMapDns } from '../../scripts/rig/cloudmap-dns';
import { provisionDiscovery, type DiscoveryAws } from '../../scripts/rig/discovery-aws';
import { startMoto, AWS_REGION } from '../../scripts/rig/moto';
import { loopbackHost } from '../../scripts/rig/net';
import { Cleanup, uniqueName } from '../helpers/rig';

const cleanup = new Cleanup();
let sd: ServiceDiscoveryClient;
let aws: DiscoveryAws;
let dns: CloudMapDns;

const resolverFor = (endpoint: string): Resolver => {
  const r = new Resolver({ timeout: 2000, tries: 1 });
  r.setServers([endpoint]);
  return r;
};
const register = (id: string, ip: string) =>
  sd.send(new RegisterInstanceCommand({ ServiceId: aws.cloudMapServiceId, InstanceId: id, Attributes: { AWS_INSTANCE_IPV4: ip, AWS_INSTANCE_PORT: '50053' } }));

beforeAll(async () => {
  const moto = cleanup.add(await startMoto());
  const config = { endpoint: moto.endpoint, region: AWS_REGION, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
  sd = new ServiceDiscoveryClient({ ...config, disableHostPrefix: true });
  aws = await provisionDiscovery({ ec2: new EC2Client(config), ecs: new ECSClient(config), serviceDiscovery: sd }, { name: uniqueName('dns').replaceAll('_', '-'), dnsTtlSeconds: 7 });
  dns = cleanup.add(await startCloudMapDns({ serviceDiscovery: sd, namespaceId: aws.namespaceId }));
});
afterAll(() => cleanup.runAll());

describe('the DNS view of a Cloud Map service', () => {
  it('answers NXDOMAIN while no instance is registered', async () => {
    await expect(resolverFor(dns.endpoint).resolve4(aws.dnsName)).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it("answers the registered instances' AWS_INSTANCE_IPV4 with the service's TTL, read at query time", async () => {
    await register('task-a', '127.0.10.1');
    await register('task-b', '127.0.10.2');
    const answer = await resolverFor(dns.endpoint).resolve4(aws.dnsName, { ttl: true });
    expect(answer.map((a) => a.address).sort()).toEqual(['127.0.10.1', '127.0.10.2']);
    expect(answer.every((a) => a.ttl === 7)).toBe(true);

    await sd.send(new DeregisterInstanceCommand({ ServiceId: aws.cloudMapServiceId, InstanceId: 'task-a' }));
    expect(await resolverFor(dns.endpoint).resolve4(aws.dnsName)).toEqual(['127.0.10.2']);
  });

  it('answers at most 8 records, like a MULTIVALUE routing policy', async () => {
    for (let i = 0; i < 12; i++) await register(`task-m${i}`, `127.0.11.${i + 1}`);
    const answer = await dns.answer(aws.dnsName);
    expect(answer.instanceCount).toBe(13);
    expect(answer.addresses).toHaveLength(MULTIVALUE_MAX_RECORDS);
    expect(await resolverFor(dns.endpoint).resolve4(aws.dnsName)).toHaveLength(MULTIVALUE_MAX_RECORDS);
  });

  it('answers other record types of the name with no data, and unknown names with NXDOMAIN', async () => {
    await expect(resolverFor(dns.endpoint).resolve6(aws.dnsName)).rejects.toMatchObject({ code: 'ENODATA' });
    await expect(resolverFor(dns.endpoint).resolve4(`other.${aws.namespaceName}`)).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await expect(resolverFor(dns.endpoint).resolve4('spicedb.example.com')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it('counts queries per view, each view on its own address', async () => {
    const host = loopbackHost();
    const view = await dns.addView(host);
    expect(view.startsWith(`${host}:`)).toBe(true);
    expect(dns.upstreamAddr(aws.dnsName, 50053, host)).toBe(`dns://${view}/${aws.dnsName}:50053`);
    await resolverFor(view).resolve4(aws.dnsName);
    await resolverFor(view).resolve4(aws.dnsName);
    expect(dns.queryCounts()[host]).toBe(2);
    expect(dns.queries({ view: host, type: 'A' }).every((q) => q.rcode === 'NOERROR' && q.addresses.length > 0)).toBe(true);
    await dns.removeView(host);
    await expect(resolverFor(view).resolve4(aws.dnsName)).rejects.toBeDefined();
  });
});
