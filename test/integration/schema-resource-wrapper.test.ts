/**
 * The response path over real HTTP: the PUT CloudFormation's presigned URL
 * expects (empty Content-Type, Content-Length in bytes, at most 4096 bytes),
 * retries when the URL answers 503, and re-delivered requests, with the
 * schema handler against a real SpiceDB.
 */
import { handler } from '../../functions/schema-resource/handler';
import { customResourceHandler, MAX_RESPONSE_BYTES, type CustomResourceResponse } from '../../functions/shared/custom-resource';
import { closeSpiceDBClients } from '../../functions/shared/spicedb-client';
import { lambdaContext } from '../helpers/lambda-context';
import { invoke, request, startSchemaRig, type SchemaRig } from './schema-resource-rig';

let rig: SchemaRig;

beforeAll(async () => {
  rig = await startSchemaRig();
});
afterAll(async () => {
  closeSpiceDBClients();
  await rig.cleanup.runAll();
});

describe('the response PUT', () => {
  it('sends an empty Content-Type and the Content-Length in bytes, within 4096 bytes for a long multi-byte Reason', async () => {
    // Prepare: a handle failing with a long message of multi-byte characters and JSON escapes.
    const message = 'schéma refusé — "ligne" 3\n'.repeat(400);
    const wrapped = customResourceHandler(() => Promise.reject(new Error(message)));
    const event = request(rig, 'Create', rig.props());
    // Act
    await wrapped(event, lambdaContext());
    // Assess
    const [put] = rig.responses.requests.filter((r) => event.ResponseURL.endsWith(r.url));
    expect(put?.method).toBe('PUT');
    expect(put?.headers['content-type']).toBe('');
    expect(Number(put?.headers['content-length'])).toBe(put?.body.length);
    expect(put?.body.length).toBeLessThanOrEqual(MAX_RESPONSE_BYTES);
    const body = JSON.parse(put?.body.toString('utf8') ?? '{}') as CustomResourceResponse;
    expect(body.Status).toBe('FAILED');
    expect(body.Reason?.endsWith(' [truncated]')).toBe(true);
    expect(message.startsWith(body.Reason?.slice(0, -' [truncated]'.length) ?? '?')).toBe(true);
  });

  it('retries when the ResponseURL answers 503, then delivers the same response', async () => {
    const event = request(rig, 'Create', rig.props({ Relationships: ['post:h1#writer@user:sid'] }));
    rig.responses.failNext(2, 503);
    await handler(event, lambdaContext());
    const puts = rig.responses.requests.filter((r) => event.ResponseURL.endsWith(r.url));
    expect(puts.map((p) => p.answered)).toEqual([503, 503, 200]);
    expect(new Set(puts.map((p) => p.body.toString()))).toHaveProperty('size', 1);
    expect(rig.responses.responsesFor(event.ResponseURL)[0]).toMatchObject({ Status: 'SUCCESS' });
    expect(await rig.relationships('post')).toContain('post:h1#writer@user:sid');
  });

  it('rejects (so Lambda retries the invocation) when the ResponseURL keeps failing', async () => {
    const wrapped = customResourceHandler(async () => ({ physicalResourceId: 'pid' }), { putAttempts: 3, putBackoffMs: 10 });
    const event = request(rig, 'Create', rig.props());
    rig.responses.failNext(3, 503);
    await expect(wrapped(event, lambdaContext())).rejects.toThrow(/could not deliver the custom resource response to 127\.[\d.]+:\d+: HTTP 503/);
    expect(rig.responses.requests.filter((r) => event.ResponseURL.endsWith(r.url)).map((p) => p.answered)).toEqual([503, 503, 503]);
  });
});

describe('re-delivery', () => {
  it('answers the same Create delivered twice at once with the same id and one seed', async () => {
    const event = request(rig, 'Create', rig.props({ Relationships: ['post:x1#writer@user:sid', 'post:x1#reader@user:lena'], Assertions: { AssertTrue: ['post:x1#read@user:lena'] } }));
    await Promise.all([handler(structuredClone(event), lambdaContext()), handler(structuredClone(event), lambdaContext())]);
    const answers = rig.responses.responsesFor(event.ResponseURL);
    expect(answers).toHaveLength(2);
    expect(answers.map((a) => a.Status)).toEqual(['SUCCESS', 'SUCCESS']);
    expect(answers[0]?.PhysicalResourceId).toBe(answers[1]?.PhysicalResourceId);
    expect((await rig.relationships('post')).filter((r) => r.startsWith('post:x1#'))).toEqual(['post:x1#reader@user:lena', 'post:x1#writer@user:sid']);
  });

  it('answers a shrinking Update delivered again after it was applied, with the same outcome', async () => {
    const before = rig.props({ Relationships: ['post:x2#writer@user:sid', 'post:x2#reader@user:lena'] });
    const created = await invoke(rig, handler, request(rig, 'Create', before));
    const after = { ...before, Relationships: ['post:x2#writer@user:sid'] };
    const event = request(rig, 'Update', after, { old: before, physicalId: created.PhysicalResourceId });
    await handler(structuredClone(event), lambdaContext());
    await handler(structuredClone(event), lambdaContext());
    const answers = rig.responses.responsesFor(event.ResponseURL);
    expect(answers.map((a) => [a.Status, a.PhysicalResourceId])).toEqual([
      ['SUCCESS', created.PhysicalResourceId],
      ['SUCCESS', created.PhysicalResourceId],
    ]);
    expect((await rig.relationships('post')).filter((r) => r.startsWith('post:x2#'))).toEqual(['post:x2#writer@user:sid']);
  });
});
