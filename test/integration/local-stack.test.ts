/**
 * The local stack, brought up as `bash scripts/local-stack.sh` does (same
 * code, a private state folder and a free endpoint port): the seed's zed
 * walkthrough, the README's commands as printed, a rolled-back schema
 * update, and a scale-out and graceful scale-in under continuous checks.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { v1 } from '@authzed/authzed-node';
import { ROOT } from '../../scripts/rig/components';
import { startCheckLoad } from '../../scripts/rig/load';
import { makeWorkDir } from '../../scripts/rig/workdir';
import { LOCAL_TIMINGS, walkthrough } from '../../scripts/local-stack';
import { LocalStack } from '../../scripts/local/stack';
import { DEFAULT_STACK_FILE, readStackFile } from '../../scripts/local/stack-file';
import { Cleanup, POST_SCHEMA, Zed } from '../helpers/rig';

const cleanup = new Cleanup();
let stack: LocalStack;
let key: string;
const log: string[] = [];

beforeAll(async () => {
  const state = makeWorkDir('local-stack');
  cleanup.defer(() => state.remove());
  stack = new LocalStack({
    nodes: 3,
    schema: readStackFile(DEFAULT_STACK_FILE),
    stateDir: state.dir,
    endpointPort: 0,
    timings: LOCAL_TIMINGS,
    reconcileSeconds: 10,
    log: (line) => log.push(line),
  });
  cleanup.add(stack);
  await stack.start();
  key = readFileSync(stack.presharedKeyFile, 'utf8');
}, 300_000);
afterAll(() => cleanup.runAll());

const full = v1.Consistency.create({ requirement: { oneofKind: 'fullyConsistent', fullyConsistent: true } });
const checkRequest = (permission: string, user: string) =>
  v1.CheckPermissionRequest.create({
    resource: v1.ObjectReference.create({ objectType: 'post', objectId: '1' }),
    permission,
    subject: v1.SubjectReference.create({ object: v1.ObjectReference.create({ objectType: 'user', objectId: user }) }),
    consistency: full,
  });

describe('the local stack', () => {
  it('comes up with every task registered in Cloud Map and answered by the DNS view', async () => {
    const status = await stack.status();
    const hosts = status.nodes.map((n) => n.host).sort();
    expect(status.nodes.map((n) => n.health)).toEqual(['SERVING', 'SERVING', 'SERVING']);
    expect(status.cloudMapInstances.map((i) => i.ipv4).sort()).toEqual(hosts);
    expect([...status.dns.addresses].sort()).toEqual(hosts);
    expect(status.schema.physicalResourceId).toBeTruthy();
  });

  // The stack's seed already holds post:1's relationships, so the walkthrough writes post:2.
  it('passes the seed zed walkthrough through its endpoint', async () => {
    const zed = cleanup.add(new Zed());
    await zed.ok(['context', 'set', 'local', stack.balancer.endpoint, key, '--insecure']);
    const schemaFile = path.join(stack.stateDir, 'walkthrough.zed');
    writeFileSync(schemaFile, POST_SCHEMA);
    await zed.ok(['schema', 'write', schemaFile]);
    await zed.ok(['relationship', 'create', 'post:2', 'writer', 'user:sid']);
    await zed.ok(['relationship', 'create', 'post:2', 'reader', 'user:lena']);
    expect((await zed.ok(['permission', 'check', 'post:2', 'read', 'user:lena', '--consistency-full'])).trim()).toBe('true');
    const subjects = await zed.ok(['permission', 'lookup-subjects', 'post:2', 'read', 'user', '--consistency-full']);
    expect(subjects.trim().split('\n').map((l) => l.trim()).sort()).toEqual(['user:lena', 'user:sid']);
  });

  it('answers the walkthrough commands exactly as the README prints them', async () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const block = /<!-- local-walkthrough -->\s*```sh\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toBeDefined();
    const commands = (block as string).split('\n').filter((l) => l.startsWith('zed '));
    // The stack prints the same commands as the README (for its default endpoint and key file).
    expect(commands).toEqual(walkthrough('127.0.0.1:50051', '.cache/local-stack/preshared-key'));
    const zed = cleanup.add(new Zed());
    const outputs: string[] = [];
    for (const command of commands) {
      // Only this stack's endpoint and key file differ from the README's defaults.
      const line = command.replace('127.0.0.1:50051', stack.balancer.endpoint).replace('.cache/local-stack/preshared-key', stack.presharedKeyFile);
      outputs.push(await zed.shell(line));
    }
    expect(outputs[1]).toContain('permission read = reader + writer');
    expect(outputs[3]?.trim()).toBe('true');
    expect(outputs[4]?.trim().split('\n').map((l) => l.trim()).sort()).toEqual(['user:lena', 'user:maria', 'user:sid']);
  });

  it('rolls back a schema update whose assertion fails, and the old schema still answers', async () => {
    const bad = {
      ...readStackFile(DEFAULT_STACK_FILE),
      Assertions: { AssertTrue: ['post:1#write@user:lena'] },
    };
    const result = await stack.schemaResource.update(stack.schemaProperties(bad));
    expect(result.response.Status).toBe('FAILED');
    expect(result.response.Reason).toContain('post:1#write@user:lena');
    expect(result.rolledBack).toBe(true);
    expect(result.rollback?.Status).toBe('SUCCESS');
    expect(stack.schemaResource.events.map((e) => e.status)).toEqual(
      expect.arrayContaining(['UPDATE_FAILED', 'UPDATE_ROLLBACK_IN_PROGRESS', 'UPDATE_ROLLBACK_COMPLETE']),
    );
    const client = v1.NewClient(key, stack.balancer.endpoint, v1.ClientSecurity.INSECURE_PLAINTEXT_CREDENTIALS);
    cleanup.defer(() => client.close());
    const write = await client.promises.checkPermission(checkRequest('write', 'sid'));
    expect(write.permissionship).toBe(v1.CheckPermissionResponse_Permissionship.HAS_PERMISSION);
    const denied = await client.promises.checkPermission(checkRequest('write', 'lena'));
    expect(denied.permissionship).toBe(v1.CheckPermissionResponse_Permissionship.NO_PERMISSION);
  });

  it('scales to 5 then to 2 under continuous checks with zero failed requests and no stalled second', async () => {
    const load = startCheckLoad({
      presharedKey: key,
      endpoints: () => [stack.balancer.endpoint],
      nextCheck: () => checkRequest('read', 'lena'),
      clients: 4,
      ratePerClient: 20,
      maxDurationMs: 240_000,
    });
    const from = Date.now();
    await stack.scale(5);
    expect((await stack.status()).cloudMapInstances).toHaveLength(5);
    await stack.scale(2);
    const to = Date.now();
    await load.stop();
    const report = load.report({ fromMs: from, toMs: to });
    console.log(`local stack scale 3->5->2 under load: ${JSON.stringify({ ...report, perSecond: undefined, stalledSecondList: undefined })}`);
    const status = await stack.status();
    expect(status.nodes).toHaveLength(2);
    expect(status.cloudMapInstances.map((i) => i.ipv4).sort()).toEqual(status.nodes.map((n) => n.host).sort());
    expect(report.completed).toBeGreaterThan(0);
    expect(report.failed).toBe(0);
    expect(report.stalledSeconds).toBe(0);
  }, 300_000);
});
