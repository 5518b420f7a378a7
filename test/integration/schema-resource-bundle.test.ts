/**
 * The code Lambda runs: the esbuild bundle of SchemaFunction, loaded with
 * require() as the Node runtime loads `handler.handler`. It is the bundle
 * `tsx scripts/build.ts` wrote (dist/SchemaFunction/handler.js), or, when
 * the sources are newer than that, the same build (template.yaml's esbuild
 * options) into a temporary folder. Without SchemaFunction in template.yaml
 * the entry point is bundled with the agreed settings (CodeUri ., EntryPoints
 * functions/schema-resource/handler.ts, CommonJS).
 */
import { build } from 'esbuild';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { functionBuilds } from '../../scripts/build';
import { ROOT } from '../../scripts/rig/components';
import { invoke, request, startSchemaRig, type Handler, type SchemaRig } from './schema-resource-rig';

let rig: SchemaRig;
let bundled: Handler;
let source = '';

/** The newest modification time of the sources a bundle is made of. */
function newestSource(dir = path.join(ROOT, 'functions')): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

async function schemaBundle(): Promise<string> {
  const fromTemplate = functionBuilds().find((f) => f.logicalId === 'SchemaFunction');
  if (fromTemplate) {
    // dist/ as scripts/build.ts left it, unless the sources changed since.
    if (existsSync(fromTemplate.bundle) && statSync(fromTemplate.bundle).mtimeMs >= newestSource()) return fromTemplate.bundle;
    const out = mkdtempSync(path.join(tmpdir(), 'schema-bundle-'));
    rig.cleanup.defer(() => rmSync(out, { recursive: true, force: true }));
    await build({ ...fromTemplate.options, outdir: out });
    return path.join(out, path.basename(fromTemplate.bundle));
  }
  const out = mkdtempSync(path.join(tmpdir(), 'schema-bundle-'));
  rig.cleanup.defer(() => rmSync(out, { recursive: true, force: true }));
  await build({
    entryPoints: [path.join(ROOT, 'functions/schema-resource/handler.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'es2022',
    outdir: out,
    entryNames: '[name]',
    logLevel: 'warning',
  });
  return path.join(out, 'handler.js');
}

beforeAll(async () => {
  rig = await startSchemaRig();
  const file = await schemaBundle();
  source = path.relative(ROOT, file).startsWith('dist') ? path.relative(ROOT, file) : `a bundle built by this test (${file})`;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(file) as { handler?: Handler };
  if (typeof mod.handler !== 'function') throw new Error(`${file} exports no handler function`);
  bundled = mod.handler;
}, 180_000);
afterAll(() => rig.cleanup.runAll());

describe('the bundled SchemaFunction', () => {
  it('creates the schema and seed, and deletes the seed on Delete', async () => {
    console.log(`bundled SchemaFunction under test: ${source}`);
    const props = rig.props({ DeleteMode: 'delete-relationships', Relationships: ['post:z1#writer@user:sid'], Assertions: { AssertTrue: ['post:z1#write@user:sid'] } });
    const created = await invoke(rig, bundled, request(rig, 'Create', props));
    expect(created).toMatchObject({ Status: 'SUCCESS', Data: { RelationshipsTouched: '1', AssertionsChecked: '1' } });
    expect(await rig.relationships('post')).toEqual(['post:z1#writer@user:sid']);
    const deleted = await invoke(rig, bundled, request(rig, 'Delete', props, { physicalId: created.PhysicalResourceId }));
    expect(deleted).toMatchObject({ Status: 'SUCCESS', Data: { RelationshipsDeleted: '1' } });
    expect(await rig.relationships('post')).toEqual([]);
  });

  it('answers FAILED for bad input like the source does', async () => {
    const res = await invoke(rig, bundled, request(rig, 'Create', rig.props({ DeleteMode: 'wipe' })));
    expect(res).toMatchObject({ Status: 'FAILED', Reason: 'invalid properties: DeleteMode: expected one of "keep", "delete-relationships", got "wipe"' });
  });
});
