/**
 * Whether a request runs `spicedb datastore migrate head`: once per image
 * version and datastore. A Create migrates; an Update migrates only when the
 * image or the datastore changed (any other change, e.g. CPU, must not start
 * a migration); a Delete never does (SpiceDB has no down migrations).
 */
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { migrationTarget, type MigrationProperties } from './properties';

export type Decision = { migrate: boolean; reason: string };

export function decide(event: CloudFormationCustomResourceEvent, props: MigrationProperties): Decision {
  switch (event.RequestType) {
    case 'Create':
      return { migrate: true, reason: `create: migrate the datastore for ${props.image}` };
    case 'Delete':
      return { migrate: false, reason: 'delete: migrations are never reverted' };
    case 'Update': {
      const old = migrationTarget(event.OldResourceProperties);
      if (old.image !== props.image) return { migrate: true, reason: `image changed from ${old.image ?? '(none)'} to ${props.image}` };
      if (old.datastoreUriSecretArn !== props.datastoreUriSecretArn) return { migrate: true, reason: 'the datastore changed' };
      return { migrate: false, reason: `image ${props.image} and datastore unchanged: already migrated` };
    }
  }
}
