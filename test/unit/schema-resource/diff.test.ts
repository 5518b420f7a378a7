/** The schema change as log lines and a bounded summary. */
import { v1 } from '@authzed/authzed-node';
import fc from 'fast-check';
import { describeDiff, summarizeDiff } from '../../../functions/schema-resource/diff';

const relation = (parentDefinitionName: string, name: string) => v1.ReflectionRelation.create({ parentDefinitionName, name });
const permission = (parentDefinitionName: string, name: string) => v1.ReflectionPermission.create({ parentDefinitionName, name });

describe('describeDiff', () => {
  it.each<[v1.ReflectionSchemaDiff['diff'], string]>([
    [{ oneofKind: 'definitionAdded', definitionAdded: v1.ReflectionDefinition.create({ name: 'folder' }) }, '+definition folder'],
    [{ oneofKind: 'definitionRemoved', definitionRemoved: v1.ReflectionDefinition.create({ name: 'folder' }) }, '-definition folder'],
    [{ oneofKind: 'relationAdded', relationAdded: relation('post', 'editor') }, '+relation post#editor'],
    [{ oneofKind: 'relationRemoved', relationRemoved: relation('post', 'reader') }, '-relation post#reader'],
    [
      {
        oneofKind: 'relationSubjectTypeAdded',
        relationSubjectTypeAdded: v1.ReflectionRelationSubjectTypeChange.create({
          relation: relation('post', 'reader'),
          changedSubjectType: v1.ReflectionTypeReference.create({ subjectDefinitionName: 'user', typeref: { oneofKind: 'isPublicWildcard', isPublicWildcard: true } }),
        }),
      },
      '+type post#reader: user:*',
    ],
    [
      {
        oneofKind: 'relationSubjectTypeRemoved',
        relationSubjectTypeRemoved: v1.ReflectionRelationSubjectTypeChange.create({
          relation: relation('post', 'reader'),
          changedSubjectType: v1.ReflectionTypeReference.create({ subjectDefinitionName: 'group', optionalCaveatName: 'cav', typeref: { oneofKind: 'optionalRelationName', optionalRelationName: 'member' } }),
        }),
      },
      '-type post#reader: group#member with cav',
    ],
    [{ oneofKind: 'permissionExprChanged', permissionExprChanged: permission('post', 'read') }, '~permission post#read'],
    [{ oneofKind: 'permissionAdded', permissionAdded: permission('post', 'edit') }, '+permission post#edit'],
    [{ oneofKind: 'caveatAdded', caveatAdded: v1.ReflectionCaveat.create({ name: 'ip_ok' }) }, '+caveat ip_ok'],
    [
      {
        oneofKind: 'caveatParameterTypeChanged',
        caveatParameterTypeChanged: v1.ReflectionCaveatParameterTypeChange.create({
          parameter: v1.ReflectionCaveatParameter.create({ parentCaveatName: 'ip_ok', name: 'ip', type: 'ipaddress' }),
          previousType: 'string',
        }),
      },
      '~caveat parameter ip_ok.ip: string -> ipaddress',
    ],
  ])('describes %j', (diff, line) => {
    expect(describeDiff(v1.ReflectionSchemaDiff.create({ diff }))).toBe(line);
  });
});

describe('summarizeDiff', () => {
  it('says so when nothing changes', () => {
    expect(summarizeDiff([])).toBe('no changes');
  });

  it('lists every change when they fit', () => {
    expect(summarizeDiff(['+relation post#editor', '~permission post#write'])).toBe('2 changes: +relation post#editor, ~permission post#write');
  });

  it('cuts a long list and counts what it left out', () => {
    const lines = Array.from({ length: 50 }, (_, i) => `+definition def${i}`);
    const summary = summarizeDiff(lines, 120);
    expect(summary.length).toBeLessThanOrEqual(120);
    const shown = summary.slice('50 changes: '.length).split(', ').filter((p) => p.startsWith('+definition'));
    expect(summary).toMatch(new RegExp(`\\.\\.\\. \\(\\+${50 - shown.length} more\\)$`));
  });

  it('stays within the limit for any list', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ minLength: 1, maxLength: 80 }), { maxLength: 60 }), fc.integer({ min: 60, max: 500 }), (lines, max) => {
        expect(summarizeDiff(lines, max).length).toBeLessThanOrEqual(max);
      }),
    );
  });
});
