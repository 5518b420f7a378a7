/**
 * Bundles every function the way `sam build` does: reads each
 * AWS::Serverless::Function's `Metadata.BuildProperties` (BuildMethod
 * esbuild) from template.yaml and runs esbuild with the same options, into
 * dist/<LogicalId>/. Tests, benchmarks and the local stack load these
 * bundles, so they run the code Lambda runs.
 */
import { build, type BuildOptions } from 'esbuild';
import { rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './rig/components';
import { loadTemplate, resourcesOfType, type Json } from './rig/template';

export const DIST = path.join(ROOT, 'dist');

export interface FunctionBuild {
  logicalId: string;
  entryPoint: string;
  /** The bundle's path and the handler export, as Lambda resolves `Handler`. */
  bundle: string;
  handlerExport: string;
  options: BuildOptions;
}

const asStrings = (v: Json | undefined): string[] => (Array.isArray(v) ? v.map(String) : []);

/** The build of each function in the template, as SAM would run it. */
export function functionBuilds(templateFile = path.join(ROOT, 'template.yaml')): FunctionBuild[] {
  const template = loadTemplate(templateFile);
  const globals = template.Globals?.Function ?? {};
  return resourcesOfType(template, 'AWS::Serverless::Function').map(([logicalId, res]) => {
    const meta = res.Metadata ?? {};
    if (meta.BuildMethod !== 'esbuild') throw new Error(`${logicalId}: Metadata.BuildMethod must be esbuild`);
    const props = (meta.BuildProperties ?? {}) as Record<string, Json>;
    const codeUri = String(res.Properties?.CodeUri ?? globals.CodeUri ?? '.');
    const entries = asStrings(props.EntryPoints);
    if (entries.length !== 1) throw new Error(`${logicalId}: expected exactly one EntryPoint`);
    const entryPoint = path.join(ROOT, codeUri, entries[0] as string);
    const handler = String(res.Properties?.Handler ?? globals.Handler);
    const dot = handler.lastIndexOf('.');
    const outdir = path.join(DIST, logicalId);
    const format = props.Format === 'esm' ? 'esm' : 'cjs';
    return {
      logicalId,
      entryPoint,
      bundle: path.join(outdir, `${handler.slice(0, dot)}.${format === 'esm' ? 'mjs' : 'js'}`),
      handlerExport: handler.slice(dot + 1),
      options: {
        entryPoints: [entryPoint],
        bundle: true,
        platform: 'node',
        outdir,
        // SAM names the output after the entry point's base name.
        entryNames: '[name]',
        outExtension: format === 'esm' ? { '.js': '.mjs' } : undefined,
        format,
        target: String(props.Target ?? 'es2022'),
        minify: String(props.Minify ?? 'false') === 'true',
        sourcemap: String(props.Sourcemap ?? 'false') === 'true',
        external: asStrings(props.External),
        logLevel: 'warning',
      },
    };
  });
}

async function main(): Promise<void> {
  rmSync(DIST, { recursive: true, force: true });
  for (const fn of functionBuilds()) {
    await build(fn.options);
    const kb = (statSync(fn.bundle).size / 1024).toFixed(0);
    console.log(`    ${fn.logicalId}: ${path.relative(ROOT, fn.bundle)} (${kb} KiB)`);
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
