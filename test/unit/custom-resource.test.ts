/**
 * The always-answer wrapper, with the PUT replaced by a recording fake (the
 * real HTTP PUT is covered in test/integration/schema-resource-wrapper.test.ts).
 */
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import fc from 'fast-check';
import {
  customResourceHandler,
  encodeResponse,
  FAILED_CREATE_PREFIX,
  isFailedCreateId,
  MAX_RESPONSE_BYTES,
  type CustomResourceResponse,
  type Handle,
  type HandleContext,
  type Transport,
} from '../../functions/shared/custom-resource';
import { lambdaContext } from '../helpers/lambda-context';
import { cloudFormationEvent } from '../helpers/response-server';

interface Recorder {
  transport: Transport;
  calls: { url: string; body: Buffer }[];
  responses(): CustomResourceResponse[];
}

/** A transport answering the given statuses in turn (then 200); an Error entry rejects. */
function recorder(...script: (number | Error)[]): Recorder {
  const calls: { url: string; body: Buffer }[] = [];
  return {
    calls,
    transport: (url, body) => {
      calls.push({ url, body });
      const next = script.shift() ?? 200;
      return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
    },
    responses: () => calls.map((c) => JSON.parse(c.body.toString('utf8')) as CustomResourceResponse),
  };
}

const fast = { putBackoffMs: 1 };

describe('customResourceHandler', () => {
  it('answers SUCCESS with the id, Data and NoEcho the handle returned', async () => {
    // Prepare
    const rec = recorder();
    const handler = customResourceHandler(async () => ({ physicalResourceId: 'pid-1', data: { ZedToken: 'tok', Count: 3 }, noEcho: true }), {
      ...fast,
      transport: rec.transport,
    });
    const event = cloudFormationEvent('schema-create');
    // Act
    await handler(event, lambdaContext());
    // Assess
    expect(rec.calls).toHaveLength(1);
    expect(rec.calls[0]?.url).toBe(event.ResponseURL);
    expect(rec.responses()[0]).toEqual({
      Status: 'SUCCESS',
      PhysicalResourceId: 'pid-1',
      StackId: event.StackId,
      RequestId: event.RequestId,
      LogicalResourceId: event.LogicalResourceId,
      NoEcho: true,
      Data: { ZedToken: 'tok', Count: 3 },
    });
  });

  it('answers FAILED with the error message as Reason and a recognisable id when a Create throws', async () => {
    const rec = recorder();
    const handler = customResourceHandler(() => Promise.reject(new Error('schema did not parse: line 3, column 5')), {
      ...fast,
      transport: rec.transport,
    });
    const event = cloudFormationEvent('schema-create');
    await handler(event, lambdaContext());
    const [res] = rec.responses();
    expect(res?.Status).toBe('FAILED');
    expect(res?.Reason).toBe('schema did not parse: line 3, column 5');
    expect(res?.PhysicalResourceId).toBe(`${FAILED_CREATE_PREFIX}${event.RequestId}`);
    expect(isFailedCreateId(res?.PhysicalResourceId)).toBe(true);
  });

  it('keeps the existing PhysicalResourceId when an Update throws', async () => {
    const rec = recorder();
    const handler = customResourceHandler(() => Promise.reject(new Error('boom')), { ...fast, transport: rec.transport });
    const event = cloudFormationEvent('schema-update');
    await handler(event, lambdaContext());
    expect(rec.responses()[0]).toMatchObject({ Status: 'FAILED', Reason: 'boom', PhysicalResourceId: 'spicedb-schema-0123456789abcdef0123' });
  });

  it('answers FAILED when something other than an Error is thrown', async () => {
    const rec = recorder();
    const handler = customResourceHandler(() => Promise.reject('plain string'), { ...fast, transport: rec.transport });
    await handler(cloudFormationEvent('schema-create'), lambdaContext());
    expect(rec.responses()[0]).toMatchObject({ Status: 'FAILED', Reason: 'plain string' });
  });

  it('answers the Delete that follows a failed Create at once, without calling the handle', async () => {
    const rec = recorder();
    const handle = jest.fn<ReturnType<Handle>, Parameters<Handle>>();
    const handler = customResourceHandler(handle, { ...fast, transport: rec.transport });
    const event = cloudFormationEvent<CloudFormationCustomResourceEvent & { RequestType: 'Delete' }>('schema-delete');
    event.PhysicalResourceId = `${FAILED_CREATE_PREFIX}1f2e3d4c-aaaa-bbbb-cccc-0123456789ab`;
    await handler(event, lambdaContext());
    expect(handle).not.toHaveBeenCalled();
    expect(rec.responses()[0]).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: event.PhysicalResourceId });
  });

  it('answers FAILED before the Lambda times out when the handle never finishes, and aborts its signal', async () => {
    const rec = recorder();
    let seen: HandleContext | undefined;
    const handler = customResourceHandler(
      (_event, ctx) => {
        seen = ctx;
        return new Promise(() => undefined);
      },
      { ...fast, transport: rec.transport },
    );
    const context = lambdaContext(1500);
    await handler(cloudFormationEvent('schema-create'), context);
    expect(rec.responses()[0]?.Status).toBe('FAILED');
    expect(rec.responses()[0]?.Reason).toMatch(/^timed out: the request did not finish within the \d+ ms the Lambda had left/);
    expect(context.getRemainingTimeInMillis()).toBeGreaterThan(0);
    expect(seen?.signal.aborted).toBe(true);
    expect(seen?.remainingMs()).toBe(0);
  });

  it('gives the handle the time left minus the reserve kept for answering', async () => {
    const rec = recorder();
    let remaining = -1;
    const handler = customResourceHandler(
      async (_event, ctx) => {
        remaining = ctx.remainingMs();
        return { physicalResourceId: 'pid' };
      },
      { ...fast, reserveMs: 5000, transport: rec.transport },
    );
    await handler(cloudFormationEvent('schema-create'), lambdaContext(60_000));
    expect(remaining).toBeLessThanOrEqual(55_000);
    expect(remaining).toBeGreaterThan(50_000);
  });

  it('retries the PUT on 5xx and network errors, then succeeds', async () => {
    const rec = recorder(503, new Error('socket hang up'), 500, 200);
    const handler = customResourceHandler(async () => ({ physicalResourceId: 'pid' }), { ...fast, transport: rec.transport });
    await handler(cloudFormationEvent('schema-create'), lambdaContext());
    expect(rec.calls).toHaveLength(4);
    // Every attempt sends the same bytes.
    expect(new Set(rec.calls.map((c) => c.body.toString()))).toEqual(new Set([rec.calls[0]?.body.toString()]));
  });

  it('does not retry a 403 (an expired presigned URL) and rejects so that Lambda retries the invocation', async () => {
    const rec = recorder(403);
    const handler = customResourceHandler(async () => ({ physicalResourceId: 'pid' }), { ...fast, transport: rec.transport });
    await expect(handler(cloudFormationEvent('schema-create'), lambdaContext())).rejects.toThrow(/HTTP 403/);
    expect(rec.calls).toHaveLength(1);
  });

  it('rejects, naming the host but not the presigned query, when every attempt fails', async () => {
    const rec = recorder(503, 503, 503);
    const handler = customResourceHandler(async () => ({ physicalResourceId: 'pid' }), { ...fast, putAttempts: 3, transport: rec.transport });
    const err = await handler(cloudFormationEvent('schema-create'), lambdaContext()).catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain('cloudformation-custom-resource-response-useast1.s3.amazonaws.com');
    expect((err as Error).message).not.toContain('X-Amz-Signature');
    expect(rec.calls).toHaveLength(3);
  });

  it('turns a SUCCESS whose Data does not fit into FAILED on Create', async () => {
    const rec = recorder();
    const handler = customResourceHandler(async () => ({ physicalResourceId: 'pid', data: { Big: 'x'.repeat(5000) } }), {
      ...fast,
      transport: rec.transport,
    });
    await handler(cloudFormationEvent('schema-create'), lambdaContext());
    const [res] = rec.responses();
    expect(res?.Status).toBe('FAILED');
    expect(res?.Reason).toMatch(/Data is too large/);
    expect(rec.calls[0]?.body.length).toBeLessThanOrEqual(MAX_RESPONSE_BYTES);
  });

  it('drops Data that does not fit on Delete and still answers SUCCESS', async () => {
    const rec = recorder();
    const handler = customResourceHandler(async () => ({ physicalResourceId: 'pid', data: { Big: 'x'.repeat(5000) } }), {
      ...fast,
      transport: rec.transport,
    });
    await handler(cloudFormationEvent('schema-delete'), lambdaContext());
    const [res] = rec.responses();
    expect(res?.Status).toBe('SUCCESS');
    expect(res?.Data).toBeUndefined();
  });
});

