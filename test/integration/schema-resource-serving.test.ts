/**
 * Waiting for SpiceDB: the resource polls the gRPC health service with
 * backoff, bounded by the invocation's remaining time. "Not up" is played
 * for real: first nothing listens on the endpoint, then `spicedb serve`
 * runs on an unmigrated PostgreSQL database (NOT_SERVING), then the
 * migration runs and it turns SERVING.
 */
import { handler } from '../../functions/schema-resource/handler';
import { healthChecker } from '../../functions/shared/grpc-health';
import { closeSpiceDBClients } from '../../functions/shared/spicedb-client';
import { freePort, loopbackHost, sleep, waitFor } from '../../scripts/rig/net';
import { startPostgres, type Postgres } from '../../scripts/rig/postgres';
import { migrate } from '../../scripts/rig/spicedb';
import { lambdaContext } from '../helpers/lambda-context';
import { uniqueName } from '../helpers/rig';
import { request, spawnSpiceDB, startSchemaRig, type SchemaRig } from './schema-resource-rig';

let rig: SchemaRig;
let postgres: Postgres;

beforeAll(async () => {
  rig = await startSchemaRig();
  postgres = rig.cleanup.add(await startPostgres({ host: rig.spicedb.host }));
});
afterAll(async () => {
  closeSpiceDBClients();
  await rig.cleanup.runAll();
});

/** A host:port where nothing listens yet. */
async function vacantEndpoint(): Promise<{ host: string; port: number; endpoint: string }> {
  const host = loopbackHost();
  const port = await freePort(host);
  return { host, port, endpoint: `${host}:${port}` };
}

describe('SpiceDB not serving yet', () => {
  it('waits through "connection refused" and NOT_SERVING, then succeeds once SpiceDB reports SERVING', async () => {
    // Prepare
    const { host, port, endpoint } = await vacantEndpoint();
    const uri = await postgres.createDatabase(uniqueName('notyet'));
    const event = request(rig, 'Create', rig.props({ SpiceDBEndpoint: endpoint, Relationships: ['post:w1#writer@user:sid'], Assertions: { AssertTrue: ['post:w1#write@user:sid'] } }));
    // Act: the invocation starts while nothing listens.
    const invocation = handler(event, lambdaContext(110_000));
    await sleep(1500);
    expect(rig.responses.responsesFor(event.ResponseURL)).toHaveLength(0);
    const proc = await spawnSpiceDB({ host, port, presharedKey: rig.presharedKey, datastoreUri: uri });
    rig.cleanup.defer(() => proc.stop('SIGTERM', 10_000));
    const probe = healthChecker(endpoint);
    try {
      await waitFor(async () => (await probe.check('', 1000)) === 'NOT_SERVING', { what: 'spicedb to answer NOT_SERVING', timeoutMs: 60_000, abortIf: () => proc.assertRunning() });
    } finally {
      probe.close();
    }
    await sleep(1000);
    expect(rig.responses.responsesFor(event.ResponseURL)).toHaveLength(0);
    await migrate(uri);
    await invocation;
    // Assess
    const [res] = rig.responses.responsesFor(event.ResponseURL);
    expect(res).toMatchObject({ Status: 'SUCCESS', Data: { RelationshipsTouched: '1', AssertionsChecked: '1' } });
  });
});

describe('SpiceDB never serving', () => {
  it.each<[string, (host: string, port: number) => Promise<void>, RegExp]>([
    ['nothing listens on the endpoint', async () => undefined, /last: 14 UNAVAILABLE/],
    [
      'SpiceDB answers NOT_SERVING (datastore not migrated)',
      async (host, port) => {
        const proc = await spawnSpiceDB({ host, port, presharedKey: rig.presharedKey, datastoreUri: await postgres.createDatabase(uniqueName('never')) });
        rig.cleanup.defer(() => proc.stop('SIGTERM', 10_000));
        const probe = healthChecker(`${host}:${port}`);
        try {
          await waitFor(async () => (await probe.check('', 1000)) === 'NOT_SERVING', { what: 'spicedb to answer NOT_SERVING', timeoutMs: 60_000, abortIf: () => proc.assertRunning() });
        } finally {
          probe.close();
        }
      },
      /last: NOT_SERVING/,
    ],
  ])('answers FAILED before the Lambda timeout when %s', async (_case, arrange, last) => {
    const { host, port, endpoint } = await vacantEndpoint();
    await arrange(host, port);
    const event = request(rig, 'Create', rig.props({ SpiceDBEndpoint: endpoint }));
    const context = lambdaContext(8000);
    await handler(event, context);
    const [res] = rig.responses.responsesFor(event.ResponseURL);
    expect(res?.Status).toBe('FAILED');
    expect(res?.Reason).toMatch(new RegExp(`^SpiceDB at ${endpoint.replace(/\./g, '\\.')} did not report SERVING within [\\d.]+ s \\(\\d+ checks; `));
    expect(res?.Reason).toMatch(last);
    // Answered with time to spare: the Lambda would still be running.
    expect(context.getRemainingTimeInMillis()).toBeGreaterThan(0);
  });

  it('stops waiting at Timeouts.ServingSeconds when that comes first', async () => {
    const { endpoint } = await vacantEndpoint();
    const event = request(rig, 'Create', rig.props({ SpiceDBEndpoint: endpoint, Timeouts: { ServingSeconds: '2' } }));
    const context = lambdaContext(100_000);
    await handler(event, context);
    const [res] = rig.responses.responsesFor(event.ResponseURL);
    expect(res?.Status).toBe('FAILED');
    expect(res?.Reason).toMatch(/did not report SERVING within \d+\.\d s/);
    expect(context.getRemainingTimeInMillis()).toBeGreaterThan(90_000);
  });
});
