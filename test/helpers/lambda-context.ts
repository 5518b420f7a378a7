/**
 * A fake Lambda Context whose remaining time counts down from a settable
 * budget, so tests can make an invocation "about to time out".
 */
import type { Context } from 'aws-lambda';

export interface FakeContext extends Context {
  /** Restarts the countdown from `ms`. */
  setRemainingMs(ms: number): void;
}

export function lambdaContext(remainingMs = 60_000, functionName = 'SchemaFunction'): FakeContext {
  let deadline = Date.now() + remainingMs;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${functionName}`,
    memoryLimitInMB: '256',
    awsRequestId: `req-${Math.random().toString(16).slice(2)}`,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: '2026/01/01/[$LATEST]0123456789abcdef',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    setRemainingMs(ms: number) {
      deadline = Date.now() + ms;
    },
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}
