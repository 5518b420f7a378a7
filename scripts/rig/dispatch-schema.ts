/**
 * A schema and data deep enough that one CheckPermission becomes many
 * dispatches spread over the cluster: documents in folders, folders in parent
 * folders (a tree several levels deep), viewers that are nested groups. Every
 * sub-problem (`folder:X#view`, `group:Y#member` ...) is hashed to a peer, so
 * a check touches most nodes. Deterministic for a given seed.
 */
import { v1 } from '@authzed/authzed-node';
import { parseRelationship, toV1Relationship } from '../../functions/shared/relationships';

export const DISPATCH_SCHEMA = `definition user {}

definition group {
  relation member: user | group#member
}

definition folder {
  relation parent: folder
  relation viewer: user | group#member
  permission view = viewer + parent->view
}

definition document {
  relation folder: folder
  relation viewer: user | group#member
  permission view = viewer + folder->view
}
`;

export interface DispatchFixtureOptions {
  /** Root folders (default 2). */
  roots?: number;
  /** Levels below the roots (default 3). */
  depth?: number;
  /** Subfolders per folder (default 3). */
  fanout?: number;
  /** Documents per leaf folder (default 2). */
  documentsPerLeaf?: number;
  /** Users (default 200). */
  users?: number;
  /** Groups per level, top to leaf (default [2, 6, 18]). */
  groupLevels?: number[];
  /** Users per leaf group (default 8). */
  usersPerLeafGroup?: number;
  seed?: number;
}

export interface DispatchFixture {
  schema: string;
  /** `resource:id#relation@subject:id[#relation]`, the validation-file form. */
  relationships: string[];
  documents: string[];
  users: string[];
}

/** A small deterministic PRNG (mulberry32): the same seed gives the same data and checks. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Builds the relationships: folder trees, nested groups, sparse viewers. */
export function dispatchFixture(opts: DispatchFixtureOptions = {}): DispatchFixture {
  const rnd = seededRandom(opts.seed ?? 42);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)] as T;
  const rels: string[] = [];
  const users = Array.from({ length: opts.users ?? 200 }, (_, i) => `u${i}`);

  // Groups: each group of a level is a member (via #member) of one group of the level above.
  const levels = (opts.groupLevels ?? [2, 6, 18]).map((n, l) => Array.from({ length: n }, (_, i) => `g${l}_${i}`));
  for (let l = 1; l < levels.length; l++) {
    for (const g of levels[l] ?? []) rels.push(`group:${pick(levels[l - 1] ?? [])}#member@group:${g}#member`);
  }
  const leafGroups = levels[levels.length - 1] ?? [];
  for (const g of leafGroups) {
    const members = new Set<string>();
    while (members.size < Math.min(opts.usersPerLeafGroup ?? 8, users.length)) members.add(pick(users));
    for (const u of members) rels.push(`group:${g}#member@user:${u}`);
  }
  const allGroups = levels.flat();

  // Folder trees; roots have no viewer, so a denied check walks every level.
  const fanout = opts.fanout ?? 3;
  let level = Array.from({ length: opts.roots ?? 2 }, (_, i) => `f0_${i}`);
  for (let d = 1; d <= (opts.depth ?? 3); d++) {
    const next: string[] = [];
    level.forEach((parent, p) => {
      for (let c = 0; c < fanout; c++) {
        const f = `f${d}_${p * fanout + c}`;
        next.push(f);
        rels.push(`folder:${f}#parent@folder:${parent}`);
        if (rnd() < 0.3) rels.push(`folder:${f}#viewer@group:${pick(allGroups)}#member`);
      }
    });
    level = next;
  }
  const documents: string[] = [];
  for (const f of level) {
    for (let i = 0; i < (opts.documentsPerLeaf ?? 2); i++) {
      const doc = `d_${f}_${i}`;
      documents.push(doc);
      rels.push(`document:${doc}#folder@folder:${f}`);
      if (rnd() < 0.3) rels.push(`document:${doc}#viewer@user:${pick(users)}`);
    }
  }
  return { schema: DISPATCH_SCHEMA, relationships: [...new Set(rels)], documents, users };
}

/** Writes the schema and relationships (TOUCH, batches of 500); returns the last ZedToken. */
export async function writeDispatchFixture(client: v1.ZedPromiseClientInterface, fixture: DispatchFixture): Promise<string> {
  await client.writeSchema(v1.WriteSchemaRequest.create({ schema: fixture.schema }));
  let token = '';
  for (let i = 0; i < fixture.relationships.length; i += 500) {
    const res = await client.writeRelationships(
      v1.WriteRelationshipsRequest.create({
        updates: fixture.relationships.slice(i, i + 500).map((r) =>
          v1.RelationshipUpdate.create({ operation: v1.RelationshipUpdate_Operation.TOUCH, relationship: toV1Relationship(parseRelationship(r)) }),
        ),
      }),
    );
    token = res.writtenAt?.token ?? token;
  }
  return token;
}

const FULL = v1.Consistency.create({ requirement: { oneofKind: 'fullyConsistent', fullyConsistent: true } });

/** A random `document:D#view@user:U` check at full consistency (every check reads the head revision). */
export function randomDocumentCheck(fixture: DispatchFixture, rnd: () => number = Math.random): v1.CheckPermissionRequest {
  const doc = fixture.documents[Math.floor(rnd() * fixture.documents.length)] ?? '';
  const user = fixture.users[Math.floor(rnd() * fixture.users.length)] ?? '';
  return v1.CheckPermissionRequest.create({
    resource: v1.ObjectReference.create({ objectType: 'document', objectId: doc }),
    permission: 'view',
    subject: v1.SubjectReference.create({ object: v1.ObjectReference.create({ objectType: 'user', objectId: user }) }),
    consistency: FULL,
  });
}
