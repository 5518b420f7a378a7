/**
 * docs/discovery.md states the drain rule with numbers; they must be the
 * ones in functions/shared/drain.ts, which the template and tests use.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as drain from '../../../functions/shared/drain';

const doc = readFileSync(path.join(__dirname, '..', '..', '..', 'docs', 'discovery.md'), 'utf8');
const documented = new Map([...doc.matchAll(/^\| `([A-Z_]+)` \| (\d+) \|/gm)].map((m) => [m[1] as string, Number(m[2])]));

describe('docs/discovery.md', () => {
  it.each(['DNS_TTL_SECONDS', 'RESOLVER_MIN_INTERVAL_SECONDS', 'MAX_CONN_AGE_SECONDS', 'MARGIN_SECONDS', 'DRAIN_SECONDS', 'DRAIN_SIDECAR_STOP_TIMEOUT_SECONDS'] as const)(
    'states %s as in drain.ts',
    (name) => {
      expect(documented.get(name)).toBe(drain[name]);
    },
  );

  it('writes the sum out with the same terms', () => {
    const { DNS_TTL_SECONDS, RESOLVER_MIN_INTERVAL_SECONDS, MAX_CONN_AGE_SECONDS, MARGIN_SECONDS } = drain;
    expect(doc).toContain(`${DNS_TTL_SECONDS} + ${RESOLVER_MIN_INTERVAL_SECONDS} + ${MAX_CONN_AGE_SECONDS} × ${1 + drain.MAX_CONN_AGE_JITTER} + ${MARGIN_SECONDS}`);
    expect(doc).toContain(`within \`FARGATE_MAX_STOP_TIMEOUT_SECONDS\` (${drain.FARGATE_MAX_STOP_TIMEOUT_SECONDS})`);
  });
});
