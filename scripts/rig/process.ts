/**
 * Child processes of the rig: started with their output kept in a ring
 * buffer (for error messages), stopped exactly once, and all killed if the
 * parent exits without stopping them.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Run as this uid/gid (PostgreSQL refuses root); signals then reach the process itself. */
  runAs?: { uid: number; gid: number };
  /** Start it as the leader of its own process group, as a shell does with a foreground job. */
  processGroup?: boolean;
}

export class ManagedProcess {
  readonly name: string;
  private readonly child: ChildProcess;
  private output = '';
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exited: Promise<void>;

  constructor(opts: StartOptions) {
    installExitHook();
    this.name = opts.name;
    const spawnOpts: SpawnOptions = {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(opts.runAs ?? {}),
      detached: opts.processGroup ?? false,
    };
    this.child = spawn(opts.command, opts.args, spawnOpts);
    live.add(this.child);
    const keep = (chunk: Buffer): void => {
      this.output = (this.output + chunk.toString()).slice(-20000);
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        live.delete(this.child);
        resolve();
      });
      this.child.on('error', (err) => {
        this.output += `\nspawn error: ${err.message}`;
        this.exitInfo = { code: -1, signal: null };
        live.delete(this.child);
        resolve();
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** The last output of the process, for error messages. */
  tail(chars = 3000): string {
    return this.output.slice(-chars);
  }

  /** Throws if the process has exited: use as `abortIf` while waiting for it to answer. */
  assertRunning(): void {
    if (this.exitInfo !== undefined) {
      throw new Error(
        `${this.name} exited (code ${this.exitInfo.code}, signal ${this.exitInfo.signal}) before it answered:\n${this.tail()}`,
      );
    }
  }

  /** Sends a signal without waiting (e.g. SIGTERM to start a graceful stop). */
  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }

  /** Sends a signal to the whole process group, as Ctrl-C in a terminal does (needs `processGroup`). */
  signalGroup(sig: NodeJS.Signals): void {
    if (this.running && this.child.pid !== undefined) process.kill(-this.child.pid, sig);
  }

  /** Stops the process: `sig` first, SIGKILL after `graceMs`. Resolves when it has exited. */
  async stop(sig: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
    if (!this.running) return;
    this.child.kill(sig);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** Resolves with the exit code once the process ends. */
  async wait(): Promise<number | null> {
    await this.exited;
    return this.exitInfo?.code ?? null;
  }
}

/** Runs a command to completion; rejects with its output when it fails. */
export async function run(opts: StartOptions & { timeoutMs?: number }): Promise<string> {
  const proc = new ManagedProcess(opts);
  const timer = setTimeout(() => void proc.stop('SIGKILL'), opts.timeoutMs ?? 120000);
  const code = await proc.wait();
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${opts.name} failed (exit ${code}): ${opts.command} ${opts.args.join(' ')}\n${proc.tail()}`);
  return proc.tail(1_000_000);
}
