/**
 * MigrationFunction: the Lambda behind Custom::SpiceDBMigration. The shared
 * wrapper always answers CloudFormation; the steps live in ./migrate.ts.
 * Clients are module-scope, so a warm container reuses them.
 */
import { ecsClient } from '../shared/aws-clients';
import { customResourceHandler } from '../shared/custom-resource';
import { cloudWatchLogTail, CloudWatchLogsJson } from './cloudwatch-logs';
import { handleMigration, type MigrationDeps } from './migrate';

const ecs = ecsClient();
const deps: MigrationDeps = {
  ecs,
  // Signs with the ECS client's credential chain and region.
  logs: cloudWatchLogTail(new CloudWatchLogsJson(ecs.config)),
};

export const handler = customResourceHandler((event, ctx) => handleMigration(event, ctx, deps));
