/**
 * The validation-file syntax end to end: caveats with context, the public
 * wildcard, subject sets and expirations are stored as written (read back
 * through the API), and assertions mean what `zed validate` makes of the
 * same file (AssertTrue/AssertFalse/AssertCaveated, `with` context). Then
 * TLS: SpiceDBTls with a custom CA, against SpiceDB serving TLS.
 */
import { v1 } from '@authzed/authzed-node';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { handler } from '../../functions/schema-resource/handler';
import { closeSpiceDBClients, healthCredentials, waitUntilServing } from '../../functions/shared/spicedb-client';
import { freePort, loopbackHost } from '../../scripts/rig/net';
import { startSpiceDB } from '../../scripts/rig/spicedb';
import { Zed } from '../helpers/rig';
import { invoke, relationshipsOf, request, spawnSpiceDB, startSchemaRig, type Props, type SchemaRig } from './schema-resource-rig';

let rig: SchemaRig;
let zed: Zed;
let work: string;

beforeAll(async () => {
  rig = await startSchemaRig();
  zed = rig.cleanup.add(new Zed());
  work = mkdtempSync(path.join(tmpdir(), 'schema-syntax-'));
  rig.cleanup.defer(() => rmSync(work, { recursive: true, force: true }));
});
afterAll(async () => {
  closeSpiceDBClients();
  await rig.cleanup.runAll();
});

const SCHEMA = `use expiration

caveat has_clearance(level int, required int) {
  level >= required
}

definition user {}

definition team {
  relation member: user
}

definition doc {
  relation viewer: user | user:* | team#member | user with has_clearance | user with expiration
  permission view = viewer
}
`;

const SEED = [
  'doc:public#viewer@user:*',
  'doc:teamdoc#viewer@team:eng#member',
  'team:eng#member@user:ann',
  'doc:secret#viewer@user:bob[has_clearance:{"required":3}]',
  'doc:temp#viewer@user:tim[expiration:2099-01-02T03:04:05Z]',
];

const ASSERTIONS = {
  AssertTrue: ['doc:public#view@user:anyone', 'doc:teamdoc#view@user:ann', 'doc:secret#view@user:bob with {"level": 5}', 'doc:temp#view@user:tim'],
  AssertFalse: ['doc:secret#view@user:bob with {"level": 1}', 'doc:teamdoc#view@user:zoe'],
  AssertCaveated: ['doc:secret#view@user:bob'],
};

/** `zed validate` of the same schema, relationships and assertions, as a validation file. */
async function zedValidate(assertions: Record<string, string[]>): Promise<{ code: number | null; stdout: string }> {
  const file = path.join(work, `validate-${Date.now()}.yaml`);
  const lower = Object.fromEntries(Object.entries(assertions).map(([k, v]) => [k[0]?.toLowerCase() + k.slice(1), v]));
  writeFileSync(file, stringify({ schema: SCHEMA, relationships: SEED.join('\n'), assertions: lower }));
  return zed.run(['validate', file]);
}

