/**
 * SchemaFunction: the Lambda behind Custom::SpiceDBSchema. The wrapper
 * always answers CloudFormation; the steps live in ./resource.ts. Clients
 * are module-scope, so a warm container reuses its connections.
 */
import { secretsManagerClient } from '../shared/aws-clients';
import { customResourceHandler } from '../shared/custom-resource';
import { spicedbClient, spicedbHealthChecker } from '../shared/spicedb-client';
import { createOrUpdate, remove, type SchemaResourceDeps } from './resource';
import { readPresharedKey } from './secret';

const deps: SchemaResourceDeps = {
  readPresharedKey: (arn, signal) => readPresharedKey(secretsManagerClient(), arn, signal),
  client: spicedbClient,
  health: spicedbHealthChecker,
};

export const handler = customResourceHandler((event, ctx) =>
  event.RequestType === 'Delete' ? remove(event, ctx, deps) : createOrUpdate(event, ctx, deps),
);
