/**
 * Test-side helpers over scripts/rig: names and keys unique per run, a
 * stack of cleanups run in reverse (also when a test fails), and zed with a
 * private HOME so tests never touch the user's contexts.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { component } from '../../scripts/rig/components';
import { ManagedProcess } from '../../scripts/rig/process';

export const randomKey = (): string => `key_${randomBytes(18).toString('hex')}`;
export const uniqueName = (prefix: string): string => `${prefix}_${randomBytes(5).toString('hex')}`;

/** Cleanups registered during a suite; call `runAll` in afterAll. */
export class Cleanup {
  private readonly steps: (() => Promise<void> | void)[] = [];
  add<T extends { stop(): Promise<void> }>(resource: T): T {
    this.steps.push(() => resource.stop());
    return resource;
  }
  defer(step: () => Promise<void> | void): void {
    this.steps.push(step);
  }
  async runAll(): Promise<void> {
    const errors: unknown[] = [];
    while (this.steps.length > 0) {
      const step = this.steps.pop();
      try {
        await step?.();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed');
  }
}

export interface ZedResult {
  code: number | null;
  stdout: string;
}

/** zed with its own HOME and keyring password, so contexts stay private to the test. */
export class Zed {
  private readonly home = mkdtempSync(path.join(tmpdir(), 'spicedb-ecs-zed-'));
  private readonly bin = component('ZED_BIN');

  /** A private HOME and keyring; this zed first on PATH. */
  private env(): NodeJS.ProcessEnv {
    return {
      PATH: `${path.dirname(this.bin)}:${process.env.PATH ?? ''}`,
      HOME: this.home,
      XDG_CONFIG_HOME: path.join(this.home, '.config'),
      ZED_KEYRING_PASSWORD: 'test-keyring',
      NO_COLOR: '1',
    };
  }

  async run(args: string[]): Promise<ZedResult> {
    const proc = new ManagedProcess({
      name: `zed ${args.slice(0, 2).join(' ')}`,
      command: this.bin,
      args,
      env: this.env(),
    });
    const code = await proc.wait();
    return { code, stdout: proc.tail(1_000_000) };
  }

  /** Runs zed and fails with its output when it exits non-zero. */
  async ok(args: string[]): Promise<string> {
    const res = await this.run(args);
    if (res.code !== 0) throw new Error(`zed ${args.join(' ')} exited ${res.code}:\n${res.stdout}`);
    return res.stdout;
  }

  /** Runs a command line through bash (as a user would type it), with this zed first on PATH. */
  async shell(line: string): Promise<string> {
    const proc = new ManagedProcess({
      name: 'bash',
      command: 'bash',
      args: ['-c', line],
      env: this.env(),
    });
    const code = await proc.wait();
    if (code !== 0) throw new Error(`\`${line}\` exited ${code}:\n${proc.tail()}`);
    return proc.tail(1_000_000);
  }

  stop(): Promise<void> {
    rmSync(this.home, { recursive: true, force: true });
    return Promise.resolve();
  }
}

/** The seed's post/user schema. */
export const POST_SCHEMA = `definition user {}

definition post {
  relation reader: user
  relation writer: user

  permission read = reader + writer
  permission write = writer
}
`;
