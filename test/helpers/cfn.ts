/**
 * A small CloudFormation evaluator for template tests: parameter values
 * (defaults + overrides), Conditions, Rules, and the resources of one
 * configuration with their intrinsic functions resolved. References to
 * resources stay symbolic (`<Res>` for Ref, `<Res.Attr>` for GetAtt), so
 * tests can assert what points where. Only what the templates here use is
 * supported; anything else throws, naming it.
 */
import type { Json, Resource, Template } from '../../scripts/rig/template';

export type Params = Record<string, string>;

/** An existing PostgreSQL by URI secret, TLS listener, HTTP gateway, a schema with assertions and a KMS key: the template's widest configuration. */
export const EXISTING_POSTGRES_SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:spicedb-uri-AbCdEf';
export const WIDEST_PARAMS: Params = {
  Datastore: 'postgres',
  DatastoreUriSecretArn: EXISTING_POSTGRES_SECRET_ARN,
  CertificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/0d2f9c1e-1111-2222-3333-444455556666',
  EndpointDnsName: 'spicedb.example.com',
  HttpGatewayListener: 'true',
  Schema: 'definition user {}',
  Relationships: 'document:1#viewer@user:emilia',
  AssertTrue: 'document:1#view@user:emilia',
  AssertFalse: 'document:1#view@user:beatrice',
  SecretsKmsKeyArn: 'arn:aws:kms:us-east-1:123456789012:key/0d2f9c1e-1111-2222-3333-444455556666',
  ClientSecurityGroupId: 'sg-0123456789abcdef0',
};

export const PSEUDO: Params = {
  'AWS::StackName': 'mystack',
  'AWS::Region': 'us-east-1',
  'AWS::AccountId': '123456789012',
  'AWS::Partition': 'aws',
  'AWS::URLSuffix': 'amazonaws.com',
};

/** Marker left where `AWS::NoValue` removed a value. */
const NO_VALUE = Symbol('NoValue');
type Value = Json | typeof NO_VALUE;

const isObject = (v: unknown): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Every parameter's value: the override, else the Default (List types as comma-joined strings). */
export function parameterValues(t: Template, overrides: Params = {}): Params {
  const out: Params = {};
  for (const [name, def] of Object.entries(t.Parameters ?? {})) {
    if (name in overrides) out[name] = overrides[name] as string;
    else if (def.Default !== undefined) out[name] = String(def.Default);
  }
  for (const name of Object.keys(overrides)) {
    if (!(name in out)) throw new Error(`unknown parameter ${name}`);
  }
  return out;
}

/**
 * The resources the SAM transform adds that a template may reference: each
 * function event's rule or subscription (`<Function><Event>`) and its
 * permission (`<Function><Event>Permission`).
 */
export function samGeneratedIds(t: Template): string[] {
  const out: string[] = [];
  for (const [id, res] of Object.entries(t.Resources)) {
    if (res.Type !== 'AWS::Serverless::Function') continue;
    for (const event of Object.keys((res.Properties?.Events ?? {}) as Record<string, Json>)) out.push(`${id}${event}`, `${id}${event}Permission`);
  }
  return out;
}

export class Evaluator {
  readonly params: Params;
  private readonly conditions = new Map<string, boolean>();
  private readonly known: Set<string>;

  /**
   * `refs` gives real values to resource references (`Cluster` for its Ref,
   * `Cluster.Arn` for a GetAtt); the others stay symbolic.
   */
  constructor(
    readonly template: Template,
    overrides: Params = {},
    private readonly refs: Record<string, string> = {},
  ) {
    this.params = parameterValues(template, overrides);
    this.known = new Set([...Object.keys(template.Resources), ...samGeneratedIds(template)]);
  }

  /** A parameter or pseudo parameter's value; throws when it has none. */
  param(name: string): string {
    const v = PSEUDO[name] ?? this.params[name];
    if (v === undefined) throw new Error(`parameter ${name} has no value (give it in the overrides)`);
    return v;
  }

  condition(name: string): boolean {
    const known = this.conditions.get(name);
    if (known !== undefined) return known;
    const expr = this.template.Conditions?.[name];
    if (expr === undefined) throw new Error(`unknown condition ${name}`);
    const value = this.truth(expr);
    this.conditions.set(name, value);
    return value;
  }

