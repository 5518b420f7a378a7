/**
 * EventBridge delivery for the local stack, done by the emulator itself: the
 * registrar's rule pattern from template.yaml (resolved for the local
 * cluster) is put as a real rule in moto with an SQS queue as its target.
 * Events are published with PutEvents; the rule decides what matches. A
 * poller invokes the function with each delivered event; a failed
 * invocation is retried by SQS redelivery and lands in a dead-letter queue
 * after the template's retry attempts, as the template's DLQ would.
 */
import { EventBridgeClient, PutEventsCommand, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import {
  SQSClient, CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, DeleteMessageCommand,
} from '@aws-sdk/client-sqs';
import type { Json } from '../rig/template';

export interface RuleDelivery {
  /** Publishes events as AWS services do (PutEvents); the rule filters them. */
  publish(events: { source: string; 'detail-type': string; detail: unknown; resources?: string[] }[]): Promise<void>;
  /** Events that exhausted their retries. */
  deadLetterQueueUrl: string;
  stop(): Promise<void>;
}

export interface RuleDeliveryOptions {
  name: string;
  pattern: Json;
  /** RetryPolicy.MaximumRetryAttempts of the template's rule. */
  maximumRetryAttempts: number;
  /** Invokes the target function; a rejection means the delivery failed. */
  invoke(event: unknown): Promise<unknown>;
  clientConfig: { endpoint: string; region: string; credentials: { accessKeyId: string; secretAccessKey: string } };
  onError?(err: unknown, attempt: number): void;
}

export async function startRuleDelivery(opts: RuleDeliveryOptions): Promise<RuleDelivery> {
  const sqs = new SQSClient(opts.clientConfig);
  const events = new EventBridgeClient(opts.clientConfig);
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `${opts.name}-dlq` }));
  const dlqArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }))).Attributes?.QueueArn;
  const queue = await sqs.send(
    new CreateQueueCommand({
      QueueName: `${opts.name}-target`,
      Attributes: {
        // A failed delivery becomes visible again after 1 s: a quick retry.
        VisibilityTimeout: '1',
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: opts.maximumRetryAttempts + 1 }),
      },
    }),
  );
  const queueUrl = queue.QueueUrl as string;
  const queueArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))).Attributes?.QueueArn;
  await events.send(new PutRuleCommand({ Name: opts.name, EventPattern: JSON.stringify(opts.pattern), State: 'ENABLED' }));
  await events.send(new PutTargetsCommand({ Rule: opts.name, Targets: [{ Id: 'function', Arn: queueArn }] }));

  let running = true;
  const loop = (async () => {
    while (running) {
      const res = await sqs
        .send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }))
        .catch(() => undefined);
      // Deliveries run concurrently, as EventBridge invokes targets concurrently.
      await Promise.all(
        (res?.Messages ?? []).map(async (m) => {
          try {
            await opts.invoke(JSON.parse(m.Body ?? '{}'));
            await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle }));
          } catch (err) {
            opts.onError?.(err, Number(m.Attributes?.ApproximateReceiveCount ?? 1));
          }
        }),
      );
    }
  })();

  return {
    deadLetterQueueUrl: dlq.QueueUrl as string,
    async publish(list) {
      await events.send(
        new PutEventsCommand({
          Entries: list.map((e) => ({
            Source: e.source,
            DetailType: e['detail-type'],
            Detail: JSON.stringify(e.detail),
            Resources: e.resources,
          })),
        }),
      );
    },
    async stop() {
      running = false;
      await loop;
      sqs.destroy();
      events.destroy();
    },
  };
}
