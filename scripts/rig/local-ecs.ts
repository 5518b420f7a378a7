/**
 * ECS service tasks on one machine. A task is a task in the emulator's ECS
 * (RunTask on the Fargate task definition, `group: service:NAME`,
 * `startedBy: ecs-svc/...`, held RUNNING) plus a real `spicedb serve` on its
 * own loopback address (its "private IP") sharing the PostgreSQL datastore,
 * dispatch enabled and resolving its peers through the Cloud Map DNS view.
 * Its lifecycle reaches an injected sink as ECS Task State Change events in
 * ECS's order, so the same registrar code that runs in Lambda keeps Cloud Map
 * in step:
 *
 * - start: PROVISIONING, PENDING, ACTIVATING, RUNNING (health UNKNOWN), RUNNING (HEALTHY).
 * - graceful stop (this design): StopTask; desiredStatus STOPPED while
 *   lastStatus RUNNING (the registrar deregisters); DEACTIVATING; STOPPING;
 *   the drain hold (the sidecar keeps SpiceDB serving); SIGTERM;
 *   DEPROVISIONING; STOPPED.
 * - ECS-native stop: SIGTERM at the same moment as the desiredStatus STOPPED
 *   event, no hold: what ECS's own `serviceRegistries` integration does.
 * - kill: SIGKILL, then events with stopCode EssentialContainerExited.
 */
import { RunTaskCommand, StopTaskCommand, type ECSClient, type Task } from '@aws-sdk/client-ecs';
import { drainSeconds, type DrainTimings } from '../../functions/shared/drain';
import type { CloudMapDns } from './cloudmap-dns';
import type { DiscoveryAws } from './discovery-aws';
import { ESSENTIAL_EXITED, EcsTaskEventStream, SCALE_IN, type EcsTaskState, type EcsTaskStateChangeEvent, type StopCause } from './ecs-events';
import { setEcsTaskTransition } from './moto';
import { loopbackHost, sleep } from './net';
import { startSpiceDB, type SpiceDB } from './spicedb';

/** Where task events go: the registrar, directly or through EventBridge-like delivery. */
export type TaskEventSink = (event: EcsTaskStateChangeEvent) => Promise<void>;

/** The deployment id ECS puts in `startedBy` (the event builder uses the same one). */
export const SERVICE_STARTED_BY = SCALE_IN.stoppedReason.replace(/^.*\(deployment (.+)\)$/, '$1');

export interface LocalEcsOptions {
  ecs: ECSClient;
  /** The emulator, to hold its tasks RUNNING. */
  motoEndpoint: string;
  aws: DiscoveryAws;
  dns: CloudMapDns;
  datastoreUri: string;
  presharedKey: string;
  /** The drain rule's inputs; `maxConnAgeSeconds` becomes --dispatch-cluster-max-conn-age. */
  timings: DrainTimings;
  /** Hold between deregistration and SIGTERM on a graceful stop (default: drainSeconds(timings)). */
  drainHoldMs?: number;
  /** Further `spicedb serve` flags for every task. */
  extraSpiceDBArgs?: string[];
  onEvent: TaskEventSink;
  /** Give each task its own DNS view, so its queries are counted apart (default true). */
  dnsViewPerTask?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
}

export type TaskPhase = 'starting' | 'running' | 'draining' | 'stopped';
export type StopMode = 'graceful' | 'ecs-native';

export interface LocalTask {
  taskArn: string;
  taskId: string;
  /** The task's "private IP": its own loopback address. */
  host: string;
  grpcEndpoint: string;
  dispatchEndpoint: string;
  metricsUrl: string;
  /** `host:port` of the DNS view this task resolves through. */
  dnsEndpoint: string;
  spicedb: SpiceDB;
  phase: TaskPhase;
  /** In the API load balancer's rotation (clients may send it requests). */
  acceptsClients: boolean;
  /** The task's event stream (state, version). */
  events: EcsTaskEventStream;
  /** Epoch ms when the RUNNING (HEALTHY) event had been handled by the sink. */
  healthyAt: number;
}

export interface StopTimeline {
  taskId: string;
  mode: StopMode | 'kill';
  /** Epoch ms: stop decided (the load balancer stops sending the task requests). */
  requestedAt: number;
  /** The first stop event (desiredStatus STOPPED) was handled by the sink: deregistered. */
  deregisteredAt: number;
  /** SIGTERM (or SIGKILL) sent to SpiceDB. */
  signalAt: number;
  /** SpiceDB exited. */
  exitedAt: number;
  /** The STOPPED event was handled. */
  stoppedAt: number;
  holdMs: number;
  exitCode: number | null;
}