  /** A condition or rule expression's truth. */
  truth(expr: Json): boolean {
    if (!isObject(expr)) throw new Error(`not a condition expression: ${JSON.stringify(expr)}`);
    const [fn, arg] = Object.entries(expr)[0] ?? [];
    const args = Array.isArray(arg) ? arg : [];
    switch (fn) {
      case 'Condition':
        return this.condition(String(arg));
      case 'Fn::Not':
        return !this.truth(args[0] as Json);
      case 'Fn::And':
        return args.every((a) => this.truth(a));
      case 'Fn::Or':
        return args.some((a) => this.truth(a));
      case 'Fn::Equals':
        return String(this.scalar(args[0] as Json)) === String(this.scalar(args[1] as Json));
      case 'Fn::Contains': {
        const list = this.resolve(args[0] as Json);
        const items = Array.isArray(list) ? list.map(String) : String(list).split(',');
        return items.includes(String(this.scalar(args[1] as Json)));
      }
      default:
        throw new Error(`unsupported condition function ${String(fn)}`);
    }
  }

  private scalar(v: Json): Json {
    const r = this.resolve(v);
    return Array.isArray(r) ? r.join(',') : r;
  }

  /** The names of the Rules whose assertions fail with these parameters. */
  ruleViolations(): string[] {
    const out: string[] = [];
    for (const [name, rule] of Object.entries(this.template.Rules ?? {})) {
      const r = rule as { RuleCondition?: Json; Assertions: { Assert: Json }[] };
      if (r.RuleCondition !== undefined && !this.truth(r.RuleCondition)) continue;
      if (r.Assertions.some((a) => !this.truth(a.Assert))) out.push(name);
    }
    return out;
  }

  /** A value with its intrinsics resolved; AWS::NoValue entries removed. */
  resolve(value: Json): Json {
    const r = this.walk(value);
    if (r === NO_VALUE) throw new Error('AWS::NoValue at the top of a value');
    return r;
  }

  private walk(value: Json): Value {
    if (Array.isArray(value)) {
      const items = value.map((v) => this.walk(v)).filter((v): v is Json => v !== NO_VALUE);
      return items;
    }
    if (!isObject(value)) return value;
    const keys = Object.keys(value);
    if (keys.length === 1) {
      const fn = keys[0] as string;
      const arg = value[fn] as Json;
      switch (fn) {
        case 'Ref': {
          const name = String(arg);
          if (name === 'AWS::NoValue') return NO_VALUE;
          if (name in PSEUDO || name in (this.template.Parameters ?? {})) {
            const type = String(this.template.Parameters?.[name]?.Type ?? 'String');
            const v = this.param(name);
            return type.startsWith('List<') || type === 'CommaDelimitedList' ? v.split(',') : v;
          }
          if (this.known.has(name)) return this.refs[name] ?? `<${name}>`;
          throw new Error(`Ref to unknown ${name}`);
        }
        case 'Fn::GetAtt': {
          const [res, attr] = arg as string[];
          if (!this.known.has(String(res))) throw new Error(`GetAtt of unknown ${String(res)}`);
          return this.refs[`${String(res)}.${String(attr)}`] ?? `<${String(res)}.${String(attr)}>`;
        }
        case 'Fn::If': {
          const [cond, yes, no] = arg as [string, Json, Json];
          return this.walk(this.condition(cond) ? yes : no);
        }
        case 'Fn::Sub':
          return this.sub(arg);
        case 'Fn::Join': {
          const [sep, list] = arg as [string, Json];
          const items = this.walk(list);
          if (!Array.isArray(items)) throw new Error('Fn::Join of a non-list');
          return items.map(String).join(sep);
        }
        case 'Fn::Split': {
          const [sep, source] = arg as [string, Json];
          return String(this.walk(source)).split(sep);
        }
        case 'Fn::Select': {
          const [index, list] = arg as [number, Json];
          const items = this.walk(list);
          if (!Array.isArray(items)) throw new Error('Fn::Select of a non-list');
          return items[Number(index)] as Json;
        }
        case 'Fn::GetAZs':
          return ['us-east-1a', 'us-east-1b', 'us-east-1c'];
        case 'Fn::Cidr': {
          const [block, count, bits] = (arg as Json[]).map((a) => this.walk(a));
          return cidrSubnets(String(block), Number(count), Number(bits));
        }
        default:
          if (fn.startsWith('Fn::')) throw new Error(`unsupported intrinsic ${fn}`);
      }
    }
    const out: Record<string, Json> = {};
    for (const [k, v] of Object.entries(value)) {
      const r = this.walk(v);
      if (r !== NO_VALUE) out[k] = r;
    }
    return out;
  }

