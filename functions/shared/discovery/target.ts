/**
 * What the registrar and the reconciler act on: one ECS service of one
 * cluster, mirrored into one Cloud Map service. Read once at module load.
 */
import { ConfigError } from '../errors';
import { intEnv, requireEnv } from '../config';

/** The ECS service whose tasks are mirrored into the Cloud Map service. */
export interface DiscoveryTarget {
  /** Full ARN of the ECS cluster (events carry the ARN, not the name). */
  clusterArn: string;
  /** ECS service name; its tasks carry `group: service:<name>`. */
  serviceName: string;
  /** Cloud Map service id (`srv-...`). */
  cloudMapServiceId: string;
  /** SpiceDB's dispatch port, registered as AWS_INSTANCE_PORT. */
  dispatchPort: number;
}

/** SpiceDB's default dispatch port (`--dispatch-cluster-addr :50053`). */
export const DEFAULT_DISPATCH_PORT = 50053;

/**
 * Reads ECS_CLUSTER_ARN, ECS_SERVICE_NAME, CLOUD_MAP_SERVICE_ID and
 * DISPATCH_PORT (default 50053). Throws ConfigError naming the variable.
 */
export function targetFromEnv(env: NodeJS.ProcessEnv = process.env): DiscoveryTarget {
  const clusterArn = requireEnv('ECS_CLUSTER_ARN', env);
  if (!/^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:cluster\/[A-Za-z0-9_-]{1,255}$/.test(clusterArn)) {
    throw new ConfigError(`environment variable ECS_CLUSTER_ARN must be an ECS cluster ARN (arn:aws:ecs:REGION:ACCOUNT:cluster/NAME), got "${clusterArn}"`);
  }
  const serviceName = requireEnv('ECS_SERVICE_NAME', env);
  const cloudMapServiceId = requireEnv('CLOUD_MAP_SERVICE_ID', env);
  if (!/^srv-[a-z0-9]{1,60}$/.test(cloudMapServiceId)) {
    throw new ConfigError(`environment variable CLOUD_MAP_SERVICE_ID must be a Cloud Map service id (srv-...), got "${cloudMapServiceId}"`);
  }
  const dispatchPort = intEnv('DISPATCH_PORT', DEFAULT_DISPATCH_PORT, env);
  if (dispatchPort < 1 || dispatchPort > 65535) throw new ConfigError(`environment variable DISPATCH_PORT must be a port (1-65535), got ${dispatchPort}`);
  return { clusterArn, serviceName, cloudMapServiceId, dispatchPort };
}
