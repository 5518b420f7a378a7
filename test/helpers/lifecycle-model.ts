/**
 * Random task lifecycles for property tests: a few tasks, each taken some
 * way along a path (scale-in, crash, turned unhealthy), their state changes
 * interleaved at random, and each event delivered zero, one or two times
 * after a random delay (dropped, duplicated, out of order). ECS's state
 * (DescribeTasks) follows the emissions; the registrar sees the deliveries.
 */
import fc from 'fast-check';
import { EcsTask, ESSENTIAL_EXITED, SCALE_IN, type EcsTaskStateChangeEvent, type LifecycleStep, type StopCause } from '../../scripts/rig/ecs-events';
import type { DiscoveryTarget } from '../../functions/shared/discovery/target';

export type Path = 'scale-in' | 'crash' | 'unhealthy';

export interface TaskPlan {
  path: Path;
  healthChecked: boolean;
  /** How many steps of the path happen (clamped to the path's length; 0 = never started). */
  cut: number;
}

export interface Delivery {
  /** 0 = lost, 2 = delivered twice. */
  copies: number;
  /** Emissions that pass before (each) delivery. */
  delay: number;
}

export interface Scenario {
  tasks: TaskPlan[];
  /** Random keys that interleave the tasks' steps. */
  order: number[];
  deliveries: Delivery[];
}

export const MAX_TASKS = 6;
const MAX_EVENTS = MAX_TASKS * 10;

/** The steps of a path, and the stop cause its stop events carry. */
export function pathSteps(plan: Pick<TaskPlan, 'path' | 'healthChecked'>): { steps: LifecycleStep[]; cause: StopCause } {
  const start: LifecycleStep[] = plan.healthChecked ? ['PROVISIONING', 'PENDING', 'RUNNING', 'HEALTHY'] : ['PROVISIONING', 'PENDING', 'RUNNING'];
  const stop: LifecycleStep[] = ['STOP_REQUESTED', 'DEACTIVATING', 'STOPPING', 'DEPROVISIONING', 'STOPPED'];
  switch (plan.path) {
    case 'crash':
      // An essential container exits: the first stop event is already STOPPING.
      return { steps: [...start, 'STOPPING', 'DEPROVISIONING', 'STOPPED'], cause: ESSENTIAL_EXITED };
    case 'unhealthy':
      return { steps: plan.healthChecked ? [...start, 'UNHEALTHY', ...stop] : [...start, ...stop], cause: SCALE_IN };
    default:
      return { steps: [...start, ...stop], cause: SCALE_IN };
  }
}

export const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  tasks: fc.array(fc.record({ path: fc.constantFrom<Path>('scale-in', 'crash', 'unhealthy'), healthChecked: fc.boolean(), cut: fc.nat({ max: 11 }) }), { minLength: 1, maxLength: MAX_TASKS }),
  order: fc.array(fc.nat(), { minLength: MAX_EVENTS, maxLength: MAX_EVENTS }),
  deliveries: fc.array(fc.record({ copies: fc.constantFrom(0, 1, 1, 1, 2), delay: fc.nat({ max: 12 }) }), { minLength: MAX_EVENTS, maxLength: MAX_EVENTS }),
});

export type Action = { kind: 'emit'; task: number } | { kind: 'deliver'; event: number };

export interface Timeline {
  tasks: EcsTask[];
  /** Steps (task index per emission) in emission order. */
  actions: Action[];
}

/** Builds the tasks and the merged order of emissions and deliveries. */
export function timeline(s: Scenario, target: DiscoveryTarget): Timeline {
  const tasks = s.tasks.map(
    (p, i) => new EcsTask({ clusterArn: target.clusterArn, serviceName: target.serviceName, ip: `10.0.7.${i + 1}`, healthChecked: p.healthChecked, taskDefinitionArn: taskDefinitionFor(target, p.healthChecked) }),
  );
  const tokens: { task: number; key: number }[] = [];
  s.tasks.forEach((p, task) => {
    const n = Math.min(p.cut, pathSteps(p).steps.length);
    for (let k = 0; k < n; k++) tokens.push({ task, key: s.order[tokens.length] ?? 0 });
  });
  const emissions = [...tokens].sort((a, b) => a.key - b.key).map((t) => t.task);
  const timed: { at: number; action: Action }[] = emissions.map((task, j) => ({ at: j, action: { kind: 'emit', task } }));
  emissions.forEach((_task, j) => {
    const d = s.deliveries[j] ?? { copies: 1, delay: 0 };
    for (let c = 0; c < d.copies; c++) timed.push({ at: j + d.delay * (c + 1) + 0.5 + c * 0.01, action: { kind: 'deliver', event: j } });
  });
  timed.sort((a, b) => a.at - b.at);
  return { tasks, actions: timed.map((t) => t.action) };
}

/** One task definition revision with a health check, one without. */
export function taskDefinitionFor(target: DiscoveryTarget, healthChecked: boolean): string {
  const prefix = target.clusterArn.replace(/:cluster\/.*$/, ':task-definition/spicedb');
  return `${prefix}:${healthChecked ? 1 : 2}`;
}

/** Whether the task should be in Cloud Map in its current state. */
export function shouldBeRegistered(t: EcsTask): boolean {
  const { lastStatus, desiredStatus, healthStatus } = t.status;
  return lastStatus === 'RUNNING' && desiredStatus === 'RUNNING' && (healthStatus === 'HEALTHY' || (!t.healthChecked && healthStatus === 'UNKNOWN'));
}

export interface Runner {
  /** ECS moved on: show `task` as DescribeTasks would. */
  emitted(task: EcsTask, event: EcsTaskStateChangeEvent): void;
  deliver(event: EcsTaskStateChangeEvent): Promise<void>;
  /** Task ids in Cloud Map now. */
  registered(): Promise<Set<string>>;
}

/**
 * Plays a scenario. Checks the drain guarantee after every delivery: once a
 * stop event of a task was handled, that task is not in Cloud Map. Returns
 * the tasks for the final check.
 */
export async function play(s: Scenario, target: DiscoveryTarget, runner: Runner, opts: { checkEachStep?: boolean } = {}): Promise<EcsTask[]> {
  const { tasks, actions } = timeline(s, target);
  const events: EcsTaskStateChangeEvent[] = [];
  const stopSeen = new Set<string>();
  for (const a of actions) {
    if (a.kind === 'emit') {
      const t = tasks[a.task] as EcsTask;
      const plan = s.tasks[a.task] as TaskPlan;
      const { steps, cause } = pathSteps(plan);
      const next = steps[t.version];
      if (!next) throw new Error('timeline emitted past the end of a path');
      const event = t.step(next, cause);
      events.push(event);
      runner.emitted(t, event);
    } else {
      const event = events[a.event] as EcsTaskStateChangeEvent;
      await runner.deliver(structuredClone(event));
      if (event.detail.desiredStatus === 'STOPPED' || ['DEACTIVATING', 'STOPPING', 'DEPROVISIONING', 'STOPPED'].includes(event.detail.lastStatus)) {
        stopSeen.add(event.detail.taskArn.slice(event.detail.taskArn.lastIndexOf('/') + 1));
      }
      if (opts.checkEachStep !== false && stopSeen.size > 0) {
        const now = await runner.registered();
        const leaked = [...stopSeen].filter((id) => now.has(id));
        if (leaked.length > 0) throw new Error(`tasks ${leaked.join(', ')} are in Cloud Map after their stop event was handled`);
      }
    }
  }
  return tasks;
}
