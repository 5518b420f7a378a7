/**
 * The always-answer wrapper for Lambda-backed CloudFormation custom resources.
 *
 * CloudFormation waits for a PUT to the presigned ResponseURL; without one the
 * stack hangs until ServiceTimeout. So every path answers: SUCCESS with what
 * the handle returned, FAILED with the error message on any throw, FAILED
 * shortly before the Lambda would time out, and SUCCESS at once for the Delete
 * that follows a failed Create. The body stays within CloudFormation's 4096
 * bytes and the PUT is retried on transient failures.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { CloudFormationCustomResourceEvent, Context } from 'aws-lambda';
import { errorMessage } from './errors';
import { logger } from './logger';

/** CloudFormation rejects response bodies over this many bytes. */
export const MAX_RESPONSE_BYTES = 4096;

/**
 * The PhysicalResourceId a failed Create answers with. CloudFormation follows
 * a failed Create with a Delete of that id, which is then answered at once.
 */
export const FAILED_CREATE_PREFIX = 'failed-create:';

/** True for the id a failed Create answered with. */
export const isFailedCreateId = (id: string | undefined): boolean => id?.startsWith(FAILED_CREATE_PREFIX) ?? false;

/** What a handle is given besides the event. */
export interface HandleContext {
  /** Milliseconds left before the wrapper answers FAILED for lack of time. */
  remainingMs(): number;
  /** Aborted when that time is up. */
  signal: AbortSignal;
}

/** What a handle returns on success. */
export interface HandleResult {
  physicalResourceId: string;
  /** Attributes for Fn::GetAtt; keep small (the whole body must fit 4096 bytes). */
  data?: Record<string, string | number | boolean>;
  noEcho?: boolean;
}

export type Handle = (event: CloudFormationCustomResourceEvent, ctx: HandleContext) => Promise<HandleResult>;

/** Sends one PUT and resolves with the HTTP status; rejects on network errors. */
export type Transport = (url: string, body: Buffer, timeoutMs: number) => Promise<number>;

export interface CustomResourceOptions {
  /** Time kept back from the Lambda's remaining time to answer (default 10 s, at most a third of it). */
  reserveMs?: number;
  /** PUT attempts before giving up (default 6). */
  putAttempts?: number;
  /** First retry delay; doubles each attempt, with jitter (default 250 ms). */
  putBackoffMs?: number;
  /** Timeout of one PUT attempt (default 10 s). */
  putTimeoutMs?: number;
  /** The PUT itself; tests may replace it. */
  transport?: Transport;
}

/** The response document CloudFormation reads from the ResponseURL. */
export interface CustomResourceResponse {
  Status: 'SUCCESS' | 'FAILED';
  Reason?: string;
  PhysicalResourceId: string;
  StackId: string;
  RequestId: string;
  LogicalResourceId: string;
  NoEcho?: boolean;
  Data?: Record<string, string | number | boolean>;
}

/** Raised (as the abort reason) when the handle runs out of time. */
export class DeadlineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeadlineError';
  }
}

/**
 * Wraps `handle` into a Lambda handler that always PUTs a response to the
 * event's ResponseURL before the Lambda's timeout. It rejects only when the
 * response could not be delivered at all, so that Lambda's asynchronous retry
 * delivers the request again (handles must be idempotent).
 */
export function customResourceHandler(
  handle: Handle,
  opts: CustomResourceOptions = {},
): (event: CloudFormationCustomResourceEvent, context: Context) => Promise<void> {
  return async (event, context) => {
    const started = Date.now();
    const budgetMs = Math.max(0, context.getRemainingTimeInMillis());
    const reserveMs = Math.min(opts.reserveMs ?? 10_000, Math.floor(budgetMs / 3));
    const deadline = started + budgetMs - reserveMs;
    const lambdaEnd = started + budgetMs;
    logger.appendKeys({
      requestId: event.RequestId,
      requestType: event.RequestType,
      logicalResourceId: event.LogicalResourceId,
      resourceType: event.ResourceType,
    });
    try {
      logger.info('custom resource request', {
        stackId: event.StackId,
        physicalResourceId: 'PhysicalResourceId' in event ? event.PhysicalResourceId : undefined,
        remainingMs: budgetMs,
      });
      const response = await respond(handle, event, deadline, budgetMs, reserveMs);
      const body = encodeResponse(response, event.RequestType);
      logger.info('answering', {
        status: response.Status,
        physicalResourceId: response.PhysicalResourceId,
        bytes: body.length,
      });
      await deliver(event.ResponseURL, body, lambdaEnd, opts);
    } finally {
      logger.resetKeys();
    }
  };
}

