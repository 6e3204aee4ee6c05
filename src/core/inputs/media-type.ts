import { basename } from 'node:path';
import { isImage } from '../files/file-types.js';
import { textProblem } from '../shared/well-formed.js';

/** media_type values Unit21 recognises for document verification. */
export const RECOGNISED_MEDIA_TYPES = [
  'IMAGE_PROFILE_PICTURE',
  'IMAGE_DRIVERS_LICENSE_FRONT',
  'IMAGE_DRIVERS_LICENSE_BACK',
  'IMAGE_PASSPORT_FRONT',
  'IMAGE_ID_CARD_FRONT',
  'IMAGE_ID_CARD_BACK',
  'IMAGE_FACE_IMAGE',
  'IMAGE_CHECK_FRONT',
  'IMAGE_CHECK_BACK',
] as const;

/** Where a file's media_type came from, first match wins in this order. */
export type MediaTypeSource = 'manifest' | 'sidecar' | 'flag' | 'file_name' | 'none';

/** A config-file rule: a glob or regex on the file's base name, tried before the built-in table. */
export interface ConventionRule {
  glob?: string;
  regex?: string;
  media_type: string;
}

/** The built-in convention table, as documented by `u21-media types`. */
export const CONVENTIONS: ReadonlyArray<{ words: string; mediaType: string }> = [
  { words: 'passport (+ front, or no side)', mediaType: 'IMAGE_PASSPORT_FRONT' },
  {
    words: 'drivers license / driver license / driving licence / dl + front',
    mediaType: 'IMAGE_DRIVERS_LICENSE_FRONT',
  },
  { words: 'drivers license / driver license / driving licence / dl + back', mediaType: 'IMAGE_DRIVERS_LICENSE_BACK' },
  { words: 'id card / national id / id + front', mediaType: 'IMAGE_ID_CARD_FRONT' },
  { words: 'id card / national id / id + back', mediaType: 'IMAGE_ID_CARD_BACK' },
  { words: 'selfie / face / liveness', mediaType: 'IMAGE_FACE_IMAGE' },
  { words: 'profile / avatar', mediaType: 'IMAGE_PROFILE_PICTURE' },
  { words: 'check / cheque + front', mediaType: 'IMAGE_CHECK_FRONT' },
  { words: 'check / cheque + back', mediaType: 'IMAGE_CHECK_BACK' },
];

