/**
 * The schema change a write will make, from SpiceDB's DiffSchema (the pinned
 * v1.56.2 answers it, also on an empty store), as short lines for the log and
 * a bounded summary for the response Data.
 */
import type { v1 } from '@authzed/authzed-node';

function typeRef(t: v1.ReflectionTypeReference | undefined): string {
  if (!t) return '?';
  let out = t.subjectDefinitionName;
  if (t.typeref.oneofKind === 'optionalRelationName' && t.typeref.optionalRelationName) out += `#${t.typeref.optionalRelationName}`;
  if (t.typeref.oneofKind === 'isPublicWildcard' && t.typeref.isPublicWildcard) out += ':*';
  if (t.optionalCaveatName) out += ` with ${t.optionalCaveatName}`;
  return out;
}

const member = (x: { parentDefinitionName: string; name: string } | undefined): string => (x ? `${x.parentDefinitionName}#${x.name}` : '?');

/** One line per change: `+definition folder`, `-relation post#reader`, `~permission post#read` ... */
export function describeDiff(d: v1.ReflectionSchemaDiff): string {
  const k = d.diff;
  switch (k.oneofKind) {
    case 'definitionAdded':
      return `+definition ${k.definitionAdded.name}`;
    case 'definitionRemoved':
      return `-definition ${k.definitionRemoved.name}`;
    case 'definitionDocCommentChanged':
      return `~comment definition ${k.definitionDocCommentChanged.name}`;
    case 'relationAdded':
      return `+relation ${member(k.relationAdded)}`;
    case 'relationRemoved':
      return `-relation ${member(k.relationRemoved)}`;
    case 'relationDocCommentChanged':
      return `~comment relation ${member(k.relationDocCommentChanged)}`;
    case 'relationSubjectTypeAdded':
      return `+type ${member(k.relationSubjectTypeAdded.relation)}: ${typeRef(k.relationSubjectTypeAdded.changedSubjectType)}`;
    case 'relationSubjectTypeRemoved':
      return `-type ${member(k.relationSubjectTypeRemoved.relation)}: ${typeRef(k.relationSubjectTypeRemoved.changedSubjectType)}`;
    case 'permissionAdded':
      return `+permission ${member(k.permissionAdded)}`;
    case 'permissionRemoved':
      return `-permission ${member(k.permissionRemoved)}`;
    case 'permissionDocCommentChanged':
      return `~comment permission ${member(k.permissionDocCommentChanged)}`;
    case 'permissionExprChanged':
      return `~permission ${member(k.permissionExprChanged)}`;
    case 'caveatAdded':
      return `+caveat ${k.caveatAdded.name}`;
    case 'caveatRemoved':
      return `-caveat ${k.caveatRemoved.name}`;
    case 'caveatDocCommentChanged':
      return `~comment caveat ${k.caveatDocCommentChanged.name}`;
    case 'caveatExprChanged':
      return `~caveat ${k.caveatExprChanged.name}`;
    case 'caveatParameterAdded':
      return `+caveat parameter ${k.caveatParameterAdded.parentCaveatName}.${k.caveatParameterAdded.name}`;
    case 'caveatParameterRemoved':
      return `-caveat parameter ${k.caveatParameterRemoved.parentCaveatName}.${k.caveatParameterRemoved.name}`;
    case 'caveatParameterTypeChanged': {
      const c = k.caveatParameterTypeChanged;
      return `~caveat parameter ${c.parameter?.parentCaveatName ?? '?'}.${c.parameter?.name ?? '?'}: ${c.previousType} -> ${c.parameter?.type ?? '?'}`;
    }
    default:
      return '~unknown change';
  }
}

/** `no changes`, or `N changes: a, b, ...` within `maxChars`, counting what was left out. */
export function summarizeDiff(lines: readonly string[], maxChars = 400): string {
  if (lines.length === 0) return 'no changes';
  const head = `${lines.length} change${lines.length === 1 ? '' : 's'}: `;
  const full = head + lines.join(', ');
  if (full.length <= maxChars) return full;
  let out = head;
  let kept = 0;
  for (const line of lines) {
    const piece = (kept === 0 ? '' : ', ') + line;
    const suffix = `, ... (+${lines.length - kept - 1} more)`;
    if (out.length + piece.length + suffix.length > maxChars) break;
    out += piece;
    kept++;
  }
  return `${kept === 0 ? head.trimEnd() : `${out},`} ... (+${lines.length - kept} more)`;
}
