/**
 * The real template tools on template.yaml and templates/vpc.yaml, each run
 * once: cfn-lint (no error, no warning), `sam validate --lint`, checkov on
 * every configuration (it evaluates Conditions with the parameter defaults,
 * so one run sees only part of the template), `sam build` (every function's
 * bundle from the template's esbuild metadata, without touching
 * node_modules), SAM's own reading of samconfig.toml and of a parameter
 * file, and the helper scripts' syntax and dry run.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { component, ROOT } from '../../scripts/rig/components';
import { loadTemplate, resourcesOfType, type Json } from '../../scripts/rig/template';
import { WIDEST_PARAMS, withDefaults } from '../helpers/cfn';
import { runTool, samBuild, toolsPython, type SamBuild } from '../helpers/sam';

const TEMPLATE = path.join(ROOT, 'template.yaml');
const VPC_TEMPLATE = path.join(ROOT, 'templates', 'vpc.yaml');
const timings: Record<string, number> = {};

afterAll(() => {
  console.log(`template tools (ms): ${JSON.stringify(timings)}`);
});

describe('cfn-lint', () => {
  it('finds no error and no warning in either template', async () => {
    const run = await runTool(component('CFN_LINT_BIN'), ['--format', 'json', TEMPLATE, VPC_TEMPLATE]);
    timings.cfnLint = run.ms;
    const matches = JSON.parse(run.stdout || '[]') as { Rule: { Id: string }; Message: string; Filename: string; Location: { Start: { LineNumber: number } } }[];
    expect(matches.map((m) => `${path.basename(m.Filename)}:${m.Location.Start.LineNumber} ${m.Rule.Id} ${m.Message}`)).toEqual([]);
    expect(run.code).toBe(0);
  });

  it('is not silenced: no check is ignored in the templates', () => {
    for (const file of [TEMPLATE, VPC_TEMPLATE]) {
      expect(readFileSync(file, 'utf8')).not.toMatch(/cfn-lint:\s*\n\s*config:/);
    }
  });
});

describe('sam validate --lint', () => {
  it('accepts the template', async () => {
    const run = await runTool(component('SAM_BIN'), ['validate', '--lint', '--template-file', TEMPLATE]);
    timings.samValidateLint = run.ms;
    expect([run.code, run.output]).toEqual([0, expect.stringContaining('is a valid SAM Template')]);
  });
});

describe('checkov', () => {
  type CheckovReport = {
    check_type: string;
    results: {
      failed_checks: { check_id: string; resource: string; file_path: string }[];
      skipped_checks: { check_id: string; resource: string; file_path: string; check_result: { result: string; suppress_comment?: string } }[];
      passed_checks: { file_path: string }[];
    };
    summary: { passed: number; failed: number; skipped: number; parsing_errors: number; resource_count: number };
  };
  let report: CheckovReport;
  const variants: Record<string, [string, Record<string, string>]> = {
    'template-rds.yaml': [TEMPLATE, {}],
    'template-postgres-tls-schema.yaml': [TEMPLATE, WIDEST_PARAMS],
    'template-memory-internet.yaml': [TEMPLATE, { Datastore: 'memory', DesiredCount: '1', LoadBalancerScheme: 'internet-facing', ClientCidr: '203.0.113.7/32' }],
    // Every resource of the VPC template (NAT, endpoints, flow logs); its other modes are subsets.
    'vpc-endpoints-flowlogs.yaml': [VPC_TEMPLATE, { Egress: 'nat-and-endpoints', FlowLogs: 'true' }],
  };

  beforeAll(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'spicedb-ecs-checkov-'));
    try {
      for (const [name, [source, defaults]] of Object.entries(variants)) writeFileSync(path.join(dir, name), withDefaults(readFileSync(source, 'utf8'), defaults));
      const run = await runTool(component('CHECKOV_BIN'), ['--directory', dir, '--framework', 'cloudformation', '--output', 'json', '--skip-download']);
      timings.checkov = run.ms;
      const parsed = JSON.parse(run.stdout) as CheckovReport | CheckovReport[];
      report = Array.isArray(parsed) ? (parsed.find((r) => r.check_type === 'cloudformation') as CheckovReport) : parsed;
      if (!report) throw new Error(`no cloudformation report from checkov:\n${run.output.slice(-3000)}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails no check in any configuration, and parses every file', () => {
    timings.checkovResults = report.summary.passed + report.summary.skipped;
    expect(report.results.failed_checks.map((c) => `${path.basename(c.file_path)} ${c.resource} ${c.check_id}`)).toEqual([]);
    expect(report.summary.parsing_errors).toBe(0);
    // Every configuration was scanned (a file checkov cannot read yields no checks at all).
    const scanned = new Set([...report.results.skipped_checks, ...report.results.passed_checks].map((c) => path.basename(c.file_path)));
    expect([...scanned].sort()).toEqual(Object.keys(variants).sort());
  });

  it('skips only with a written reason, given inline in the template', () => {
    expect(report.results.skipped_checks.length).toBeGreaterThan(0);
    for (const c of report.results.skipped_checks) {
      expect([c.check_id, c.resource, (c.check_result.suppress_comment ?? '').length >= 20]).toEqual([c.check_id, c.resource, true]);
    }
    // And the same from the templates themselves: every checkov skip has a comment.
    for (const file of [TEMPLATE, VPC_TEMPLATE]) {
      for (const [id, res] of Object.entries(loadTemplate(file).Resources)) {
        const skips = ((res.Metadata?.checkov as { skip?: { id: string; comment?: string }[] } | undefined)?.skip ?? []) as { id: string; comment?: string }[];
        for (const s of skips) expect([id, s.id, (s.comment ?? '').length >= 20]).toEqual([id, s.id, true]);
      }
    }
  });
});

describe('sam build', () => {
  let build: SamBuild;
  const modules = (): string[] => readdirSync(path.join(ROOT, 'node_modules')).sort();
  let modulesBefore: string[];
  let lockBefore: number;

  beforeAll(async () => {
    modulesBefore = modules();
    lockBefore = statSync(path.join(ROOT, 'package-lock.json')).mtimeMs;
    build = await samBuild(TEMPLATE);
    timings.samBuild = build.ms;
  });
  afterAll(() => build?.remove());

  it('bundles every function of the template from its esbuild metadata, with a source map', () => {
    const built = loadTemplate(build.template);
    const functions = resourcesOfType(loadTemplate(TEMPLATE), 'AWS::Serverless::Function').map(([id]) => id);
    expect(functions).toHaveLength(4);
    for (const id of functions) {
      const codeUri = String(built.Resources[id]?.Properties?.CodeUri);
      const dir = path.resolve(path.dirname(build.template), codeUri);
      expect([id, readdirSync(dir).sort()]).toEqual([id, ['handler.js', 'handler.js.map']]);
      const size = statSync(path.join(dir, 'handler.js')).size;
      expect(size).toBeGreaterThan(10_000);
      timings[`bundle ${id} (KiB)`] = Math.round(size / 1024);
    }
  });

  it('produces bundles the Lambda runtime can load: valid syntax, a `handler` export', async () => {
    for (const id of ['RegistrarFunction', 'ReconcilerFunction', 'MigrationFunction', 'SchemaFunction']) {
      const file = path.join(build.buildDir, id, 'handler.js');
      const check = await runTool(process.execPath, ['--check', file]);
      expect([id, check.code, check.output]).toEqual([id, 0, '']);
      // CommonJS, minified: the export is assigned on module.exports.
      expect(readFileSync(file, 'utf8')).toMatch(/handler:\(\)=>/);
    }
  });

  it('leaves node_modules and package-lock.json as they were (no npm install in the repository)', () => {
    expect(modules()).toEqual(modulesBefore);
    expect(statSync(path.join(ROOT, 'package-lock.json')).mtimeMs).toBe(lockBefore);
  });
});

describe('samconfig.toml and parameter files, as SAM reads them', () => {
  it('turns samconfig\'s overrides plus a parameter file into the values the template accepts, multi-line ones included', async () => {
    const paramsFile = path.join(ROOT, 'test', 'events', 'template', 'schema-parameters.yaml');
    const script = [
      'import json, sys, tomllib',
      'from samcli.cli.types import CfnParameterOverridesType',
      'cfg = tomllib.load(open(sys.argv[1], "rb"))',
      'out = {}',
      'for env in ("default", "quickstart"):',
      '    po = cfg[env]["deploy"]["parameters"]["parameter_overrides"] + ["file://" + sys.argv[2]]',
      '    out[env] = CfnParameterOverridesType().convert(po, None, None)',
      'print(json.dumps(out))',
    ].join('\n');
    const run = await runTool(toolsPython(), ['-c', script, path.join(ROOT, 'samconfig.toml'), paramsFile]);
    expect(run.code).toBe(0);
    const parsed = JSON.parse(run.stdout) as Record<string, Record<string, string>>;
    const params = loadTemplate(TEMPLATE).Parameters ?? {};
    for (const [env, values] of Object.entries(parsed)) {
      for (const [name, value] of Object.entries(values)) {
        const p = params[name];
        expect([env, name, p !== undefined]).toEqual([env, name, true]);
        if (typeof p?.AllowedPattern === 'string') {
          // CloudFormation matches AllowedPattern against the whole value (Java regex).
          expect([name, new RegExp(`^(?:${p.AllowedPattern})$`).test(value)]).toEqual([name, true]);
        }
        if (Array.isArray(p?.AllowedValues)) expect((p.AllowedValues as Json[]).map(String)).toContain(value);
        // A CloudFormation parameter value is at most 4096 bytes.
        expect(Buffer.byteLength(value)).toBeLessThanOrEqual(4096);
      }
    }
    expect(parsed.default?.Schema).toContain('\n  relation reader: user\n');
    expect(parsed.quickstart).toMatchObject({ Datastore: 'memory', DesiredCount: '1' });
    expect(parsed.default?.AssertTrue?.split('\n')).toEqual(['post:1#read@user:emilia', 'post:1#read@user:beatrice']);
  });
});

describe('scripts', () => {
  it.each(['scripts/deploy.sh', 'scripts/mirror-images.sh'])('%s parses (bash -n)', async (script) => {
    const run = await runTool('bash', ['-n', path.join(ROOT, script)]);
    expect([run.code, run.output]).toEqual([0, '']);
  });

  it('mirror-images.sh copies the images the template defaults to, keeping their tags', async () => {
    const params = loadTemplate(TEMPLATE).Parameters ?? {};
    const run = await runTool('bash', [path.join(ROOT, 'scripts/mirror-images.sh'), '--dry-run', '--region', 'eu-west-1']);
    expect(run.code).toBe(0);
    const spicedb = String(params.SpiceDBImage?.Default);
    const sidecar = String(params.DrainSidecarImage?.Default);
    expect(run.stdout.trim().split('\n')).toEqual([
      `${spicedb} -> ACCOUNT.dkr.ecr.eu-west-1.amazonaws.com/spicedb-ecs/spicedb:${spicedb.split(':').pop()} (all platforms)`,
      `${sidecar} -> ACCOUNT.dkr.ecr.eu-west-1.amazonaws.com/spicedb-ecs/busybox:${sidecar.split(':').pop()} (all platforms)`,
    ]);
  });

  it('mirror-images.sh refuses an unpinned image before doing anything', async () => {
    const run = await runTool('bash', [path.join(ROOT, 'scripts/mirror-images.sh'), '--dry-run', '--spicedb', 'authzed/spicedb:latest']);
    expect([run.code, run.stderr.trim()]).toEqual([1, 'mirror-images: authzed/spicedb:latest: pin a release tag, not latest']);
  });
});
