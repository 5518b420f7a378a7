/**
 * The resource's properties, validated into a typed value. CloudFormation
 * sends every scalar as a string, so booleans and numbers are parsed here.
 * Every problem names the property (and list index and text); all problems
 * are reported at once.
 */
import { ValidationError } from '../shared/errors';
import {
  parseAssertion,
  parseRelationship,
  relationshipKey,
  type Assertion,
  type Relationship,
} from '../shared/relationships';

/** SpiceDB's limit on a schema (WriteSchema). */
export const MAX_SCHEMA_BYTES = 4 * 1024 * 1024;

export type DeleteMode = 'keep' | 'delete-relationships';
export const DELETE_MODES: readonly DeleteMode[] = ['keep', 'delete-relationships'];

export const KNOWN_PROPERTIES = [
  'ServiceToken',
  'ServiceTimeout',
  'SpiceDBEndpoint',
  'SpiceDBTls',
  'SpiceDBCaPem',
  'PresharedKeySecretArn',
  'Schema',
  'Relationships',
  'Assertions',
  'DeleteMode',
  'Timeouts',
] as const;

export const ASSERTION_KINDS = ['AssertTrue', 'AssertFalse', 'AssertCaveated'] as const;
export type AssertionKind = (typeof ASSERTION_KINDS)[number];

export const TIMEOUT_KEYS = ['ServingSeconds', 'CallSeconds'] as const;

/** A seeded relationship with where it came from, for messages. */
export interface SeedEntry {
  relationship: Relationship;
  /** e.g. `Relationships[3]`. */
  where: string;
}

export interface AssertionEntry extends Assertion {
  kind: AssertionKind;
  /** e.g. `Assertions.AssertTrue[0]`. */
  where: string;
}

export interface SchemaResourceProperties {
  endpoint: string;
  tls: boolean;
  caPem?: string;
  presharedKeySecretArn: string;
  schema: string;
  seed: SeedEntry[];
  assertions: AssertionEntry[];
  deleteMode: DeleteMode;
  timeouts: {
    /** Longest wait for SERVING; the invocation's remaining time when absent. */
    servingMs?: number;
    /** Deadline of each SpiceDB call. */
    callMs: number;
  };
}

/**
 * Default deadline of one SpiceDB call. Generous: on PostgreSQL a batch of
 * 1000 DELETEs can take seconds when the table has no statistics yet.
 */
export const DEFAULT_CALL_MS = 60_000;

const ENDPOINT = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):(\d{1,5})$/;
const SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@!-]+$/;

type Props = Record<string, unknown>;

const isRecord = (v: unknown): v is Props => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown): string => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
};

class Issues {
  readonly list: string[] = [];
  add(message: string): void {
    this.list.push(message);
  }
  throwIfAny(): void {
    if (this.list.length === 0) return;
    const shown = this.list.slice(0, 20);
    const more = this.list.length > shown.length ? `; and ${this.list.length - shown.length} more` : '';
    throw new ValidationError(`invalid properties: ${shown.join('; ')}${more}`);
  }
}

function parseBoolean(name: string, value: unknown, fallback: boolean, issues: Issues): boolean {
  if (value === undefined || value === '') return fallback;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string' && /^(true|false)$/i.test(value)) return value.toLowerCase() === 'true';
  issues.add(`${name}: expected "true" or "false", got ${show(value)}`);
  return fallback;
}

function parseSeconds(name: string, value: unknown, issues: Issues): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  if (!Number.isFinite(n) || n <= 0 || n > 3600) {
    issues.add(`${name}: expected a number of seconds between 0 and 3600, got ${show(value)}`);
    return undefined;
  }
  return Math.round(n * 1000);
}

function requireString(name: string, value: unknown, issues: Issues): string | undefined {
  if (value === undefined || value === null || value === '') {
    issues.add(`${name} is required`);
    return undefined;
  }
  if (typeof value !== 'string') {
    issues.add(`${name}: expected a string, got ${show(value)}`);
    return undefined;
  }
  return value;
}

/** Blank entries (e.g. the last element of `!Split ["\n", ...]`) and `//` comments. */
const isBlankOrComment = (v: unknown): boolean => typeof v === 'string' && (v.trim() === '' || v.trim().startsWith('//'));

/**
 * The entries of `Relationships`: a list of strings (one relationship each),
 * or one string of newline-separated relationships as in a validation file.
 * Blank entries and `//` comments are skipped in both forms.
 */
