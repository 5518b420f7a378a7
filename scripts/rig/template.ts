/**
 * Reads a CloudFormation/SAM YAML template with its short-form intrinsic
 * tags (!Ref, !Sub, !GetAtt ...) kept as `{ 'Fn::X': ... }` objects, the
 * same shape CloudFormation gives them in JSON.
 */
import { readFileSync } from 'node:fs';
import { parse, type ScalarTag, type CollectionTag } from 'yaml';

const FUNCTIONS = [
  'Base64', 'Cidr', 'FindInMap', 'GetAtt', 'GetAZs', 'ImportValue', 'Join', 'Select', 'Split', 'Sub',
  'Transform', 'And', 'Equals', 'If', 'Not', 'Or', 'Contains', 'EachMemberEquals', 'EachMemberIn',
  'RefAll', 'ValueOf', 'ValueOfAll', 'Length', 'ToJsonString',
];

function tags(): (ScalarTag | CollectionTag)[] {
  const out: (ScalarTag | CollectionTag)[] = [];
  const wrap = (name: string) => (value: unknown) => {
    const key = name === 'Ref' || name === 'Condition' ? name : `Fn::${name}`;
    // !GetAtt a.b is the scalar form of ["a", "b"].
    if (name === 'GetAtt' && typeof value === 'string') {
      const dot = value.indexOf('.');
      return { [key]: [value.slice(0, dot), value.slice(dot + 1)] };
    }
    return { [key]: value };
  };
  for (const name of [...FUNCTIONS, 'Ref', 'Condition']) {
    out.push({ tag: `!${name}`, resolve: wrap(name) } as ScalarTag);
    for (const collection of ['seq', 'map'] as const) {
      out.push({
        tag: `!${name}`,
        collection,
        resolve: (node: { toJSON(): unknown }) => wrap(name)(node.toJSON()),
      } as unknown as CollectionTag);
    }
  }
  return out;
}

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

export interface Resource {
  Type: string;
  Properties?: Record<string, Json>;
  Metadata?: Record<string, Json>;
  DependsOn?: string | string[];
  Condition?: string;
  [key: string]: unknown;
}

export interface Template {
  Transform?: string | string[];
  Parameters?: Record<string, Record<string, Json>>;
  Rules?: Record<string, Json>;
  Conditions?: Record<string, Json>;
  Globals?: Record<string, Record<string, Json>>;
  Resources: Record<string, Resource>;
  Outputs?: Record<string, Record<string, Json>>;
  [key: string]: unknown;
}

export function parseTemplate(text: string): Template {
  return parse(text, { customTags: tags(), maxAliasCount: -1 }) as Template;
}

export function loadTemplate(file: string): Template {
  return parseTemplate(readFileSync(file, 'utf8'));
}

/** The resources of a given type, by logical id. */
export function resourcesOfType(t: Template, type: string): [string, Resource][] {
  return Object.entries(t.Resources).filter(([, r]) => r.Type === type);
}

/**
 * Replaces !Ref, !GetAtt and !Sub anywhere inside `value` with `values`
 * (keys `X` for !Ref X, `X.Y` for !GetAtt X.Y, the names inside !Sub).
 * Throws naming the first reference it cannot resolve; `what` says where.
 */
export function resolveIntrinsics(value: Json, values: Record<string, string>, what = 'the template'): Json {
  const need = (key: string): string => {
    const v = values[key];
    if (v === undefined) throw new Error(`${what} refers to ${key}, which the local stack does not provide`);
    return v;
  };
  if (Array.isArray(value)) return value.map((v) => resolveIntrinsics(v, values, what));
  if (value && typeof value === 'object') {
    if (typeof value.Ref === 'string') return need(value.Ref);
    if (Array.isArray(value['Fn::GetAtt'])) return need(value['Fn::GetAtt'].join('.'));
    if (typeof value['Fn::Sub'] === 'string') return value['Fn::Sub'].replace(/\$\{([^}]+)\}/g, (_m, k: string) => need(k));
    const other = Object.keys(value).find((k) => k.startsWith('Fn::'));
    if (other) throw new Error(`${what} uses ${other}, which the local stack does not resolve`);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveIntrinsics(v, values, what)]));
  }
  return value;
}
