/**
 * The README's main command on the fresh-machine path: a copy of the working
 * tree (as a clean clone would be: no node_modules, no .cache) and nothing
 * of the warm cache on PATH. `bash scripts/local-stack.sh` must install or
 * build every component, bring the stack up and report it ready.
 * (Toolchain caches outside the project, such as Go's, npm's and pip's,
 * stay warm; zed is handed over through ZED_BIN, as set-up documents.)
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { component, ROOT } from '../../scripts/rig/components';
import { waitFor } from '../../scripts/rig/net';
import { ManagedProcess } from '../../scripts/rig/process';
import { makeWorkDir } from '../../scripts/rig/workdir';

const withoutWarmCache = (p: string): string =>
  p
    .split(':')
    .filter((dir) => !dir.startsWith(path.join(ROOT, '.cache')) && !dir.startsWith(process.env.SPICEDB_ECS_CACHE ?? '\0'))
    .join(':');

/** The files a clone would have: tracked and untracked-but-not-ignored ones. */
function copyWorkingTree(to: string): void {
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT })
    .toString()
    .split('\0')
    .filter(Boolean);
  for (const file of files) {
    mkdirSync(path.dirname(path.join(to, file)), { recursive: true });
    cpSync(path.join(ROOT, file), path.join(to, file), { dereference: true, errorOnExist: false, force: true });
  }
}

it('starts from a fresh copy with an empty cache, reports ready, and Ctrl-C leaves nothing running', async () => {
  const work = makeWorkDir('fresh-clone');
  try {
    const clone = path.join(work.dir, 'repo');
    copyWorkingTree(clone);
    const proc = new ManagedProcess({
      name: 'local-stack.sh',
      command: 'bash',
      args: [path.join(clone, 'scripts', 'local-stack.sh'), 'up', '--nodes', '2'],
      env: {
        ...process.env,
        SPICEDB_ECS_CACHE: '',
        PATH: withoutWarmCache(process.env.PATH ?? ''),
        ZED_BIN: realpathSync(component('ZED_BIN')),
      },
      cwd: clone,
      processGroup: true,
    });
    // Ctrl-C once it reports ready, as a user would.
    await waitFor(() => Promise.resolve(proc.tail(200_000).includes('Ctrl-C stops everything')), {
      what: 'the local stack to report ready',
      timeoutMs: 840_000,
      intervalMs: 500,
      abortIf: () => proc.assertRunning(),
    });
    proc.signalGroup('SIGINT');
    const code = await proc.wait();
    const out = proc.tail(200_000);
    console.log(out.split('\n').filter((l) => /: (done|FAILED) in|ready in/.test(l)).join('\n'));
    expect({ code, tail: code === 0 ? '' : out.slice(-4000) }).toEqual({ code: 0, tail: '' });
    // Every set-up step ran against the empty cache and printed its duration.
    for (const step of ['Node.js', 'npm packages', 'spicedb v1.56.2', 'grpc_health_probe', 'zed v1.2.0', 'PostgreSQL', 'AWS emulator']) {
      expect(out).toMatch(new RegExp(`${step}[^\\n]*: done in \\d+\\.\\ds`));
    }
    expect(out).toContain(`SPICEDB_BIN=${clone}/.cache/bin/spicedb`);
    expect(out).toMatch(/Local stack ready in [\d.]+s: 2 SpiceDB task\(s\)/);
    expect(out).toContain('stopped; nothing left running');
    // ... and it is true: no process of the copy (spicedb, moto, function hosts) is left.
    const left = execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line.includes(clone));
    expect(left).toEqual([]);
  } finally {
    work.remove();
  }
}, 900_000);