export function relationshipTexts(value: unknown): { text: unknown; where: string }[] | string {
  if (value === undefined || value === '') return [];
  if (typeof value === 'string') {
    return value
      .split('\n')
      .map((line, i) => ({ text: line.trim(), where: `Relationships line ${i + 1}` }))
      .filter((e) => e.text !== '' && !e.text.startsWith('//'));
  }
  if (!Array.isArray(value)) return `Relationships: expected a list of strings, got ${show(value)}`;
  return value.map((text: unknown, i) => ({ text, where: `Relationships[${i}]` })).filter((e) => !isBlankOrComment(e.text));
}

function parseSeed(value: unknown, issues: Issues): SeedEntry[] {
  const texts = relationshipTexts(value);
  if (typeof texts === 'string') {
    issues.add(texts);
    return [];
  }
  const seen = new Map<string, string>();
  const out: SeedEntry[] = [];
  for (const { text, where } of texts) {
    if (typeof text !== 'string') {
      issues.add(`${where}: expected a string, got ${show(text)}`);
      continue;
    }
    let relationship: Relationship;
    try {
      relationship = parseRelationship(text);
    } catch (err) {
      issues.add(`${where}: invalid relationship ${show(text)}: ${(err as Error).message}`);
      continue;
    }
    const key = relationshipKey(relationship);
    const first = seen.get(key);
    if (first !== undefined) {
      issues.add(`${where}: ${show(text)} repeats ${first} (caveat and expiration are not part of a relationship's identity)`);
      continue;
    }
    seen.set(key, where);
    out.push({ relationship, where });
  }
  return out;
}

function parseAssertions(value: unknown, issues: Issues): AssertionEntry[] {
  if (value === undefined || value === '') return [];
  if (!isRecord(value)) {
    issues.add(`Assertions: expected an object with ${ASSERTION_KINDS.join(', ')}, got ${show(value)}`);
    return [];
  }
  const out: AssertionEntry[] = [];
  for (const key of Object.keys(value)) {
    if (!(ASSERTION_KINDS as readonly string[]).includes(key)) {
      issues.add(`Assertions: unknown key ${show(key)}; known keys: ${ASSERTION_KINDS.join(', ')}`);
    }
  }
  for (const kind of ASSERTION_KINDS) {
    const list = value[kind];
    if (list === undefined || list === '') continue;
    if (!Array.isArray(list)) {
      issues.add(`Assertions.${kind}: expected a list of strings, got ${show(list)}`);
      continue;
    }
    list.forEach((text: unknown, i) => {
      const where = `Assertions.${kind}[${i}]`;
      if (isBlankOrComment(text)) return;
      if (typeof text !== 'string') {
        issues.add(`${where}: expected a string, got ${show(text)}`);
        return;
      }
      try {
        out.push({ ...parseAssertion(text), kind, where });
      } catch (err) {
        issues.add(`${where}: invalid assertion ${show(text)}: ${(err as Error).message}`);
      }
    });
  }
  return out;
}

function parseTimeouts(value: unknown, issues: Issues): SchemaResourceProperties['timeouts'] {
  const out: SchemaResourceProperties['timeouts'] = { callMs: DEFAULT_CALL_MS };
  if (value === undefined || value === '') return out;
  if (!isRecord(value)) {
    issues.add(`Timeouts: expected an object with ${TIMEOUT_KEYS.join(', ')}, got ${show(value)}`);
    return out;
  }
  for (const key of Object.keys(value)) {
    if (!(TIMEOUT_KEYS as readonly string[]).includes(key)) issues.add(`Timeouts: unknown key ${show(key)}; known keys: ${TIMEOUT_KEYS.join(', ')}`);
  }
  const serving = parseSeconds('Timeouts.ServingSeconds', value.ServingSeconds, issues);
  if (serving !== undefined) out.servingMs = serving;
  out.callMs = parseSeconds('Timeouts.CallSeconds', value.CallSeconds, issues) ?? DEFAULT_CALL_MS;
  return out;
}