/** Splits a base name into lower-case words on `_ - . space`, camelCase and letter/digit edges. */
export function wordsOf(fileName: string): string[] {
  const stem = fileName.replace(/\.[^.]*$/, '');
  return stem
    .replace(/'/g, '')
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .replace(/([A-Za-z])(\d)|(\d)([A-Za-z])/g, (_m, a, b, c, d) => (a ? `${a} ${b}` : `${c} ${d}`))
    .toLowerCase()
    .split(/[\s_.-]+/)
    .filter(Boolean);
}

function hasPair(words: string[], first: readonly string[], second: readonly string[]): boolean {
  return words.some((w, i) => first.includes(w) && second.includes(words[i + 1] ?? ''));
}

function sideOf(words: string[]): 'FRONT' | 'BACK' | undefined {
  const front = words.includes('front');
  const back = words.includes('back');
  if (front === back) return undefined;
  return front ? 'FRONT' : 'BACK';
}

/** The built-in file-name conventions; undefined when the name says nothing certain. */
export function conventionFor(fileName: string): string | undefined {
  const words = wordsOf(fileName);
  const has = (...any: string[]) => any.some((w) => words.includes(w));
  const side = sideOf(words);

  // A document word without a side says nothing certain; later rules may still match.
  if (has('passport') && side !== 'BACK') return 'IMAGE_PASSPORT_FRONT';
  const license = has('dl') || hasPair(words, ['driver', 'drivers', 'driving'], ['license', 'licence']);
  if (license && side) return `IMAGE_DRIVERS_LICENSE_${side}`;
  const idCard = has('id', 'idcard'); // covers "id card" and "national id"
  if (idCard && side) return `IMAGE_ID_CARD_${side}`;
  if (has('check', 'cheque') && side) return `IMAGE_CHECK_${side}`;
  if (has('selfie', 'face', 'liveness')) return 'IMAGE_FACE_IMAGE';
  if (has('profile', 'avatar')) return 'IMAGE_PROFILE_PICTURE';
  return undefined;
}

/** Rules a config may hold, and the longest pattern: matching each name costs each rule's pattern. */
const MAX_RULES = 100;
const MAX_PATTERN_LENGTH = 500;

/** A compiled config rule. Patterns compile once, not per file. */
export type CompiledRule = { test: (baseName: string) => boolean; mediaType: string };

/**
 * Compiles config rules; throws with the rule's index when a pattern is unusable. Globs and
 * regexes alike run on RE2 (re2js), in time linear in the name whoever wrote the pattern: a
 * pattern that backtracks cannot hang a run. RE2 has no lookaround or backreferences; a
 * pattern with them is refused. re2js is loaded only for a run with rules.
 */
export async function compileRules(rules: readonly ConventionRule[]): Promise<CompiledRule[]> {
  if (!Array.isArray(rules as unknown)) throw new Error('conventions must be a list');
  if (rules.length === 0) return [];
  // Linear in the name, but the work grows with the rules: a config's rules are a handful, never thousands.
  if (rules.length > MAX_RULES)
    throw new Error(`conventions has ${rules.length} rules, more than ${MAX_RULES}; keep the ones your files need`);
  const { RE2JS } = await import('re2js');
  return rules.map((rule, index) => {
    if (typeof rule !== 'object' || rule === null) throw new Error(`conventions[${index}] must be an object`);
    const hasGlob = typeof rule.glob === 'string';
    const hasRegex = typeof rule.regex === 'string';
    if (hasGlob === hasRegex || typeof rule.media_type !== 'string' || rule.media_type === '') {
      throw new Error(`conventions[${index}] needs exactly one of "glob" or "regex", and a "media_type"`);
    }
    const pattern = hasRegex ? rule.regex! : rule.glob!;
    if (pattern.length > MAX_PATTERN_LENGTH)
      throw new Error(
        `conventions[${index}]: the ${hasRegex ? 'regex' : 'glob'} is ${pattern.length} characters, over ${MAX_PATTERN_LENGTH}`,
      );
    const notText = textProblem(rule.media_type, `conventions[${index}] "media_type"`);
    if (notText) throw new Error(notText);
    let re;
    try {
      re = RE2JS.compile(hasRegex ? rule.regex! : globToRegex(rule.glob!), RE2JS.CASE_INSENSITIVE);
    } catch (error) {
      const why = (error as Error).message.replace(/^error parsing regexp: /, '');
      throw new Error(
        `conventions[${index}]: ${hasRegex ? 'the regex' : 'the glob'} cannot be used (${why}); patterns use RE2's syntax, which has no lookaround or backreferences`,
      );
    }
    return { test: (name) => re.test(name), mediaType: rule.media_type };
  });
}

/** A glob on a base name (`*`, `?`, `{a,b}`) as an RE2 pattern matching the whole name. */
function globToRegex(glob: string): string {
  let out = '';
  for (const ch of glob) {
    if (ch === '*') out += '.*';
    else if (ch === '?') out += '.';
    else if (ch === '{') out += '(?:';
    else if (ch === '}') out += ')';
    else if (ch === ',') out += '|';
    else out += ch.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
  }
  return `^(?s:${out})$`;
}

/** media_type from the file name: config rules first (any file type), then the built-in table (images only). */
export function inferMediaType(filePath: string, rules: readonly CompiledRule[]): string | undefined {
  const name = basename(filePath);
  const rule = rules.find((r) => r.test(name));
  if (rule) return rule.mediaType;
  return isImage(name) ? conventionFor(name) : undefined;
}

/** Whether Unit21 recognises the value (others are sent, with a warning). */
export function isRecognised(mediaType: string): boolean {
  return (RECOGNISED_MEDIA_TYPES as readonly string[]).includes(mediaType);
}