async function respond(
  handle: Handle,
  event: CloudFormationCustomResourceEvent,
  deadline: number,
  budgetMs: number,
  reserveMs: number,
): Promise<CustomResourceResponse> {
  const base = { StackId: event.StackId, RequestId: event.RequestId, LogicalResourceId: event.LogicalResourceId };
  const existingId = event.RequestType === 'Create' ? undefined : event.PhysicalResourceId;
  if (event.RequestType === 'Delete' && isFailedCreateId(existingId)) {
    logger.info('delete after a failed create: nothing was created');
    return { ...base, Status: 'SUCCESS', PhysicalResourceId: event.PhysicalResourceId };
  }
  // Whatever id CloudFormation knows, or a recognisable one for a failed Create.
  const idOnFailure = existingId ?? `${FAILED_CREATE_PREFIX}${event.RequestId}`;
  try {
    const result = await withDeadline(handle, event, deadline, budgetMs, reserveMs);
    if (typeof result.physicalResourceId !== 'string' || result.physicalResourceId === '') {
      throw new Error('the handler returned no PhysicalResourceId');
    }
    return {
      ...base,
      Status: 'SUCCESS',
      PhysicalResourceId: result.physicalResourceId,
      ...(result.noEcho ? { NoEcho: true } : {}),
      ...(result.data && Object.keys(result.data).length > 0 ? { Data: result.data } : {}),
    };
  } catch (err) {
    const reason = errorMessage(err) || 'unknown error';
    logger.error('request failed', { reason, errorName: err instanceof Error ? err.name : typeof err });
    return { ...base, Status: 'FAILED', Reason: reason, PhysicalResourceId: idOnFailure };
  }
}

async function withDeadline(
  handle: Handle,
  event: CloudFormationCustomResourceEvent,
  deadline: number,
  budgetMs: number,
  reserveMs: number,
): Promise<HandleResult> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => {
        const err = new DeadlineError(
          `timed out: the request did not finish within the ${budgetMs} ms the Lambda had left ` +
            `(answering ${reserveMs} ms before the Lambda timeout)`,
        );
        controller.abort(err);
        reject(err);
      },
      Math.max(0, deadline - Date.now()),
    );
  });
  try {
    return await Promise.race([
      handle(event, { remainingMs: () => Math.max(0, deadline - Date.now()), signal: controller.signal }),
      timedOut,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const TRUNCATED = ' [truncated]';

/**
 * The response as bytes within MAX_RESPONSE_BYTES: Reason is cut (by code
 * point, measured after JSON encoding) until the body fits. A SUCCESS whose
 * Data does not fit becomes FAILED, except on Delete, where Data is dropped.
 */
export function encodeResponse(response: CustomResourceResponse, requestType: string): Buffer {
  const encode = (r: CustomResourceResponse): Buffer => Buffer.from(JSON.stringify(r), 'utf8');
  let body = encode(response);
  if (body.length <= MAX_RESPONSE_BYTES) return body;
  if (response.Status === 'SUCCESS') {
    const { Data: _dropped, ...rest } = response;
    if (requestType === 'Delete') return encode(rest);
    return encodeResponse(
      { ...rest, Status: 'FAILED', Reason: `the response Data is too large: ${body.length} bytes > ${MAX_RESPONSE_BYTES}` },
      requestType,
    );
  }
  const chars = Array.from(response.Reason ?? '');
  let lo = 0;
  let hi = chars.length;
  // Largest prefix of Reason that fits.
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    const candidate = encode({ ...response, Reason: chars.slice(0, mid).join('') + TRUNCATED });
    if (candidate.length <= MAX_RESPONSE_BYTES) lo = mid;
    else hi = mid - 1;
  }
  body = encode({ ...response, Reason: chars.slice(0, lo).join('') + TRUNCATED });
  return body;
}

async function deliver(url: string, body: Buffer, lambdaEnd: number, opts: CustomResourceOptions): Promise<void> {
  const attempts = opts.putAttempts ?? 6;
  const backoffMs = opts.putBackoffMs ?? 250;
  const transport = opts.transport ?? httpPut;
  // Only the host is logged: the query string of a presigned URL is a credential.
  const target = safeHost(url);
  let last = '';
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const timeoutMs = Math.max(1000, Math.min(opts.putTimeoutMs ?? 10_000, lambdaEnd - Date.now() - 100));
    try {
      const status = await transport(url, body, timeoutMs);
      if (status >= 200 && status < 300) {
        logger.info('response delivered', { target, status, attempt });
        return;
      }
      last = `HTTP ${status}`;
      // 4xx other than 429 will not get better (e.g. an expired presigned URL).
      if (status < 500 && status !== 429) break;
    } catch (err) {
      last = errorMessage(err);
    }
    const delay = backoffMs * 2 ** (attempt - 1) * (0.5 + Math.random() / 2);
    if (attempt === attempts || Date.now() + delay + 1000 > lambdaEnd) break;
    logger.warn('response PUT failed, retrying', { target, attempt, error: last, delayMs: Math.round(delay) });
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
  logger.error('response could not be delivered', { target, error: last });
  throw new Error(`could not deliver the custom resource response to ${target}: ${last}`);
}

function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '(unparseable ResponseURL)';
  }
}

/**
 * PUT with an empty Content-Type (the presigned URL is signed without one)
 * and Content-Length in bytes.
 */
export const httpPut: Transport = (url, body, timeoutMs) =>
  new Promise((resolve, reject) => {
    const parsed = new URL(url);
    const send = parsed.protocol === 'http:' ? httpRequest : httpsRequest;
    const req = send(
      parsed,
      { method: 'PUT', headers: { 'content-type': '', 'content-length': body.length }, timeout: timeoutMs },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`PUT timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
