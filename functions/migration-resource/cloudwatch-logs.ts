/**
 * The end of the migration container's log stream, for the Reason of a
 * failed migration: CloudWatch Logs GetLogEvents through the SDK.
 */
import { GetLogEventsCommand, type CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';

/** Reads the end of a log stream. */
export interface LogTail {
  /** The last `limit` messages, oldest first; undefined when the stream does not exist. */
  lastMessages(logGroupName: string, logStreamName: string, limit: number): Promise<string[] | undefined>;
}

/** LogTail over CloudWatch Logs GetLogEvents. */
export function cloudWatchLogTail(logs: CloudWatchLogsClient): LogTail {
  return {
    async lastMessages(logGroupName, logStreamName, limit) {
      try {
        const out = await logs.send(new GetLogEventsCommand({ logGroupName, logStreamName, limit, startFromHead: false }));
        return (out.events ?? []).map((e) => e.message ?? '');
      } catch (err) {
        if (err instanceof Error && err.name === 'ResourceNotFoundException') return undefined;
        throw err;
      }
    },
  };
}