/** Validates ResourceProperties; throws ValidationError listing every problem. */
export function parseProperties(raw: unknown): SchemaResourceProperties {
  const issues = new Issues();
  if (!isRecord(raw)) throw new ValidationError('invalid properties: ResourceProperties must be an object');
  for (const key of Object.keys(raw)) {
    if (!(KNOWN_PROPERTIES as readonly string[]).includes(key)) {
      issues.add(`unknown property ${show(key)}; known properties: ${KNOWN_PROPERTIES.join(', ')}`);
    }
  }

  const endpoint = requireString('SpiceDBEndpoint', raw.SpiceDBEndpoint, issues);
  if (endpoint !== undefined) {
    const m = ENDPOINT.exec(endpoint);
    const port = Number(m?.[1]);
    if (!m || port < 1 || port > 65535) issues.add(`SpiceDBEndpoint: expected host:port (e.g. spicedb.internal:50051), got ${show(endpoint)}`);
  }
  const tls = parseBoolean('SpiceDBTls', raw.SpiceDBTls, false, issues);
  let caPem: string | undefined;
  if (raw.SpiceDBCaPem !== undefined && raw.SpiceDBCaPem !== '') {
    if (typeof raw.SpiceDBCaPem !== 'string' || !raw.SpiceDBCaPem.includes('-----BEGIN CERTIFICATE-----')) {
      issues.add('SpiceDBCaPem: expected PEM text containing "-----BEGIN CERTIFICATE-----"');
    } else if (!tls) {
      issues.add('SpiceDBCaPem is set but SpiceDBTls is "false": set SpiceDBTls to "true" to use the CA');
    } else {
      caPem = raw.SpiceDBCaPem;
    }
  }
  const arn = requireString('PresharedKeySecretArn', raw.PresharedKeySecretArn, issues);
  if (arn !== undefined && !SECRET_ARN.test(arn)) {
    issues.add(`PresharedKeySecretArn: expected a Secrets Manager secret ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME), got ${show(arn)}`);
  }
  const schema = requireString('Schema', raw.Schema, issues);
  if (schema !== undefined) {
    const bytes = Buffer.byteLength(schema, 'utf8');
    if (schema.trim() === '') issues.add('Schema is empty');
    else if (bytes > MAX_SCHEMA_BYTES) issues.add(`Schema: ${bytes} bytes exceeds SpiceDB's limit of 4 MiB (${MAX_SCHEMA_BYTES} bytes)`);
  }
  const seed = parseSeed(raw.Relationships, issues);
  const assertions = parseAssertions(raw.Assertions, issues);
  let deleteMode: DeleteMode = 'keep';
  if (raw.DeleteMode !== undefined && raw.DeleteMode !== '') {
    if (typeof raw.DeleteMode === 'string' && (DELETE_MODES as readonly string[]).includes(raw.DeleteMode)) deleteMode = raw.DeleteMode as DeleteMode;
    else issues.add(`DeleteMode: expected one of ${DELETE_MODES.map((m) => `"${m}"`).join(', ')}, got ${show(raw.DeleteMode)}`);
  }
  const timeouts = parseTimeouts(raw.Timeouts, issues);
  issues.throwIfAny();
  return {
    endpoint: endpoint as string,
    tls,
    ...(caPem !== undefined ? { caPem } : {}),
    presharedKeySecretArn: arn as string,
    schema: schema as string,
    seed,
    assertions,
    deleteMode,
    timeouts,
  };
}

/**
 * What the previous properties (OldResourceProperties) seeded, read
 * leniently: entries that do not parse were never written (that request
 * failed validation), so they are skipped rather than failing a rollback.
 */
export function previousSeed(raw: unknown): { endpoint?: string; relationships: Relationship[]; skipped: number } {
  if (!isRecord(raw)) return { relationships: [], skipped: 0 };
  const endpoint = typeof raw.SpiceDBEndpoint === 'string' ? raw.SpiceDBEndpoint : undefined;
  const texts = relationshipTexts(raw.Relationships);
  if (typeof texts === 'string') return { ...(endpoint !== undefined ? { endpoint } : {}), relationships: [], skipped: 0 };
  const relationships: Relationship[] = [];
  let skipped = 0;
  for (const { text } of texts) {
    try {
      relationships.push(parseRelationship(String(text)));
    } catch {
      skipped++;
    }
  }
  return { ...(endpoint !== undefined ? { endpoint } : {}), relationships, skipped };
}

/** DeleteMode of a Delete request; anything but "delete-relationships" keeps the data. */
export function deleteModeOf(raw: unknown): DeleteMode {
  return isRecord(raw) && raw.DeleteMode === 'delete-relationships' ? 'delete-relationships' : 'keep';
}
