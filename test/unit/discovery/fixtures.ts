/**
 * ECS event fixtures (test/events/ecs/*.json, cloned per call) and their
 * DescribeTasks view: the same task with the attachment spelled
 * `ElasticNetworkInterface` and Date timestamps, as the SDK returns it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Task } from '@aws-sdk/client-ecs';
import type { EventBridgeEvent } from 'aws-lambda';
import type { EcsTaskDetail } from '../../../scripts/rig/ecs-events';

export type Fixture = 'task-running' | 'task-provisioning' | 'task-stop-requested' | 'task-stopped';
export type EcsEvent = EventBridgeEvent<'ECS Task State Change', EcsTaskDetail>;

const dir = path.join(__dirname, '..', '..', 'events', 'ecs');

/** A fresh copy of a fixture event. */
export function ecsEvent(name: Fixture): EcsEvent {
  return JSON.parse(readFileSync(path.join(dir, `${name}.json`), 'utf8')) as EcsEvent;
}

const TIMESTAMPS = ['connectivityAt', 'createdAt', 'pullStartedAt', 'pullStoppedAt', 'startedAt', 'stoppingAt', 'executionStoppedAt', 'stoppedAt', 'updatedAt'] as const;

/** DescribeTasks' view of an event's task. */
export function describeView(detail: EcsTaskDetail): Task {
  const task = structuredClone(detail) as unknown as Record<string, unknown>;
  task.attachments = detail.attachments.map((a) => ({ ...a, type: a.type === 'eni' ? 'ElasticNetworkInterface' : a.type }));
  for (const k of TIMESTAMPS) if (typeof detail[k] === 'string') task[k] = new Date(detail[k] as string);
  delete task.updatedAt; // DescribeTasks has no updatedAt
  return task as Task;
}
