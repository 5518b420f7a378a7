/**
 * What a stopped migration task means: success on exit code 0; otherwise a
 * failure whose message carries the container's last log lines (the task's
 * own words), with credentials masked and trimmed to fit CloudFormation's
 * Reason. SpiceDB's "unable to find migration for revision" is singled out:
 * the datastore is ahead of this image (migrated by a newer release, e.g.
 * during a rollback), which no migration can fix.
 */
import type { Task } from '@aws-sdk/client-ecs';

/** Room for the log tail in the Reason: the whole response must fit 4096 bytes, JSON-escaped. */
export const TAIL_BUDGET_CHARS = 1800;

/** SpiceDB's error when the datastore's revision is not among the binary's migrations. */
const DATASTORE_AHEAD = 'unable to find migration for revision';

/** The migration ran and the container exited 0. */
export interface Success {
  ok: true;
  exitCode: 0;
}

/** The migration did not succeed; `message` is what CloudFormation shows. */
export interface Failure {
  ok: false;
  message: string;
  datastoreAhead: boolean;
}

/** Masks passwords in connection URIs (`scheme://user:PASSWORD@`) and DSNs (`password=...`). */
export function redact(text: string): string {
  return text
    .replace(/([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*):[^\s@/]*@/gi, '$1:***@')
    .replace(/(password\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s,;&"']+)/gi, '$1***');
}

/** One log message, shortened: SpiceDB logs JSON (`level`, `message`, `error`); others pass as they are. */
export function formatLogLine(line: string): string {
  const trimmed = line.trim();
  if (trimmed.startsWith('{')) {
    try {
      const entry = JSON.parse(trimmed) as Record<string, unknown>;
      const level = typeof entry.level === 'string' ? entry.level : undefined;
      const message = typeof entry.message === 'string' ? entry.message : undefined;
      const error = typeof entry.error === 'string' ? entry.error : undefined;
      if (message !== undefined || error !== undefined) {
        return [level, message, error === undefined ? undefined : `error: ${error}`].filter((s) => s !== undefined).join(' ');
      }
    } catch {
      // Not JSON after all: keep the raw line.
    }
  }
  return trimmed;
}

/** The newest lines that fit `budget` characters, oldest first, masked. */
export function tailText(messages: string[], budget = TAIL_BUDGET_CHARS): string {
  const out: string[] = [];
  let used = 0;
  for (let i = messages.length - 1; i >= 0; i--) {
    const line = redact(formatLogLine(messages[i] ?? ''));
    if (line === '') continue;
    if (used + line.length + 1 > budget) {
      if (out.length === 0) out.unshift(`...${line.slice(line.length - (budget - 3))}`);
      break;
    }
    out.unshift(line);
    used += line.length + 1;
  }
  return out.join('\n');
}

const taskId = (taskArn: string): string => taskArn.slice(taskArn.lastIndexOf('/') + 1);

/** How the task ended, in one phrase. */
function howItEnded(task: Task, containerName: string): string {
  const container = task.containers?.find((c) => c.name === containerName);
  const parts: string[] = [];
  if (container?.exitCode !== undefined) parts.push(`container ${containerName} exited with code ${container.exitCode}`);
  else parts.push(`container ${containerName} did not run to an exit code`);
  if (task.stopCode) parts.push(`stop code ${task.stopCode}`);
  if (task.stoppedReason) parts.push(`"${task.stoppedReason}"`);
  if (container?.reason) parts.push(`container reason "${container.reason}"`);
  return parts.join(', ');
}

/**
 * The outcome of a STOPPED task. `messages` is the end of its log stream
 * (undefined when there is none: the container never started).
 */
export function evaluate(task: Task, containerName: string, image: string, messages: string[] | undefined): Success | Failure {
  const container = task.containers?.find((c) => c.name === containerName);
  if (container?.exitCode === 0) return { ok: true, exitCode: 0 };
  const id = taskId(task.taskArn ?? 'unknown');
  const tail = messages === undefined ? '(no log stream: the container never started)' : tailText(messages) || '(the log stream is empty)';
  const ahead = (messages ?? []).some((m) => m.includes(DATASTORE_AHEAD));
  const ended = redact(howItEnded(task, containerName));
  if (ahead) {
    return {
      ok: false,
      datastoreAhead: true,
      message:
        `the datastore was migrated by a newer SpiceDB release than ${image}: SpiceDB has no down migrations, so this image cannot serve it. ` +
        `Keep the newer image (when this is a rollback, continue it skipping the migration and the service). ` +
        `Migration task ${id}: ${ended}. Last log lines:\n${tail}`,
    };
  }
  return { ok: false, datastoreAhead: false, message: `datastore migration with ${image} failed: task ${id}: ${ended}. Last log lines:\n${tail}` };
}
