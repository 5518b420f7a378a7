/**
 * Cloud Map access for one service: read instances (GetInstance,
 * ListInstances; never DiscoverInstances, which is the data plane and
 * eventually consistent), and register/deregister with the asynchronous
 * operation awaited (GetOperation until SUCCESS, throw on FAIL or timeout).
 *
 * Written to be correct against real Cloud Map and moto alike: moto appends
 * a second instance when the same id is registered again (Cloud Map
 * upserts) and deregisters one entry per call, so reads keep the newest
 * entry per id and deregistration repeats until GetInstance says the id is
 * gone (one extra read on real Cloud Map).
 */
import {
  DeregisterInstanceCommand,
  GetInstanceCommand,
  GetOperationCommand,
  ListInstancesCommand,
  RegisterInstanceCommand,
  type ServiceDiscoveryClient,
} from '@aws-sdk/client-servicediscovery';
import { awsErrorName } from '../errors';
import type { Caller } from './deps';
import type { Attributes } from './decide';
import { sleep } from './retry';

/** A Cloud Map operation ended in FAIL, or did not end in time. */
export class CloudMapOperationError extends Error {
  /** Operation.ErrorCode (e.g. THROTTLED_REQUEST), or TIMEOUT. */
  readonly code: string;
  constructor(message: string, code: string) {
    super(message);
    this.name = 'CloudMapOperationError';
    this.code = code;
  }
}

/** One Cloud Map service's instances. */
export class CloudMapService {
  constructor(
    private readonly client: ServiceDiscoveryClient,
    private readonly caller: Caller,
    readonly serviceId: string,
  ) {}

  /** The instance's attributes, or undefined when it is not registered. */
  async get(instanceId: string): Promise<Attributes | undefined> {
    try {
      const res = await this.caller.call('GetInstance', () => this.client.send(new GetInstanceCommand({ ServiceId: this.serviceId, InstanceId: instanceId })));
      return res.Instance?.Attributes ?? {};
    } catch (err) {
      if (awsErrorName(err) === 'InstanceNotFound') return undefined;
      throw err;
    }
  }

  /** All instances, id → attributes (all pages; the newest entry wins for a repeated id). */
  async list(): Promise<Map<string, Attributes>> {
    const out = new Map<string, Attributes>();
    let nextToken: string | undefined;
    do {
      const token = nextToken;
      const res = await this.caller.call('ListInstances', () => this.client.send(new ListInstancesCommand({ ServiceId: this.serviceId, MaxResults: 100, NextToken: token })));
      for (const inst of res.Instances ?? []) if (inst.Id) out.set(inst.Id, inst.Attributes ?? {});
      nextToken = res.NextToken;
    } while (nextToken);
    return out;
  }

  /**
   * RegisterInstance (an upsert) and wait for its operation. An operation
   * that fails with THROTTLED_REQUEST (Route 53 throttling) is submitted
   * again, up to 3 times; any other failure throws.
   */
  async register(instanceId: string, attributes: Attributes): Promise<void> {
    const { retry } = this.caller.tuning;
    for (let attempt = 1; ; attempt++) {
      try {
        // No fixed CreatorRequestId: the SDK generates one per request. A
        // fixed one would make Cloud Map treat a later, legitimate
        // re-registration of the same id as a replay.
        const res = await this.caller.call('RegisterInstance', () =>
          this.client.send(new RegisterInstanceCommand({ ServiceId: this.serviceId, InstanceId: instanceId, Attributes: attributes })),
        );
        await this.awaitOperation(res.OperationId, `register ${instanceId}`);
        return;
      } catch (err) {
        if (!(err instanceof CloudMapOperationError && err.code === 'THROTTLED_REQUEST') || attempt >= 3) throw err;
        await sleep(Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** attempt));
      }
    }
  }

  /**
   * Deregisters until the id is gone; false when it was not registered.
   * InstanceNotFound counts as done (another invocation got there first).
   */
  async deregister(instanceId: string): Promise<boolean> {
    let removed = false;
    // Bounded: moto keeps one entry per earlier RegisterInstance of the id.
    for (let round = 0; round < 10; round++) {
      let operationId: string | undefined;
      try {
        const res = await this.caller.call('DeregisterInstance', () => this.client.send(new DeregisterInstanceCommand({ ServiceId: this.serviceId, InstanceId: instanceId })));
        operationId = res.OperationId;
      } catch (err) {
        if (awsErrorName(err) === 'InstanceNotFound') return removed;
        throw err;
      }
      await this.awaitOperation(operationId, `deregister ${instanceId}`);
      removed = true;
      if ((await this.get(instanceId)) === undefined) return true;
    }
    throw new Error(`instance ${instanceId} is still registered in ${this.serviceId} after 10 deregistrations`);
  }

  private async awaitOperation(operationId: string | undefined, what: string): Promise<void> {
    if (!operationId) throw new CloudMapOperationError(`Cloud Map returned no OperationId for ${what}`, 'NO_OPERATION');
    const { operationTimeoutMs, operationPollMs } = this.caller.tuning;
    const deadline = Date.now() + operationTimeoutMs;
    for (let delay = operationPollMs; ; delay = Math.min(delay * 2, 2000)) {
      const res = await this.caller.call('GetOperation', () => this.client.send(new GetOperationCommand({ OperationId: operationId })));
      const op = res.Operation;
      if (op?.Status === 'SUCCESS') return;
      if (op?.Status === 'FAIL') {
        throw new CloudMapOperationError(`Cloud Map operation ${operationId} (${what}) failed: ${op.ErrorCode ?? '?'} ${op.ErrorMessage ?? ''}`.trim(), op.ErrorCode ?? 'FAIL');
      }
      if (Date.now() + delay > deadline) {
        throw new CloudMapOperationError(`Cloud Map operation ${operationId} (${what}) still ${op?.Status ?? 'unknown'} after ${operationTimeoutMs} ms`, 'TIMEOUT');
      }
      await sleep(delay);
    }
  }
}
