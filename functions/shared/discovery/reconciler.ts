/**
 * The reconciler: makes the Cloud Map service hold exactly the service's
 * tasks that are RUNNING, meant to run and healthy (the registrar's rule,
 * `decide`), so a lost or dead-lettered event costs at most one period.
 *
 * Steps: read the instances (all pages), list the service's tasks with
 * desiredStatus RUNNING (all pages) and describe them (batches of 100),
 * deregister the stale, register the missing or changed, then re-check the
 * registered tasks and undo any that began stopping meanwhile. Only reads
 * happen when nothing changed.
 */
import { logger } from '../logger';
import { CloudMapService } from './cloud-map';
import { attributesMatch, decide, isTargetTask, type Attributes } from './decide';
import { Caller, tuning, type ApiCalls, type DiscoveryDeps } from './deps';
import { describeTasks, hasHealthCheck, listServiceTaskArns } from './ecs-tasks';
import { isStopping } from './task';

export type { DiscoveryDeps, DiscoveryOptions } from './deps';

/** What one reconcile changed (task ids), and the AWS requests it took. */
export interface ReconcileSummary {
  /** Registered (missing, or with different attributes). */
  added: string[];
  /** Deregistered (no longer running, or began stopping while being added). */
  removed: string[];
  /** Already registered as they should be. */
  kept: string[];
  calls: ApiCalls;
}

/** One reconcile pass. Throws after finishing the other changes if any change failed. */
export async function reconcile(deps: DiscoveryDeps): Promise<ReconcileSummary> {
  const { target } = deps;
  const caller = new Caller(tuning(deps.options));
  const cloudMap = new CloudMapService(deps.serviceDiscovery, caller, target.cloudMapServiceId);

  // Instances before tasks: a task the registrar adds in between is then
  // seen as running and registered again (an upsert), never removed.
  const instances = await cloudMap.list();
  const arns = await listServiceTaskArns(deps.ecs, caller, target);
  const { tasks } = await describeTasks(deps.ecs, caller, target.clusterArn, arns);

  const wanted = new Map<string, { taskArn: string; attributes: Attributes }>();
  const healthChecked = (arn: string) => hasHealthCheck(deps.ecs, caller, arn);
  // moto ignores ListTasks' serviceName: the group check keeps other services out.
  for (const task of tasks.filter((t) => isTargetTask(t, target))) {
    const d = await decide(task, target, healthChecked);
    if (d.register) wanted.set(task.taskId, { taskArn: task.taskArn, attributes: d.attributes });
  }

  const stale = [...instances.keys()].filter((id) => !wanted.has(id));
  const missing = [...wanted].filter(([id, w]) => !attributesMatch(instances.get(id), w.attributes));
  const summary: ReconcileSummary = {
    added: [],
    removed: [],
    kept: [...wanted.keys()].filter((id) => attributesMatch(instances.get(id), wanted.get(id)?.attributes ?? {})),
    calls: caller.calls,
  };
  const errors: unknown[] = [];
  const attempt = async (step: () => Promise<void>) => {
    try {
      await step();
    } catch (err) {
      errors.push(err);
    }
  };
  const limit = caller.tuning.concurrency;

  // Removals first: a stopping task the registrar missed must leave DNS soonest.
  await forEachLimit(stale, limit, (id) =>
    attempt(async () => {
      if (await cloudMap.deregister(id)) summary.removed.push(id);
    }),
  );
  await forEachLimit(missing, limit, ([id, w]) =>
    attempt(async () => {
      await cloudMap.register(id, w.attributes);
      summary.added.push(id);
    }),
  );
  // A stop between DescribeTasks and the registration must not stay in DNS.
  if (summary.added.length > 0) {
    const addedArns = summary.added.map((id) => wanted.get(id)?.taskArn).filter((a): a is string => a !== undefined);
    await attempt(async () => {
      const now = await describeTasks(deps.ecs, caller, target.clusterArn, addedArns);
      const running = new Set(now.tasks.filter((t) => !isStopping(t)).map((t) => t.taskId));
      const undo = summary.added.filter((id) => !running.has(id));
      await forEachLimit(undo, limit, (id) =>
        attempt(async () => {
          if (await cloudMap.deregister(id)) summary.removed.push(id);
        }),
      );
    });
  }

  logger.info(`reconciled: added ${summary.added.length}, removed ${summary.removed.length}, kept ${summary.kept.length}`, {
    added: summary.added,
    removed: summary.removed,
    kept: summary.kept.length,
    tasks: tasks.length,
    instances: instances.size,
    calls: caller.calls,
    errors: errors.length,
  });
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, `reconcile: ${errors.length} Cloud Map changes failed`);
  return summary;
}

/** Runs `fn` over `items`, at most `limit` at a time. */
async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
}
