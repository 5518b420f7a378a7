/**
 * The drain sidecar's script, taken from template.yaml, run by a POSIX
 * shell (dash here; the image's is busybox ash) the way the container runs
 * it (`sh -c SCRIPT`), with a short DRAIN_SECONDS: it keeps running until
 * SIGTERM, then holds for DRAIN_SECONDS and exits 0, so that ECS sends
 * SIGTERM to SpiceDB only after the hold. Its health check (`kill -0 1`)
 * presumes the script is PID 1, as in the container.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../../scripts/rig/components';
import { sleep, waitFor } from '../../scripts/rig/net';
import { ManagedProcess } from '../../scripts/rig/process';
import { loadTemplate } from '../../scripts/rig/template';
import { Evaluator } from '../helpers/cfn';

const resources = new Evaluator(loadTemplate(path.join(ROOT, 'template.yaml')), {
  VpcId: 'vpc-0123456789abcdef0',
  PrivateSubnetIds: 'subnet-0aaaaaaaaaaaaaaa1',
  ClientCidr: '10.0.0.0/16',
}).resources();
const drain = (resources.TaskDefinition?.Properties?.ContainerDefinitions as { Name: string; EntryPoint: string[]; Command: string[] }[]).find((c) => c.Name === 'drain');

function start(holdSeconds: number): ManagedProcess {
  if (!drain) throw new Error('template.yaml has no drain container');
  const [shell, ...flags] = drain.EntryPoint;
  return new ManagedProcess({
    name: 'drain sidecar',
    command: String(shell),
    args: [...flags, ...drain.Command],
    env: { PATH: '/usr/bin:/bin', DRAIN_SECONDS: String(holdSeconds) },
  });
}

describe('the drain sidecar script', () => {
  it('runs until SIGTERM, then holds for DRAIN_SECONDS before it exits 0', async () => {
    const proc = start(3);
    await waitFor(() => Promise.resolve(proc.tail().includes('drain: armed (3 s)')), { what: 'the sidecar to arm', timeoutMs: 10_000, abortIf: () => proc.assertRunning() });
    // Nothing ends it but a signal.
    await sleep(1500);
    expect(proc.running).toBe(true);
    const signalled = Date.now();
    proc.signal('SIGTERM');
    await waitFor(() => Promise.resolve(proc.tail().includes('drain: SIGTERM, holding 3 s')), { what: 'the hold to start', timeoutMs: 5000 });
    // Half-way through the hold it is still there (this is what keeps SpiceDB from its SIGTERM).
    await sleep(1500);
    expect(proc.running).toBe(true);
    const code = await proc.wait();
    expect(code).toBe(0);
    expect(Date.now() - signalled).toBeGreaterThanOrEqual(3000);
    expect(proc.tail()).toContain('drain: released');
  });

  it('leaves no process behind when it exits (the idle sleep is killed too)', async () => {
    const proc = start(1);
    await waitFor(() => Promise.resolve(proc.tail().includes('drain: armed')), { what: 'the sidecar to arm', timeoutMs: 10_000, abortIf: () => proc.assertRunning() });
    const pid = proc.pid as number;
    const children = (): string[] =>
      readdirSync('/proc')
        .filter((d) => /^\d+$/.test(d))
        .filter((d) => {
          try {
            return readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1]?.split(' ')[1] === String(pid);
          } catch {
            return false;
          }
        });
    expect(children()).toHaveLength(1);
    const [sleeper] = children();
    proc.signal('SIGTERM');
    expect(await proc.wait()).toBe(0);
    // Killed, so it goes within moments; left alone it would sleep for an hour.
    const alive = (): boolean => {
      try {
        return existsSync(`/proc/${sleeper}/stat`) && !readFileSync(`/proc/${sleeper}/stat`, 'utf8').includes(') Z ');
      } catch {
        return false;
      }
    };
    await waitFor(() => Promise.resolve(!alive()), { what: `the idle sleep (pid ${sleeper}) to end`, timeoutMs: 10_000 });
  });
});
