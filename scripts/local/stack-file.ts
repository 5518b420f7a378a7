/**
 * The local stack's stack file: the schema custom resource's properties
 * (Schema, Relationships, Assertions, DeleteMode) as they would stand in
 * template.yaml. Where SpiceDB is and its key are filled in by the stack.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { ROOT } from '../rig/components';

export const DEFAULT_STACK_FILE = path.join(ROOT, 'scripts', 'local', 'seed-stack.yaml');

export type SchemaProperties = Record<string, unknown>;

const ALLOWED = ['Schema', 'Relationships', 'Assertions', 'DeleteMode'];

/** Reads a stack file; names an unknown key and what is allowed. */
export function readStackFile(file: string): SchemaProperties {
  const doc = parse(readFileSync(file, 'utf8')) as unknown;
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`${file}: expected a mapping with ${ALLOWED.join(', ')}`);
  for (const key of Object.keys(doc)) {
    if (!ALLOWED.includes(key)) throw new Error(`${file}: unknown key ${key}; allowed: ${ALLOWED.join(', ')}`);
  }
  if (typeof (doc as SchemaProperties).Schema !== 'string') throw new Error(`${file}: Schema (the schema text) is required`);
  return doc as SchemaProperties;
}
