/**
 * Property: for any set of task lifecycles whose events arrive shuffled,
 * duplicated or not at all, the registrar never leaves a task in Cloud Map
 * after handling one of its stop events, and one reconcile afterwards makes
 * Cloud Map hold exactly the tasks that are RUNNING, meant to run and
 * healthy (or not health-checked). In-memory ECS and Cloud Map; the same
 * property against moto's Cloud Map is in test/integration/discovery-moto.test.ts.
 */
import fc from 'fast-check';
import { logger } from '../../../functions/shared/logger';
import { reconcile } from '../../../functions/shared/discovery/reconciler';
import { handleTaskStateChange, type DiscoveryDeps } from '../../../functions/shared/discovery/registrar';
import { FakeCloudMap, FakeEcs, FAKE_TARGET, FAST } from '../../helpers/discovery-fakes';
import { play, scenarioArb, shouldBeRegistered, timeline } from '../../helpers/lifecycle-model';

beforeAll(() => logger.setLogLevel('SILENT'));

// One pair of fakes, emptied per run: building mocked clients dominates the run time.
const ecs = new FakeEcs();
const cloudMap = new FakeCloudMap(FAKE_TARGET.cloudMapServiceId);
const deps: DiscoveryDeps = { ecs: ecs.client, serviceDiscovery: cloudMap.client, target: FAKE_TARGET, options: FAST };

describe('registrar + reconciler under random delivery', () => {
  it('after one reconcile, Cloud Map holds exactly the running tasks', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (scenario) => {
        ecs.reset();
        cloudMap.reset();
        const tasks = await play(scenario, FAKE_TARGET, {
          emitted: (t) => ecs.put(t.describe(), t.healthChecked),
          deliver: async (e) => void (await handleTaskStateChange(e, deps)),
          registered: () => Promise.resolve(new Set(cloudMap.instances.keys())),
        });
        await reconcile(deps);
        const expected = tasks.filter(shouldBeRegistered).map((t) => t.taskId).sort();
        expect([...cloudMap.instances.keys()].sort()).toEqual(expected);
        // Each instance carries its own task's IP.
        for (const t of tasks.filter(shouldBeRegistered)) expect(cloudMap.instances.get(t.taskId)?.AWS_INSTANCE_IPV4).toBe(t.ip);
      }),
      { numRuns: 300 },
    );
  });

  it('the scenarios cover the interesting cases (drops, duplicates, reordering, every end state)', () => {
    // Guards the generator: a property over trivial scenarios proves nothing.
    const seen = { dropped: 0, duplicated: 0, reordered: 0, registeredAtEnd: 0, stoppedAtEnd: 0, unhealthy: 0 };
    for (const s of fc.sample(scenarioArb, { numRuns: 300, seed: 42 })) {
      const { actions } = timeline(s, FAKE_TARGET);
      const emits = actions.filter((a) => a.kind === 'emit').length;
      const delivered = actions.filter((a) => a.kind === 'deliver').map((a) => (a.kind === 'deliver' ? a.event : -1));
      if (new Set(delivered).size < emits) seen.dropped++;
      if (new Set(delivered).size < delivered.length) seen.duplicated++;
      if (delivered.some((e, i) => i > 0 && e < (delivered[i - 1] ?? 0))) seen.reordered++;
      if (s.tasks.some((p) => p.path === 'unhealthy' && p.healthChecked && p.cut >= 5)) seen.unhealthy++;
      if (s.tasks.some((p) => p.cut === 3 || p.cut === 4)) seen.registeredAtEnd++;
      if (s.tasks.some((p) => p.cut >= 7)) seen.stoppedAtEnd++;
    }
    for (const [k, n] of Object.entries(seen)) expect([k, n > 30]).toEqual([k, true]);
  });
});
