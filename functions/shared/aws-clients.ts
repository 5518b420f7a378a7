/**
 * One AWS SDK client per service, created once per container. The SDK reads
 * AWS_ENDPOINT_URL (the local stack and tests point it at the emulator) and
 * the region from the environment.
 */
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { ECSClient } from '@aws-sdk/client-ecs';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ServiceDiscoveryClient } from '@aws-sdk/client-servicediscovery';

let ecs: ECSClient | undefined;
let serviceDiscovery: ServiceDiscoveryClient | undefined;
let secretsManager: SecretsManagerClient | undefined;
let cloudWatchLogs: CloudWatchLogsClient | undefined;

export const ecsClient = (): ECSClient => (ecs ??= new ECSClient({}));
// DiscoverInstances is on the data plane (`data-` host prefix); an emulator
// endpoint has no such host, so the prefix is off when an endpoint is set.
export const serviceDiscoveryClient = (): ServiceDiscoveryClient =>
  (serviceDiscovery ??= new ServiceDiscoveryClient({ disableHostPrefix: process.env.AWS_ENDPOINT_URL !== undefined }));
export const secretsManagerClient = (): SecretsManagerClient => (secretsManager ??= new SecretsManagerClient({}));
export const cloudWatchLogsClient = (): CloudWatchLogsClient => (cloudWatchLogs ??= new CloudWatchLogsClient({}));
