/**
 * The AWS zed walkthrough of README.md, run as printed, against a real
 * SpiceDB standing in for the stack: the template's ZedContextCommand output
 * (resolved for a quickstart stack whose load balancer name is a loopback
 * address) is what `aws cloudformation describe-stacks` returns, and the key
 * is what `aws secretsmanager get-secret-value` returns. A stand-in `aws`
 * on PATH answers exactly those two calls (with exactly the arguments the
 * docs and the output use) and fails on any other.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { healthChecker } from '../../functions/shared/grpc-health';
import { component, ROOT } from '../../scripts/rig/components';
import { freePort, loopbackHost, waitFor } from '../../scripts/rig/net';
import { ManagedProcess } from '../../scripts/rig/process';
import { loadTemplate } from '../../scripts/rig/template';
import { Evaluator } from '../helpers/cfn';
import { Cleanup, randomKey, Zed } from '../helpers/rig';

const cleanup = new Cleanup();
const SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:PresharedKeySecret-AbCdEfGh1234-XyZ123';
let host: string;
let work: string;
let key: string;
let zedCommand: string;

beforeAll(async () => {
  host = loopbackHost();
  key = randomKey();
  work = mkdtempSync(path.join(tmpdir(), 'spicedb-ecs-walkthrough-'));
  cleanup.defer(() => rmSync(work, { recursive: true, force: true }));

  // SpiceDB on the port the stack's listener has (50051), memory datastore as in the quickstart.
  const proc = new ManagedProcess({
    name: 'spicedb (the stack)',
    command: component('SPICEDB_BIN'),
    args: [
      'serve',
      `--grpc-addr=${host}:50051`,
      `--metrics-addr=${host}:${await freePort(host)}`,
      '--http-enabled=false',
      '--datastore-engine=memory',
      '--telemetry-endpoint=',
      '--skip-release-check',
      '--log-level=warn',
    ],
    env: { ...process.env, SPICEDB_GRPC_PRESHARED_KEY: key },
  });
  cleanup.defer(() => proc.stop());
  const health = healthChecker(`${host}:50051`);
  cleanup.defer(() => health.close());
  await waitFor(async () => (await health.check('', 1000)) === 'SERVING', { what: 'spicedb to serve', timeoutMs: 60_000, abortIf: () => proc.assertRunning() });

  const outputs = new Evaluator(
    loadTemplate(path.join(ROOT, 'template.yaml')),
    { VpcId: 'vpc-0123456789abcdef0', PrivateSubnetIds: 'subnet-0aaaaaaaaaaaaaaa1', ClientCidr: '203.0.113.7/32', Datastore: 'memory', DesiredCount: '1' },
    { 'LoadBalancer.DNSName': host, PresharedKeySecret: SECRET_ARN },
  ).outputs();
  zedCommand = String(outputs.ZedContextCommand);

  // The stand-in AWS CLI.
  const bin = path.join(work, 'bin');
  mkdirSync(bin);
  writeFileSync(path.join(work, 'key'), key);
  writeFileSync(path.join(work, 'zed-command'), zedCommand);
  const describe = `cloudformation describe-stacks --stack-name spicedb-quickstart --query Stacks[0].Outputs[?OutputKey=='ZedContextCommand'].OutputValue --output text`;
  const secret = `secretsmanager get-secret-value --region us-east-1 --secret-id ${SECRET_ARN} --query SecretString --output text`;
  writeFileSync(
    path.join(bin, 'aws'),
    [
      '#!/usr/bin/env bash',
      `if [ "$*" = "${describe}" ]; then cat '${path.join(work, 'zed-command')}'; echo`,
      `elif [ "$*" = "${secret}" ]; then cat '${path.join(work, 'key')}'`,
      'else echo "unexpected: aws $*" >&2; exit 2; fi',
      '',
    ].join('\n'),
  );
  chmodSync(path.join(bin, 'aws'), 0o755);
});

afterAll(() => cleanup.runAll());

describe('the README zed walkthrough against a deployed stack', () => {
  it('creates a context from the ZedContextCommand output and answers the checks as the comments say', async () => {
    const doc = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const block = /<!-- aws-walkthrough -->\s*```sh\n([\s\S]*?)```\n/.exec(doc)?.[1];
    expect(block).toBeDefined();
    const expected = [...(block as string).matchAll(/--consistency-full\s+# (true|false)$/gm)].map((m) => m[1]);
    expect(expected).toEqual(['true', 'false', 'true']);

    const zed = cleanup.add(new Zed());
    const out = await zed.shell(`set -euo pipefail; export PATH='${path.join(work, 'bin')}':"$PATH"; cd '${work}'\n${block as string}`);
    const lines = out.trim().split('\n').map((l) => l.trim());
    // `out ZedContextCommand` printed the command before eval ran it; the key is not in it.
    expect(lines).toContain(zedCommand);
    expect(zedCommand).not.toContain(key);
    expect(lines.slice(-3)).toEqual(expected);
  });

  it('the context it made is a plaintext one for the quickstart (no TLS without a certificate)', () => {
    expect(zedCommand).toBe(
      `zed context set mystack ${host}:50051 "$(aws secretsmanager get-secret-value --region us-east-1 --secret-id ${SECRET_ARN} --query SecretString --output text)" --insecure`,
    );
  });
});