describe('encodeResponse', () => {
  const base: CustomResourceResponse = {
    Status: 'FAILED',
    PhysicalResourceId: 'spicedb-schema-0123456789abcdef0123',
    StackId: 'arn:aws:cloudformation:us-east-1:123456789012:stack/spicedb-ecs/5b1d7e30-0000-11ef-9a8b-0a1b2c3d4e5f',
    RequestId: '1f2e3d4c-aaaa-bbbb-cccc-0123456789ab',
    LogicalResourceId: 'Schema',
  };

  it('keeps a short Reason whole', () => {
    const body = encodeResponse({ ...base, Reason: 'short' }, 'Update');
    expect((JSON.parse(body.toString()) as CustomResourceResponse).Reason).toBe('short');
  });

  it('truncates a multi-byte Reason so the body is at most 4096 bytes, not characters', () => {
    const reason = 'é😀"\n'.repeat(2000);
    const body = encodeResponse({ ...base, Reason: reason }, 'Update');
    expect(body.length).toBeLessThanOrEqual(MAX_RESPONSE_BYTES);
    // Close to the limit: the cut is not wasteful.
    expect(body.length).toBeGreaterThan(MAX_RESPONSE_BYTES - 16);
    const parsed = JSON.parse(body.toString('utf8')) as CustomResourceResponse;
    expect(parsed.Reason?.endsWith(' [truncated]')).toBe(true);
    expect(reason.startsWith(parsed.Reason?.slice(0, -' [truncated]'.length) ?? '?')).toBe(true);
  });

  it('always yields valid JSON within 4096 bytes whose Reason is a prefix of the original', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 6000 }), (reason) => {
        const body = encodeResponse({ ...base, Reason: reason }, 'Create');
        expect(body.length).toBeLessThanOrEqual(MAX_RESPONSE_BYTES);
        const got = (JSON.parse(body.toString('utf8')) as CustomResourceResponse).Reason ?? '';
        const kept = got.endsWith(' [truncated]') && got !== reason ? got.slice(0, -' [truncated]'.length) : got;
        expect(reason.startsWith(kept)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});