describe('the validation-file syntax', () => {
  let props: Props;
  let client: v1.ZedPromiseClientInterface;

  beforeAll(async () => {
    const spicedb = rig.cleanup.add(await startSpiceDB({ host: loopbackHost(), presharedKey: rig.presharedKey }));
    const c = v1.NewClient(rig.presharedKey, spicedb.grpcEndpoint, v1.ClientSecurity.INSECURE_PLAINTEXT_CREDENTIALS);
    rig.cleanup.defer(() => c.close());
    client = c.promises;
    props = rig.props({ SpiceDBEndpoint: spicedb.grpcEndpoint, Schema: SCHEMA, Relationships: SEED, Assertions: ASSERTIONS });
  });

  it('passes zed validate with these assertions (the reference for what they mean)', async () => {
    const res = await zedValidate(ASSERTIONS);
    expect(res.stdout).toContain('Success!');
    expect(res.code).toBe(0);
  });

  it('seeds caveats, wildcards, subject sets and expirations as written, and the same assertions pass', async () => {
    const res = await invoke(rig, handler, request(rig, 'Create', props));
    expect(res).toMatchObject({ Status: 'SUCCESS', Data: { RelationshipsTouched: '5', AssertionsChecked: '7' } });
    const stored = [...(await relationshipsOf(client, 'doc')), ...(await relationshipsOf(client, 'team'))].sort();
    expect(stored).toEqual([...SEED].sort());
  });

  it.each([
    ['AssertTrue', 'doc:secret#view@user:bob', 'expected HAS_PERMISSION, got CONDITIONAL_PERMISSION (missing caveat context: level)'],
    ['AssertCaveated', 'doc:public#view@user:anyone', 'expected CONDITIONAL_PERMISSION, got HAS_PERMISSION'],
    ['AssertFalse', 'doc:secret#view@user:bob with {"level": 3}', 'expected NO_PERMISSION, got HAS_PERMISSION'],
  ])('fails %s %s as zed validate does', async (kind, text, got) => {
    const assertions = { [kind]: [text] };
    const reference = await zedValidate(assertions);
    expect(reference.code).not.toBe(0);
    const res = await invoke(rig, handler, request(rig, 'Create', { ...props, Assertions: assertions }));
    expect(res.Status).toBe('FAILED');
    expect(res.Reason).toBe(`1 of 1 assertion failed: Assertions.${kind}[0] ${JSON.stringify(text)}: ${got}`);
  });
});

describe('TLS', () => {
  let endpoint = '';
  let caPem = '';

  beforeAll(async () => {
    // A private CA and a server certificate for the loopback address.
    const host = loopbackHost();
    const port = await freePort(host);
    endpoint = `${host}:${port}`;
    const f = (name: string) => path.join(work, name);
    const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=test CA', '-keyout', f('ca.key'), '-out', f('ca.pem'));
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${host}`, '-keyout', f('server.key'), '-out', f('server.csr'));
    writeFileSync(f('san.ext'), `subjectAltName=IP:${host}\n`);
    openssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', f('san.ext'), '-out', f('server.pem'));
    caPem = readFileSync(f('ca.pem'), 'utf8');
    const proc = await spawnSpiceDB({
      host,
      port,
      presharedKey: rig.presharedKey,
      extraArgs: [`--grpc-tls-cert-path=${f('server.pem')}`, `--grpc-tls-key-path=${f('server.key')}`],
    });
    rig.cleanup.defer(() => proc.stop('SIGTERM', 10_000));
    await waitUntilServing(endpoint, healthCredentials({ tls: true, caPem }), Date.now() + 60_000);
  }, 120_000);

  it('writes the schema over TLS verified against SpiceDBCaPem', async () => {
    const res = await invoke(rig, handler, request(rig, 'Create', rig.props({ SpiceDBEndpoint: endpoint, SpiceDBTls: 'true', SpiceDBCaPem: caPem, Relationships: ['post:t1#writer@user:sid'] })));
    expect(res).toMatchObject({ Status: 'SUCCESS', Data: { RelationshipsTouched: '1' } });
  });

  it('refuses a server whose certificate the system roots do not trust', async () => {
    const res = await invoke(rig, handler, request(rig, 'Create', rig.props({ SpiceDBEndpoint: endpoint, SpiceDBTls: 'true', Timeouts: { ServingSeconds: '3' } })), 20_000);
    expect(res.Status).toBe('FAILED');
    expect(res.Reason).toMatch(/did not report SERVING within .*unable to verify the first certificate/);
  });

  it('does not talk plaintext to a TLS server', async () => {
    const res = await invoke(rig, handler, request(rig, 'Create', rig.props({ SpiceDBEndpoint: endpoint, Timeouts: { ServingSeconds: '3' } })), 20_000);
    expect(res.Status).toBe('FAILED');
    expect(res.Reason).toMatch(/did not report SERVING/);
  });
});
