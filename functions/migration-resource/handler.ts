/**
 * MigrationFunction: the Lambda behind Custom::SpiceDBMigration. The shared
 * wrapper always answers CloudFormation; the steps live in ./migrate.ts.
 * Clients are module-scope, so a warm container reuses them.
 */
import { cloudWatchLogsClient, ecsClient } from '../shared/aws-clients';
import { customResourceHandler } from '../shared/custom-resource';
import { cloudWatchLogTail } from './cloudwatch-logs';
import { handleMigration, type MigrationDeps } from './migrate';

const deps: MigrationDeps = { ecs: ecsClient(), logs: cloudWatchLogTail(cloudWatchLogsClient()) };

export const handler = customResourceHandler((event, ctx) => handleMigration(event, ctx, deps));
