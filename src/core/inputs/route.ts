import { basename, dirname } from 'node:path';
import type { FoundFile } from './found.js';
import type { LinkedObject, ObjectType } from './objects.js';
import { textProblem } from '../shared/well-formed.js';

/** Where each file's entity comes from: exactly one per run. */
export type EntitySource =
  | { kind: 'entity'; id: string }
  /** An event's media: same body formats, but media_type is required. */
  | { kind: 'event'; id: string }
  /** An alert's or a case's media, by its unit21_id: same body formats. */
  | { kind: 'alert'; id: string }
  | { kind: 'case'; id: string }
  | { kind: 'dir' }
  | { kind: 'prefix' }
  /** A manifest, or (retryFailed) a report's failed and not_sent rows. */
  | { kind: 'manifest'; path: string; retryFailed?: true };

const LINKED_OBJECTS: readonly LinkedObject[] = ['events', 'alerts', 'cases'];

/** One of each, as messages name it: "entity cust-1", "alert 9001". */
export const OBJECT_NAME: Readonly<Record<ObjectType, string>> = {
  entities: 'entity',
  events: 'event',
  alerts: 'alert',
  cases: 'case',
};

/** The linked object a stored value names, or undefined (an entity, or not one of ours). */
export const linkedObject = (value: unknown): LinkedObject | undefined => LINKED_OBJECTS.find((o) => o === value);

export const OBJECT_OF: Partial<Record<EntitySource['kind'], LinkedObject>> = {
  event: 'events',
  alert: 'alerts',
  case: 'cases',
};

/** Longest entity id Unit21 takes. */
const MAX_ENTITY_ID_LENGTH = 128;

/** Why an entity id (or an event's, an alert's, a case's) cannot be used, or undefined when it can. */
export function entityIdProblem(id: string, what = 'entity id'): string | undefined {
  const notText = textProblem(id, what);
  if (notText) return notText;
  const length = [...id].length;
  if (length === 0) return `${what} is empty`;
  if (length > MAX_ENTITY_ID_LENGTH)
    return `${what} is ${length} characters, over Unit21's limit of ${MAX_ENTITY_ID_LENGTH}`;
  // URL parsers collapse these path segments even when percent-encoded.
  if (id === '.' || id === '..') return `${what} "${id}" cannot travel in a URL`;
  return undefined;
}

/** Why an id cannot name its object: entityIdProblem's reasons, and for an alert or a case, not being its unit21_id (a number Unit21 gives it). */
export function idProblem(
  id: string,
  object: LinkedObject | undefined,
  what = `${OBJECT_NAME[object ?? 'entities']} id`,
): string | undefined {
  const problem = entityIdProblem(id, what);
  if (problem || (object !== 'alerts' && object !== 'cases') || /^[0-9]+$/.test(id)) return problem;
  return `${what} "${id}" is not a number: Unit21 names ${OBJECT_NAME[object]}s by their unit21_id, the number it gives each`;
}

// Unit21's spec describes entity ids of these characters only; the live API may be looser, so others are warned of, not refused.
const SPEC_ID_CHARACTER = /[-_:.@a-zA-Z0-9!#$%&'*+/=?^`{]/u;
const SPEC_ID = new RegExp(`^${SPEC_ID_CHARACTER.source}*$`, 'u');
export const SPEC_ID_RULE = "letters a-z A-Z, digits and - _ : . @ ! # $ % & ' * + / = ? ^ ` {";

/** The characters of an id outside the spec's set, each once, in order; empty when it keeps to it. */
export function offSpecCharacters(id: string): string[] {
  if (SPEC_ID.test(id)) return [];
  return [...new Set([...id].filter((c) => !SPEC_ID_CHARACTER.test(c)))];
}

/** Separates the entity from the rest of the name in `prefix` mode: `cust42__passport.jpg`. */
const PREFIX_SEPARATOR = '__';

/** A file's entity, and the part of its name (its base name) the file-name conventions read; or why there is none. */
export function route(
  file: FoundFile,
  name: string,
  source: EntitySource,
): { entityId: string; object?: LinkedObject; conventionName: string } | { problem: string } {
  let entityId: string;
  let conventionName = name;
  const object = source.kind === 'manifest' ? file.row!.object : OBJECT_OF[source.kind];
  switch (source.kind) {
    case 'entity':
    case 'event':
    case 'alert':
    case 'case':
      entityId = source.id;
      break;
    case 'manifest':
      entityId = file.row!.entityId;
      break;
    case 'dir':
      entityId = basename(dirname(file.absPath));
      break;
    case 'prefix': {
      const at = name.indexOf(PREFIX_SEPARATOR);
      if (at <= 0) return { problem: `the name has no "<entity>${PREFIX_SEPARATOR}" prefix (--entity-from prefix)` };
      entityId = name.slice(0, at);
      conventionName = name.slice(at + PREFIX_SEPARATOR.length);
      break;
    }
  }
  const problem = idProblem(entityId, object);
  return problem ? { problem } : { entityId, ...(object && { object }), conventionName };
}
