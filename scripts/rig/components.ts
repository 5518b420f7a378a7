/**
 * Where each real component lives. `scripts/setup.sh` obtains them and writes
 * `.cache/components.env`; an environment variable of the same name wins.
 * A missing component fails with a message naming it and the set-up command,
 * never a silent skip.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
export const CACHE = process.env.SPICEDB_ECS_CACHE || path.join(ROOT, '.cache');

export type ComponentName =
  | 'SPICEDB_BIN'
  | 'GRPC_HEALTH_PROBE_BIN'
  | 'ZED_BIN'
  | 'POSTGRES_BIN_DIR'
  | 'MOTO_SERVER_BIN'
  | 'CFN_LINT_BIN'
  | 'SAM_BIN'
  | 'CHECKOV_BIN';

export class MissingComponentError extends Error {
  constructor(component: string, detail: string) {
    super(`MISSING COMPONENT: ${component}: ${detail}. Run \`bash scripts/setup.sh\` (it prints the command that failed).`);
    this.name = 'MissingComponentError';
  }
}

function parseEnvFile(file: string): Record<string, string> {
  if (!existsSync(file)) return {};
  const out: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m?.[1] !== undefined && m[2] !== undefined) out[m[1]] = m[2];
  }
  return out;
}

/** Pinned versions from scripts/versions.env, the one place they are set. */
export const versions = parseEnvFile(path.join(ROOT, 'scripts', 'versions.env'));

/** The path of a component; throws MissingComponentError when it is absent. */
export function component(name: ComponentName): string {
  const value = process.env[name] ?? parseEnvFile(path.join(CACHE, 'components.env'))[name];
  if (!value) throw new MissingComponentError(name, `not listed in ${CACHE}/components.env`);
  if (!existsSync(value)) throw new MissingComponentError(name, `${value} does not exist`);
  return value;
}