const AZS = ['us-east-1a', 'us-east-1b', 'us-east-1c'];

/** What the emulator cannot hold for a task: its real IP and health, and ECS's version counter. */
interface LocalTruth {
  host: string;
  events: EcsTaskEventStream;
}

/** A local ECS service: start, stop (graceful or ECS-native) and kill tasks. */
export class LocalEcs {
  private readonly all: LocalTask[] = [];
  private readonly truth = new Map<string, LocalTruth>();
  private azTurn = 0;
  readonly drainHoldMs: number;

  private constructor(private readonly opts: LocalEcsOptions) {
    this.drainHoldMs = opts.drainHoldMs ?? drainSeconds(opts.timings) * 1000;
  }

  /** Holds the emulator's tasks in their state (each DescribeTasks would otherwise advance them). */
  static async create(opts: LocalEcsOptions): Promise<LocalEcs> {
    // 'manual' advances a task after `times` DescribeTasks calls: never, here.
    await setEcsTaskTransition(opts.motoEndpoint, { progression: 'manual', times: Number.MAX_SAFE_INTEGER });
    return new LocalEcs(opts);
  }

  /**
   * Makes `client`'s DescribeTasks answer with what this machine knows and
   * the emulator cannot: moto gives every task a random 10.x ENI address,
   * no task health and no `version`, starts it RUNNING and marks it STOPPED
   * as soon as StopTask is called. The state of the task's last event is
   * overlaid (its loopback address, health, statuses, version), as real ECS
   * would report it; identity fields (ARNs, group, startedBy) stay the
   * emulator's. Give the registrar and the reconciler a client patched so.
   */
  overlayDescribeTasks(client: ECSClient): ECSClient {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (context.commandName === 'DescribeTasksCommand') {
          const output = result.output as { tasks?: Task[] };
          for (const task of output.tasks ?? []) this.overlay(task);
        }
        return result;
      },
      { step: 'initialize', name: 'localEcsTaskOverlay' },
    );
    return client;
  }

  private overlay(task: Task): void {
    const known = task.taskArn ? this.truth.get(task.taskArn) : undefined;
    if (!known) return;
    const local = known.events.describe();
    task.attachments = local.attachments;
    task.containers = (task.containers ?? []).map((c, i) => ({ ...c, networkInterfaces: local.containers?.[i]?.networkInterfaces ?? [], healthStatus: local.containers?.[i]?.healthStatus }));
    task.healthStatus = local.healthStatus;
    task.lastStatus = local.lastStatus;
    task.desiredStatus = local.desiredStatus;
    task.stopCode = local.stopCode;
    task.stoppedReason = local.stoppedReason;
    task.availabilityZone = local.availabilityZone;
    task.version = local.version;
  }

  /** Tasks in a phase (default: every task not stopped). */
  tasks(...phases: TaskPhase[]): LocalTask[] {
    const want = phases.length > 0 ? phases : (['starting', 'running', 'draining'] as TaskPhase[]);
    return this.all.filter((t) => want.includes(t.phase));
  }

  /** API endpoints in the load balancer's rotation. */
  clientEndpoints(): string[] {
    return this.all.filter((t) => t.acceptsClients).map((t) => t.grpcEndpoint);
  }

  private emit(events: EcsTaskEventStream, state: EcsTaskState): Promise<void> {
    return this.opts.onEvent(events.next(state));
  }

  /**
   * Starts a task and resolves once its RUNNING (HEALTHY) event was handled.
   * `acceptClients: false` keeps it out of the load balancer's rotation, so
   * any dispatch it serves comes from its peers.
   */
  async startTask(options: { acceptClients?: boolean } = {}): Promise<LocalTask> {
    const { ecs, aws, dns } = this.opts;
    const used = new Set(this.all.map((t) => t.host));
    let host = loopbackHost();
    while (used.has(host)) host = loopbackHost();
    const run = await ecs.send(
      new RunTaskCommand({
        cluster: aws.clusterName,
        taskDefinition: aws.taskDefinitionArn,
        launchType: 'FARGATE',
        startedBy: SERVICE_STARTED_BY,
        group: `service:${aws.serviceName}`,
        networkConfiguration: { awsvpcConfiguration: { subnets: [aws.subnetId], securityGroups: [aws.securityGroupId], assignPublicIp: 'DISABLED' } },
      }),
    );
    const taskArn = run.tasks?.[0]?.taskArn;
    if (!taskArn) throw new Error(`RunTask returned no task: ${JSON.stringify(run.failures ?? [])}`);
    const taskId = taskArn.slice(taskArn.lastIndexOf('/') + 1);
    const events = new EcsTaskEventStream({
      clusterArn: aws.clusterArn,
      taskArn,
      taskDefinitionArn: aws.taskDefinitionArn,
      group: `service:${aws.serviceName}`,
      startedBy: SERVICE_STARTED_BY,
      availabilityZone: AZS[this.azTurn++ % AZS.length],
      containerName: aws.containerName,
      image: aws.image,
      sidecars: [{ name: 'drain', image: 'public.ecr.aws/docker/library/busybox:stable' }],
      subnetId: aws.subnetId,
    });
    this.truth.set(taskArn, { host, events });
    const desiredStatus = 'RUNNING';
    await this.emit(events, { lastStatus: 'PROVISIONING', desiredStatus });
    await this.emit(events, { lastStatus: 'PENDING', desiredStatus, ip: host });
    await this.emit(events, { lastStatus: 'ACTIVATING', desiredStatus, ip: host });

    const viewHost = this.opts.dnsViewPerTask === false ? dns.host : host;
    const dnsEndpoint = viewHost === dns.host ? dns.endpoint : await dns.addView(viewHost);
    let spicedb: SpiceDB;
    try {
      spicedb = await startSpiceDB({
        host,
        presharedKey: this.opts.presharedKey,
        datastoreUri: this.opts.datastoreUri,
        dispatch: {
          // Every task listens on the same dispatch port: the DNS name carries only addresses.
          port: aws.dispatchPort,
          upstreamAddr: dns.upstreamAddr(aws.dnsName, aws.dispatchPort, viewHost),
          maxConnAge: `${this.opts.timings.maxConnAgeSeconds}s`,
        },
        extraArgs: this.opts.extraSpiceDBArgs,
        name: `task ${taskId.slice(0, 8)}@${host}`,
      });
    } catch (err) {
      await ecs.send(new StopTaskCommand({ cluster: aws.clusterName, task: taskArn, reason: 'Task failed to start' }));
      await this.emit(events, { lastStatus: 'STOPPED', desiredStatus: 'STOPPED', ip: host, stopCode: 'TaskFailedToStart', stoppedReason: 'Task failed to start', exitCode: 1 });
      if (viewHost !== dns.host) await dns.removeView(viewHost);
      throw err;
    }
    const task: LocalTask = {
      taskArn,
      taskId,
      host,
      grpcEndpoint: spicedb.grpcEndpoint,
      dispatchEndpoint: spicedb.dispatchEndpoint ?? `${host}:${aws.dispatchPort}`,
      metricsUrl: spicedb.metricsUrl,
      dnsEndpoint,
      spicedb,
      phase: 'starting',
      acceptsClients: false,
      events,
      healthyAt: 0,
    };
    this.all.push(task);
    // The container runs before its health check passes: ECS reports RUNNING (UNKNOWN), then HEALTHY.
    await this.emit(events, { lastStatus: 'RUNNING', desiredStatus, ip: host, healthStatus: 'UNKNOWN' });
    await this.emit(events, { lastStatus: 'RUNNING', desiredStatus, ip: host, healthStatus: 'HEALTHY' });
    task.healthyAt = Date.now();
    task.phase = 'running';
    task.acceptsClients = options.acceptClients ?? true;
    this.opts.log?.(`task ${taskId.slice(0, 8)} RUNNING (HEALTHY) at ${host}`);
    return task;
  }

  /** Puts a task into the load balancer's rotation. */
  acceptClients(task: LocalTask): void {
    if (task.phase === 'running') task.acceptsClients = true;
  }

  /**
   * Stops a task as the ECS scheduler does on scale-in. `graceful`: deregister
   * first, SIGTERM after the drain hold. `ecs-native`: SIGTERM with the
   * deregistration. Resolves once the STOPPED event was handled.
   */
  async stopTask(task: LocalTask, mode: StopMode = 'graceful'): Promise<StopTimeline> {
    if (task.phase !== 'running') throw new Error(`task ${task.taskId} is ${task.phase}, not running`);
    const { ecs, aws } = this.opts;
    const requestedAt = Date.now();
    task.phase = 'draining';
    // The load balancer target is deregistered as the stop begins.
    task.acceptsClients = false;
    await ecs.send(new StopTaskCommand({ cluster: aws.clusterName, task: task.taskArn, reason: SCALE_IN.stoppedReason }));
    const stopping = (lastStatus: EcsTaskState['lastStatus']): EcsTaskState => ({ lastStatus, desiredStatus: 'STOPPED', ip: task.host, healthStatus: 'HEALTHY', ...SCALE_IN });
    let signalAt: number;
    let deregisteredAt: number;
    let holdMs = 0;
    if (mode === 'graceful') {
      await this.emit(task.events, stopping('RUNNING'));
      deregisteredAt = Date.now();
      await this.emit(task.events, stopping('DEACTIVATING'));
      await this.emit(task.events, stopping('STOPPING'));
      // The drain sidecar traps SIGTERM; ECS stops SpiceDB (which it depends on) only once the sidecar exits.
      holdMs = this.drainHoldMs;
      // Timers may fire a millisecond early: the hold is a minimum.
      while (Date.now() < deregisteredAt + holdMs) await sleep(deregisteredAt + holdMs - Date.now());
      signalAt = Date.now();
      await task.spicedb.stop();
    } else {
      signalAt = Date.now();
      const exiting = task.spicedb.stop();
      await this.emit(task.events, stopping('RUNNING'));
      deregisteredAt = Date.now();
      await this.emit(task.events, stopping('DEACTIVATING'));
      await this.emit(task.events, stopping('STOPPING'));
      await exiting;
    }
    const exitedAt = Date.now();
    const exitCode = await task.spicedb.process.wait();
    return this.finish(task, { taskId: task.taskId, mode, requestedAt, deregisteredAt, signalAt, exitedAt, holdMs, exitCode }, SCALE_IN, 'HEALTHY');
  }

  /** Kills a task's SpiceDB (SIGKILL), as when it crashes; ECS then reports it stopped. */
  async killTask(task: LocalTask, opts: { eventDelayMs?: number } = {}): Promise<StopTimeline> {
    if (task.phase === 'stopped') throw new Error(`task ${task.taskId} is already stopped`);
    const { ecs, aws } = this.opts;
    const requestedAt = Date.now();
    task.phase = 'draining';
    task.acceptsClients = false;
    const signalAt = Date.now();
    await task.spicedb.kill();
    const exitedAt = Date.now();
    // ECS notices the exit and sends the first stop event only afterwards.
    if (opts.eventDelayMs) await sleep(opts.eventDelayMs);
    await ecs.send(new StopTaskCommand({ cluster: aws.clusterName, task: task.taskArn, reason: ESSENTIAL_EXITED.stoppedReason }));
    await this.emit(task.events, { lastStatus: 'STOPPING', desiredStatus: 'STOPPED', ip: task.host, healthStatus: 'UNHEALTHY', exitCode: 137, ...ESSENTIAL_EXITED });
    const deregisteredAt = Date.now();
    return this.finish(task, { taskId: task.taskId, mode: 'kill', requestedAt, deregisteredAt, signalAt, exitedAt, holdMs: 0, exitCode: 137 }, ESSENTIAL_EXITED, 'UNHEALTHY');
  }

  private async finish(task: LocalTask, t: Omit<StopTimeline, 'stoppedAt'>, stop: StopCause, healthStatus: EcsTaskState['healthStatus']): Promise<StopTimeline> {
    const base = { desiredStatus: 'STOPPED', ip: task.host, healthStatus, exitCode: t.exitCode ?? undefined, ...stop } as const;
    await this.emit(task.events, { ...base, lastStatus: 'DEPROVISIONING' });
    await this.emit(task.events, { ...base, lastStatus: 'STOPPED' });
    task.phase = 'stopped';
    if (task.host !== this.opts.dns.host) await this.opts.dns.removeView(task.host);
    this.opts.log?.(`task ${task.taskId.slice(0, 8)} STOPPED (${t.mode})`);
    return { ...t, stoppedAt: Date.now() };
  }

  /** Kills every task still running (clean-up; sends no events). */
  async stopAll(): Promise<void> {
    await Promise.all(
      this.all
        .filter((t) => t.phase !== 'stopped')
        .map(async (t) => {
          t.acceptsClients = false;
          await t.spicedb.kill();
          t.phase = 'stopped';
        }),
    );
  }
}
