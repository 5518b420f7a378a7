/**
 * The template tools (cfn-lint, sam, checkov) as the tests run them: the
 * components of scripts/setup.sh, offline (telemetry, update checks and the
 * checkov platform download off: nothing leaves the machine), a region but
 * no credentials. `sam build` bundles straight from the repository (see
 * scripts/deploy.sh for why the manifest path must not exist), and the SAM
 * transform is the one cfn-lint and CloudFormation apply (samtranslator).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { component, ROOT } from '../../scripts/rig/components';

/** Environment for the tools: Node 22 and esbuild first on PATH, region set, every phone-home off. */
export function toolEnv(): NodeJS.ProcessEnv {
  // The Node that runs the tests (the Lambda runtime's major, per scripts/test.sh).
  const node = path.dirname(process.execPath);
  const tools = path.dirname(component('SAM_BIN'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: [node, path.join(ROOT, 'node_modules', '.bin'), tools, process.env.PATH].join(path.delimiter),
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_REGION: 'us-east-1',
    // SAM CLI sends usage telemetry unless told not to.
    SAM_CLI_TELEMETRY: '0',
    // checkov checks PyPI for a newer version and downloads platform data unless told not to.
    CKV_SKIP_PACKAGE_UPDATE_CHECK: 'true',
    BC_SKIP_MAPPING: 'TRUE',
  };
  for (const k of ['AWS_ENDPOINT_URL', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE']) delete env[k];
  return env;
}

export interface ToolRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr, for messages. */
  output: string;
  ms: number;
}

/** Runs a tool to completion (any exit code), keeping all of its output, and times it. */
export function runTool(command: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<ToolRun> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { env: toolEnv(), cwd: opts.cwd ?? ROOT, maxBuffer: 512 * 1024 * 1024, timeout: opts.timeoutMs ?? 300_000, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, stdout, stderr, output: `${stdout}${stderr}`, ms: Date.now() - started });
      },
    );
  });
}

/** The Python of the tools' virtualenv (it has samcli and samtranslator). */
export const toolsPython = (): string => path.join(path.dirname(component('SAM_BIN')), 'python');

export interface SamBuild extends ToolRun {
  buildDir: string;
  /** The built template (CodeUri of each function = its bundle's folder). */
  template: string;
  remove(): void;
}

/** `sam build` of template.yaml into a fresh temporary folder; throws with the output when it fails. */
export async function samBuild(templateFile = path.join(ROOT, 'template.yaml')): Promise<SamBuild> {
  const work = mkdtempSync(path.join(tmpdir(), 'spicedb-ecs-sam-'));
  const buildDir = path.join(work, 'build');
  const run = await runTool(component('SAM_BIN'), [
    'build',
    '--template-file',
    templateFile,
    '--build-dir',
    buildDir,
    '--build-in-source',
    '--manifest',
    path.join(work, 'no-package.json'),
  ]);
  if (run.code !== 0) {
    rmSync(work, { recursive: true, force: true });
    throw new Error(`sam build failed (exit ${run.code}):\n${run.output.slice(-4000)}`);
  }
  return { ...run, buildDir, template: path.join(buildDir, 'template.yaml'), remove: () => rmSync(work, { recursive: true, force: true }) };
}

const TRANSFORM = `
import json, sys
from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform

class NoManagedPolicies:
    # The templates name no managed policy; nothing to look up in IAM.
    def load(self):
        return {}

with open(sys.argv[1]) as f:
    template = yaml_parse(f.read())
# What sam package does: each function's code becomes an S3 object.
template.get("Globals", {}).get("Function", {}).pop("CodeUri", None)
for res in template["Resources"].values():
    if res.get("Type") == "AWS::Serverless::Function":
        props = res.setdefault("Properties", {})
        props["CodeUri"] = "s3://bucket/" + str(props.get("CodeUri", "code")).strip("/").split("/")[-1]
json.dump(transform(template, {}, NoManagedPolicies()), sys.stdout)
`;

/** The template after the SAM transform (AWS::Serverless::* expanded), as CloudFormation sees it. */
export async function samTransform<T = unknown>(templateFile: string): Promise<T> {
  const run = await runTool(toolsPython(), ['-c', TRANSFORM, templateFile]);
  if (run.code !== 0) throw new Error(`SAM transform failed (exit ${run.code}):\n${run.output.slice(-4000)}`);
  return JSON.parse(run.stdout) as T;
}