  private sub(arg: Json): string {
    const [text, vars] = Array.isArray(arg) ? (arg as [string, Record<string, Json>]) : [String(arg), {}];
    return text.replace(/\$\{([^}!]+)\}/g, (_, name: string) => {
      if (name in vars) return String(this.resolve(vars[name] as Json));
      if (name in PSEUDO) return PSEUDO[name] as string;
      if (name in (this.template.Parameters ?? {})) return this.param(name);
      const dot = name.indexOf('.');
      const res = dot < 0 ? name : name.slice(0, dot);
      if (this.known.has(res)) return this.refs[name] ?? `<${name}>`;
      throw new Error(`Fn::Sub of unknown \${${name}}`);
    });
  }

  /** The resources this configuration creates, with resolved properties. */
  resources(): Record<string, Resource> {
    const out: Record<string, Resource> = {};
    for (const [id, res] of Object.entries(this.template.Resources)) {
      if (res.Condition !== undefined && !this.condition(res.Condition)) continue;
      out[id] = { ...res, Properties: res.Properties ? (this.resolve(res.Properties) as Record<string, Json>) : {} };
    }
    return out;
  }

  /** The outputs this configuration has, resolved. */
  outputs(): Record<string, Json> {
    const out: Record<string, Json> = {};
    for (const [name, o] of Object.entries(this.template.Outputs ?? {})) {
      if (typeof o.Condition === 'string' && !this.condition(o.Condition)) continue;
      out[name] = this.resolve(o.Value as Json);
    }
    return out;
  }
}

/** Fn::Cidr for IPv4: `count` consecutive subnets with `bits` host bits, from the block's start. */
export function cidrSubnets(block: string, count: number, bits: number): string[] {
  const [ip, prefix] = block.split('/');
  const start = (ip ?? '').split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  if (32 - bits < Number(prefix)) throw new Error(`Fn::Cidr: /${32 - bits} subnets do not fit in ${block}`);
  const size = 2 ** bits;
  return Array.from({ length: count }, (_, i) => {
    const n = start + i * size;
    return `${[24, 16, 8, 0].map((sh) => Math.floor(n / 2 ** sh) % 256).join('.')}/${32 - bits}`;
  });
}

/** Each statement of each inline policy of an IAM role. */
export interface Statement {
  role: string;
  sid: string;
  actions: string[];
  resources: string[];
  condition?: Json;
}

const asList = (v: Json | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);

export function statementsOf(resources: Record<string, Resource>): Statement[] {
  const out: Statement[] = [];
  for (const [role, res] of Object.entries(resources)) {
    if (res.Type !== 'AWS::IAM::Role') continue;
    const policies = (res.Properties?.Policies ?? []) as { PolicyDocument: { Statement: Record<string, Json>[] } }[];
    for (const p of policies) {
      for (const s of p.PolicyDocument.Statement) {
        out.push({
          role,
          sid: String(s.Sid ?? '(no sid)'),
          actions: asList(s.Action),
          resources: asList(s.Resource),
          ...(s.Condition !== undefined ? { condition: s.Condition } : {}),
        });
      }
    }
  }
  return out;
}

/**
 * Read-only by name: the verbs IAM classifies as List or Read. Everything
 * else counts as mutating (conservative).
 */
export function isReadOnlyAction(action: string): boolean {
  const verb = action.slice(action.indexOf(':') + 1);
  return /^(Describe|List|Get|BatchGet|BatchCheck)/.test(verb);
}

/**
 * The template text with new Default values for some parameters (for tools
 * such as checkov, which evaluate Conditions with the defaults).
 */
export function withDefaults(text: string, defaults: Params): string {
  let out = text;
  for (const [name, value] of Object.entries(defaults)) {
    const header = new RegExp(`\\n  ${name}:\\n((?:    .*\\n)*)`);
    const m = header.exec(out);
    if (!m) throw new Error(`parameter ${name} not found`);
    const body = (m[1] ?? '').replace(/^ {4}Default: .*\n/m, '');
    const quoted = `'${value.replace(/'/g, "''")}'`;
    const replaced = `\n  ${name}:\n${body.replace(/^( {4}Type: .*\n)/m, `$1    Default: ${quoted}\n`)}`;
    out = out.slice(0, m.index) + replaced + out.slice(m.index + m[0].length);
  }
  return out;
}
