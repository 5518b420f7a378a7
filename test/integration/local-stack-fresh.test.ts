/**
 * The README's main command from a clean cache folder: the fresh-machine
 * path. `bash scripts/local-stack.sh` must install or build every component
 * into the (empty) cache, bring the stack up and report it ready.
 * (Toolchain caches outside the project, such as Go's and pip's, stay warm.)
 */
import path from 'node:path';
import { ROOT } from '../../scripts/rig/components';
import { ManagedProcess } from '../../scripts/rig/process';
import { makeWorkDir } from '../../scripts/rig/workdir';

const withoutWarmCache = (p: string): string =>
  p
    .split(':')
    .filter((dir) => !dir.startsWith(path.join(ROOT, '.cache')) && !dir.startsWith(process.env.SPICEDB_ECS_CACHE ?? '\0'))
    .join(':');

it('starts from a clean cache folder and reports ready', async () => {
  const cache = makeWorkDir('fresh-cache');
  try {
    const proc = new ManagedProcess({
      name: 'local-stack.sh',
      command: 'bash',
      args: [path.join(ROOT, 'scripts', 'local-stack.sh'), 'up', '--nodes', '2', '--exit-when-ready'],
      // Nothing of the warm cache on PATH either: set-up must find or build every component itself.
      env: { ...process.env, SPICEDB_ECS_CACHE: cache.dir, PATH: withoutWarmCache(process.env.PATH ?? '') },
    });
    const code = await proc.wait();
    const out = proc.tail(200_000);
    console.log(out.split('\n').filter((l) => /: (done|FAILED) in|ready in/.test(l)).join('\n'));
    expect({ code, tail: code === 0 ? '' : out.slice(-4000) }).toEqual({ code: 0, tail: '' });
    // Every set-up step ran against the empty cache and printed its duration.
    for (const component of ['spicedb v1.56.2', 'grpc_health_probe', 'zed v1.2.0', 'PostgreSQL', 'AWS emulator']) {
      expect(out).toMatch(new RegExp(`${component}[^\\n]*: done in \\d+\\.\\ds`));
    }
    expect(out).toContain(`SPICEDB_BIN=${cache.dir}/bin/spicedb`);
    expect(out).toMatch(/Local stack ready in [\d.]+s: 2 SpiceDB task\(s\)/);
    expect(out).toContain('stopped; nothing left running');
  } finally {
    cache.remove();
  }
}, 900_000);
