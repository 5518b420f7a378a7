/**
 * Runs a template function locally the way Lambda does: its esbuild bundle
 * from dist/ (built by scripts/build.ts from the template's metadata), in a
 * separate Node process per function (a "container": module-scope clients
 * are created once), with the function's environment from the template and
 * its Timeout. Only endpoints and configuration differ from Lambda.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { functionBuilds } from '../build';
import { ROOT } from '../rig/components';
import { loadTemplate, resolveIntrinsics, type Json } from '../rig/template';

export class InvocationError extends Error {
  constructor(
    readonly functionName: string,
    readonly errorName: string,
    message: string,
  ) {
    super(`${functionName}: ${errorName}: ${message}`);
    this.name = 'InvocationError';
  }
}

interface Reply {
  id: string;
  ok: boolean;
  result?: unknown;
  error?: { name?: string; message: string };
}

/**
 * The template's environment values with `!Ref X`, `!GetAtt X.Y` and `!Sub`
 * looked up in `values` (keys `X` or `X.Y`).
 */
export function resolveEnvironment(vars: Record<string, Json>, values: Record<string, string>, fn: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, raw] of Object.entries(vars)) {
    const value = resolveIntrinsics(raw, values, `${fn}: environment ${name}`);
    if (value === null || typeof value === 'object') throw new Error(`${fn}: environment ${name} has an unsupported value`);
    out[name] = String(value);
  }
  return out;
}

export interface LocalFunctionOptions {
  logicalId: string;
  /** Values for the template's !Ref / !GetAtt in the function's environment. */
  values: Record<string, string>;
  /** Endpoint overrides, region and credentials for the emulator. */
  awsEnv: Record<string, string>;
  /** Extra environment (wins over the template's). */
  env?: Record<string, string>;
  /** Where the function's log lines go (default: stdout). */
  onLog?: (line: string) => void;
}

/** One function, one warm container. */
export class LocalFunction {
  readonly logicalId: string;
  readonly timeoutMs: number;
  private child: ChildProcess | undefined;
  private readonly pending = new Map<string, { resolve(v: unknown): void; reject(e: Error): void }>();
  private readonly env: NodeJS.ProcessEnv;
  private readonly onLog: (line: string) => void;

  constructor(opts: LocalFunctionOptions) {
    this.logicalId = opts.logicalId;
    const template = loadTemplate(path.join(ROOT, 'template.yaml'));
    const res = template.Resources[opts.logicalId];
    if (res?.Type !== 'AWS::Serverless::Function') throw new Error(`${opts.logicalId} is not a function in template.yaml`);
    const globals = template.Globals?.Function ?? {};
    const props = res.Properties ?? {};
    const globalVars = ((globals.Environment as Record<string, Json> | undefined)?.Variables ?? {}) as Record<string, Json>;
    const vars = ((props.Environment as Record<string, Json> | undefined)?.Variables ?? {}) as Record<string, Json>;
    const build = functionBuilds().find((b) => b.logicalId === opts.logicalId);
    if (!build) throw new Error(`no esbuild metadata for ${opts.logicalId}`);
    if (!existsSync(build.bundle)) throw new Error(`${build.bundle} is missing: run \`npx tsx scripts/build.ts\``);
    this.timeoutMs = Number(props.Timeout ?? globals.Timeout ?? 3) * 1000;
    this.onLog = opts.onLog ?? ((line) => process.stdout.write(`${line}\n`));
    this.env = {
      PATH: process.env.PATH,
      NODE_OPTIONS: '--enable-source-maps',
      ...resolveEnvironment({ ...globalVars, ...vars }, opts.values, opts.logicalId),
      ...opts.awsEnv,
      ...opts.env,
      AWS_LAMBDA_FUNCTION_NAME: opts.logicalId,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(props.MemorySize ?? globals.MemorySize ?? 128),
      LOCAL_LAMBDA_BUNDLE: build.bundle,
      LOCAL_LAMBDA_EXPORT: build.handlerExport,
    };
  }

  private start(): ChildProcess {
    const child = fork(path.join(__dirname, 'lambda-worker.js'), [], {
      env: this.env,
      execPath: process.execPath,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const forward = (chunk: Buffer): void => {
      for (const line of chunk.toString().split('\n')) if (line.trim()) this.onLog(line);
    };
    child.stdout?.on('data', forward);
    child.stderr?.on('data', forward);
    child.on('message', (msg: Reply) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new InvocationError(this.logicalId, msg.error?.name ?? 'Error', msg.error?.message ?? 'unknown error'));
    });
    child.on('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      for (const [id, p] of this.pending) {
        this.pending.delete(id);
        p.reject(new InvocationError(this.logicalId, 'Runtime.ExitError', `container exited (code ${code}, signal ${signal})`));
      }
    });
    return child;
  }

  /** Invokes the handler with `event`; rejects with InvocationError if it throws or times out. */
  invoke(event: unknown, requestId: string = randomUUID()): Promise<unknown> {
    const child = (this.child ??= this.start());
    const id = randomUUID();
    return new Promise((resolve, reject) => {
      // Lambda ends an invocation at its timeout and starts a fresh container.
      const timer = setTimeout(() => {
        if (!this.pending.delete(id)) return;
        reject(new InvocationError(this.logicalId, 'Sandbox.Timedout', `Task timed out after ${this.timeoutMs / 1000} seconds`));
        child.kill('SIGKILL');
      }, this.timeoutMs + 100);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      child.send({ id, requestId, event, timeoutMs: this.timeoutMs });
    });
  }

  stop(): Promise<void> {
    const child = this.child;
    if (!child) return Promise.resolve();
    return new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }
}
