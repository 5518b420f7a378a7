/**
 * Merges the benchmark fragments docs/benchmarks/*.md into docs/benchmarks.md:
 * a header with the machine (CPU model, cores, memory, Node and SpiceDB
 * versions, date), a table of this run's steps from scripts/bench.sh (so a
 * failed or missing benchmark shows), then each fragment with its headings
 * moved one level down. A fragment not rewritten by this run is kept, marked
 * with the date it was written.
 *
 * Usage: npx tsx scripts/bench-report.ts [--status .cache/results/bench-status.tsv] [--started ISO-8601]
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FRAGMENTS_DIR, machine, markdownTable, RESULTS_DIR, today } from './bench-lib';
import { ROOT } from './rig/components';

/** The suite's order; other fragments follow alphabetically. */
const ORDER = ['seed', 'cluster', 'startup', 'reconciler'];
const TITLES: Record<string, string> = {
  setup: 'set-up (scripts/setup.sh)',
  bundles: 'bundles (scripts/build.ts)',
  seed: '1. seeding',
  cluster: '2.+3. discovery and scale-in',
  startup: '4. Lambda start-up',
  reconciler: '5. reconciler scale',
};

interface Step {
  name: string;
  result: string;
  seconds: number;
  log: string;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function readStatus(file: string | undefined): Step[] {
  if (!file || !existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const [name = '', result = '', seconds = '0', log = ''] = l.split('\t');
      return { name, result, seconds: Number(seconds), log };
    });
}

/** The version the binary reports, else the pinned one. */
function spicedbVersion(pinned: string): string {
  try {
    const bin = readFileSync(path.join(ROOT, '.cache', 'components.env'), 'utf8').match(/^SPICEDB_BIN=(.*)$/m)?.[1];
    if (!bin) return pinned;
    const out = execFileSync(bin, ['version'], { encoding: 'utf8', timeout: 20_000, stdio: ['ignore', 'pipe', 'ignore'] });
    return /v\d+\.\d+\.\d+\S*/.exec(out)?.[0] ?? pinned;
  } catch {
    return pinned;
  }
}

/** The headings outside fenced code blocks: line index, level, text. */
function headings(lines: readonly string[]): { index: number; level: number; text: string }[] {
  let fenced = false;
  const out: { index: number; level: number; text: string }[] = [];
  lines.forEach((line, index) => {
    if (/^\s*```/.test(line)) fenced = !fenced;
    const h = fenced ? null : /^(#{1,6}) (.+)$/.exec(line);
    if (h?.[1] && h[2]) out.push({ index, level: h[1].length, text: h[2].trim() });
  });
  return out;
}

/**
 * A fragment as a section of the report: its top heading level becomes `##`
 * (fragments start with `#` or `##`), the rest keep their relative depth.
 */
function asSection(markdown: string, name: string): { title: string; body: string } {
  const lines = markdown.split('\n');
  const hs = headings(lines);
  const top = Math.min(...hs.map((h) => h.level));
  const shift = hs.length ? 2 - top : 0;
  for (const h of hs) lines[h.index] = `${'#'.repeat(Math.min(6, h.level + shift))} ${h.text}`;
  const title = hs.find((h) => h.level === top)?.text;
  if (title === undefined) lines.unshift(`## ${name}`, '');
  return { title: title ?? name, body: lines.join('\n') };
}

const anchor = (title: string): string =>
  title
    .toLowerCase()
    .replace(/[^\p{L}\p{N} -]/gu, '')
    .trim()
    .replace(/ /g, '-');

function main(): void {
  const steps = readStatus(arg('--status') ?? path.join(RESULTS_DIR, 'bench-status.tsv'));
  const startedArg = arg('--started');
  const started = startedArg ? Date.parse(startedArg) : undefined;
  const files = existsSync(FRAGMENTS_DIR) ? readdirSync(FRAGMENTS_DIR).filter((f) => f.endsWith('.md')) : [];
  const names = files.map((f) => f.slice(0, -3)).sort((a, b) => {
    const ia = ORDER.indexOf(a);
    const ib = ORDER.indexOf(b);
    return (ia < 0 ? ORDER.length : ia) - (ib < 0 ? ORDER.length : ib) || a.localeCompare(b);
  });

  const m = machine();
  const sections: string[] = [];
  const toc: string[] = [];
  const titleOf = new Map<string, string>();
  for (const name of names) {
    const file = path.join(FRAGMENTS_DIR, `${name}.md`);
    const { title, body: section } = asSection(readFileSync(file, 'utf8').trim(), name);
    titleOf.set(name, title);
    const written = statSync(file).mtime;
    const stale = started !== undefined && written.getTime() < started;
    const note = stale ? `\n\n> Not rewritten by this run: this section is from ${written.toISOString().slice(0, 10)} (see the table above for why).` : '';
    // The note goes right under the section's title.
    const body = section.replace(/^(## .+)$/m, `$1${note}`);
    sections.push(body);
    toc.push(`- [${title}](#${anchor(title)}) (\`docs/benchmarks/${name}.md\`)${stale ? ' (from an earlier run)' : ''}`);
  }

  const stepRows = steps.map((s) => {
    const title = titleOf.get(s.name);
    const where = [title ? `[section](#${anchor(title)})` : '', s.log ? `\`${path.relative(ROOT, s.log)}\`` : ''].filter(Boolean).join(', ');
    return [TITLES[s.name] ?? s.name, s.result, s.result.startsWith('not run') ? '' : s.seconds, where];
  });
  const missing = ORDER.filter((n) => !names.includes(n));

  const md = `# Benchmarks

Generated by \`npm run bench\` (\`scripts/bench.sh\`) on ${today()}.

Machine: ${m.cpuModel}, ${m.cpus} cores, ${m.memoryGiB} GiB memory, ${m.platform}; Node ${m.node}; SpiceDB ${spicedbVersion(m.spicedb)}; moto ${m.moto}; load average ${m.loadAverage.toFixed(1)} when this report was written. No containers and no network: every component (SpiceDB, PostgreSQL, moto) runs as a local process on loopback. The machine is shared with other work, so compare figures within one table (the suite measures each design against its reference side by side, in the same run), not across runs.

${steps.length ? `## This run\n\n${markdownTable(['step', 'result', 'seconds', 'section, log'], stepRows, ['l', 'l', 'r', 'l'])}\n\n` : ''}${missing.length ? `No fragment yet for: ${missing.join(', ')}.\n\n` : ''}## Contents

${toc.join('\n') || '(no fragment in docs/benchmarks/)'}

${sections.join('\n\n')}
`;
  const out = path.join(ROOT, 'docs', 'benchmarks.md');
  writeFileSync(out, md);
  console.log(`wrote ${path.relative(ROOT, out)} (${names.length} section(s)${steps.length ? `, ${steps.filter((s) => s.result.startsWith('FAILED')).length} failed step(s)` : ''})`);
}

main();
