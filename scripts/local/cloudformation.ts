/**
 * CloudFormation's side of one custom resource, for the local stack: it
 * sends Create/Update/Delete requests shaped as CloudFormation sends them,
 * with a ResponseURL on a local HTTP endpoint, waits for the function's PUT,
 * and on a failed Update sends the rollback Update (old and new properties
 * swapped), printing the resource events CloudFormation would show.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';

export interface CfnResponse {
  Status: 'SUCCESS' | 'FAILED';
  Reason?: string;
  PhysicalResourceId: string;
  Data?: Record<string, unknown>;
}

/** A local endpoint standing in for the presigned S3 ResponseURLs. */
export class ResponseEndpoint {
  private server: Server | undefined;
  private base = '';
  private readonly waiting = new Map<string, (r: CfnResponse) => void>();

  async start(host = '127.0.0.1'): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const id = new URL(req.url ?? '/', 'http://x').pathname.split('/').pop() ?? '';
        res.writeHead(200).end();
        const resolve = this.waiting.get(id);
        if (req.method === 'PUT' && resolve) {
          this.waiting.delete(id);
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as CfnResponse);
        }
      });
    });
    await new Promise<void>((r) => this.server?.listen(0, host, () => r()));
    const { port } = this.server.address() as AddressInfo;
    this.base = `http://${host}:${port}/cloudformation-responses`;
  }

  /** A fresh URL and a promise of the response PUT to it. */
  expect(timeoutMs: number): { url: string; response: Promise<CfnResponse> } {
    const id = randomUUID();
    const response = new Promise<CfnResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`no response within ${Math.round(timeoutMs / 1000)} s: the stack would wait until ServiceTimeout`));
      }, timeoutMs);
      this.waiting.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
    return { url: `${this.base}/${id}`, response };
  }

  stop(): Promise<void> {
    return new Promise((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

export interface StackEvent {
  status: string;
  reason?: string;
}

export interface CustomResourceDriverOptions {
  stackName: string;
  logicalId: string;
  resourceType: string;
  serviceToken: string;
  endpoint: ResponseEndpoint;
  /** Invokes the function (the invocation's own failure is not the answer: the PUT is). */
  invoke(event: CloudFormationCustomResourceEvent): Promise<unknown>;
  /** How long CloudFormation waits for the PUT (the template's ServiceTimeout). */
  serviceTimeoutMs: number;
  onEvent?(e: StackEvent): void;
}

/** One custom resource's life as CloudFormation drives it. */
export class CustomResourceDriver {
  physicalResourceId: string | undefined;
  properties: Record<string, unknown> | undefined;
  readonly stackId: string;

  constructor(private readonly opts: CustomResourceDriverOptions) {
    this.stackId = `arn:aws:cloudformation:us-east-1:000000000000:stack/${opts.stackName}/${randomUUID()}`;
  }

  /** Every resource event so far, oldest first (what the stack's Events tab would show). */
  readonly events: StackEvent[] = [];

  /** The endpoint that receives the function's responses. */
  get responseEndpoint(): ResponseEndpoint {
    return this.opts.endpoint;
  }

  private emit(status: string, reason?: string): void {
    this.events.push({ status, reason });
    this.opts.onEvent?.({ status, reason });
  }

  private async send(
    type: 'Create' | 'Update' | 'Delete',
    props: Record<string, unknown>,
    oldProps?: Record<string, unknown>,
  ): Promise<CfnResponse> {
    const { url, response } = this.opts.endpoint.expect(this.opts.serviceTimeoutMs);
    const event = {
      RequestType: type,
      ServiceToken: this.opts.serviceToken,
      ResponseURL: url,
      StackId: this.stackId,
      RequestId: randomUUID(),
      LogicalResourceId: this.opts.logicalId,
      ResourceType: this.opts.resourceType,
      ResourceProperties: { ServiceToken: this.opts.serviceToken, ...props },
      ...(type === 'Create' ? {} : { PhysicalResourceId: this.physicalResourceId }),
      ...(type === 'Update' ? { OldResourceProperties: { ServiceToken: this.opts.serviceToken, ...oldProps } } : {}),
    } as CloudFormationCustomResourceEvent;
    // The invocation's own result does not matter to CloudFormation; only the PUT does.
    this.opts.invoke(event).catch(() => undefined);
    return response;
  }

  /** Create; on FAILED, the Delete CloudFormation sends next. Returns the final response. */
  async create(props: Record<string, unknown>): Promise<CfnResponse> {
    this.emit('CREATE_IN_PROGRESS');
    const res = await this.send('Create', props);
    this.physicalResourceId = res.PhysicalResourceId;
    if (res.Status === 'SUCCESS') {
      this.properties = props;
      this.emit('CREATE_COMPLETE');
      return res;
    }
    this.emit('CREATE_FAILED', res.Reason);
    this.emit('DELETE_IN_PROGRESS');
    const del = await this.send('Delete', props);
    this.emit(del.Status === 'SUCCESS' ? 'DELETE_COMPLETE' : 'DELETE_FAILED', del.Reason);
    this.physicalResourceId = undefined;
    return res;
  }

  /**
   * Update; on FAILED, the rollback Update with the old properties (and the
   * old ones as "old"). A new PhysicalResourceId means replacement: the old
   * one is deleted in the cleanup phase, as CloudFormation does.
   */
  async update(props: Record<string, unknown>): Promise<{ response: CfnResponse; rolledBack: boolean; rollback?: CfnResponse }> {
    const oldProps = this.properties;
    if (!oldProps || !this.physicalResourceId) throw new Error('the resource does not exist: create it first');
    const oldId = this.physicalResourceId;
    this.emit('UPDATE_IN_PROGRESS');
    const res = await this.send('Update', props, oldProps);
    if (res.Status === 'SUCCESS') {
      this.emit('UPDATE_COMPLETE');
      if (res.PhysicalResourceId !== oldId) {
        // Replacement: CloudFormation deletes the old physical resource.
        const newId = res.PhysicalResourceId;
        this.physicalResourceId = oldId;
        this.emit('DELETE_IN_PROGRESS (replaced resource)');
        const del = await this.send('Delete', oldProps);
        this.emit(del.Status === 'SUCCESS' ? 'DELETE_COMPLETE' : 'DELETE_FAILED', del.Reason);
        this.physicalResourceId = newId;
      }
      this.properties = props;
      return { response: res, rolledBack: false };
    }
    this.emit('UPDATE_FAILED', res.Reason);
    this.emit('UPDATE_ROLLBACK_IN_PROGRESS');
    const rollback = await this.send('Update', oldProps, props);
    this.emit(rollback.Status === 'SUCCESS' ? 'UPDATE_ROLLBACK_COMPLETE' : 'UPDATE_ROLLBACK_FAILED', rollback.Reason);
    return { response: res, rolledBack: true, rollback };
  }

  async delete(): Promise<CfnResponse | undefined> {
    if (!this.physicalResourceId || !this.properties) return undefined;
    this.emit('DELETE_IN_PROGRESS');
    const res = await this.send('Delete', this.properties);
    this.emit(res.Status === 'SUCCESS' ? 'DELETE_COMPLETE' : 'DELETE_FAILED', res.Reason);
    this.physicalResourceId = undefined;
    return res;
  }
}
