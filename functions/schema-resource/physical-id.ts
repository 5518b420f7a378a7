/**
 * The PhysicalResourceId: derived from the stack, the logical id and the
 * SpiceDB endpoint, so it is the same for the resource's whole life, a new
 * endpoint gives a new id (CloudFormation then replaces the resource and
 * deletes the old id), and the rollback to the old endpoint gets the old id
 * back.
 */
import { createHash } from 'node:crypto';

export const PHYSICAL_ID_PREFIX = 'spicedb-schema-';

export function physicalResourceId(stackId: string, logicalResourceId: string, endpoint: string): string {
  const digest = createHash('sha256').update(`${stackId}\n${logicalResourceId}\n${endpoint}`).digest('hex');
  return `${PHYSICAL_ID_PREFIX}${digest.slice(0, 20)}`;
}
