/**
 * The seed's zed walkthrough against the rig's SpiceDB, typed at script speed
 * right after the server starts. Reads that must see the writes just made use
 * --consistency-full (the default consistency may read a revision up to 5 s
 * old; see field-facts.md).
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loopbackHost } from '../../scripts/rig/net';
import { startSpiceDB, type SpiceDB } from '../../scripts/rig/spicedb';
import { Cleanup, POST_SCHEMA, randomKey, uniqueName, Zed } from '../helpers/rig';

const cleanup = new Cleanup();
const key = randomKey();
let spicedb: SpiceDB;
let zed: Zed;

beforeAll(async () => {
  zed = cleanup.add(new Zed());
  spicedb = cleanup.add(await startSpiceDB({ host: loopbackHost(), presharedKey: key }));
});
afterAll(() => cleanup.runAll());

describe('the seed zed walkthrough', () => {
  it('writes the schema and relationships, then checks and looks up subjects', async () => {
    await zed.ok(['context', 'set', 'rig', spicedb.grpcEndpoint, key, '--insecure']);
    const schemaFile = path.join(tmpdir(), `${uniqueName('schema')}.zed`);
    writeFileSync(schemaFile, POST_SCHEMA);
    cleanup.defer(() => writeFileSync(schemaFile, ''));
    await zed.ok(['schema', 'write', schemaFile]);
    await zed.ok(['relationship', 'create', 'post:1', 'writer', 'user:sid']);
    await zed.ok(['relationship', 'create', 'post:1', 'reader', 'user:lena']);

    const check = await zed.ok(['permission', 'check', 'post:1', 'read', 'user:lena', '--consistency-full']);
    expect(check.trim()).toBe('true');
    const denied = await zed.run(['permission', 'check', 'post:1', 'write', 'user:lena', '--consistency-full']);
    expect(denied.stdout.trim()).toBe('false');

    const subjects = await zed.ok(['permission', 'lookup-subjects', 'post:1', 'read', 'user', '--consistency-full']);
    expect(subjects.trim().split('\n').map((l) => l.trim()).sort()).toEqual(['user:lena', 'user:sid']);
  });

  it('reads the schema back as written', async () => {
    const out = await zed.ok(['schema', 'read']);
    expect(out).toContain('permission read = reader + writer');
  });
});
