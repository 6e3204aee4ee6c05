/**
 * custom_data nested deeper than this is refused. Unit21 keeps custom_data as a record's fields,
 * and real ones nest two or three levels; 32 leaves room for any of those, while a deeper value
 * (a sidecar 10,000 levels deep) would make JSON.stringify, and any server's parser, run out of
 * stack.
 */
export const MAX_CUSTOM_DATA_DEPTH = 32;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** A text as messages show it: quoted and escaped (a lone surrogate as `\ud800`), cut when long. */
const quoted = (text: string) => JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);

/**
 * Why a text from an input cannot be sent as it is, or undefined when it can. A lone UTF-16
 * surrogate (`"\ud800"` in JSON) is not text: it has no UTF-8 form, so it cannot go in a URL
 * (encodeURIComponent throws) and would reach the API changed. `what` names it: `entity id`.
 */
export function textProblem(text: string, what: string): string | undefined {
  if (text.isWellFormed()) return undefined;
  const at = LONE_SURROGATE.exec(text)!.index;
  const unit = `\\u${text.charCodeAt(at).toString(16)}`;
  return `${what} ${quoted(text)} is not well-formed text: a lone UTF-16 surrogate (${unit}) at character ${at + 1}; fix the input that holds it`;
}

/** A place in a JSON value: where it hangs, so that a message can name it. */
interface Step {
  node: unknown;
  depth: number;
  up?: Step;
  key?: string;
  inArray?: boolean;
}

/** Where a step is, as messages name it: `custom_data["history"][3]`; made only for a message. */
function placeOf(step: Step, what: string): string {
  const keys: string[] = [];
  for (let at: Step | undefined = step; at?.up; at = at.up)
    keys.unshift(at.inArray ? `[${at.key}]` : `[${quoted(at.key!)}]`);
  return `${what}${keys.join('')}`;
}

/**
 * Why a JSON value (custom_data) cannot be sent, or undefined when it can: a key or a string
 * at any depth that is not well-formed text, or nesting deeper than MAX_CUSTOM_DATA_DEPTH
 * (the value itself is level 1). Walks no deeper than that, without recursion.
 */
export function jsonValueProblem(value: unknown, what: string): string | undefined {
  const stack: Step[] = [{ node: value, depth: 1 }];
  for (let step = stack.pop(); step; step = stack.pop()) {
    const { node, depth } = step;
    if (typeof node === 'string') {
      if (!node.isWellFormed()) return textProblem(node, placeOf(step, what));
      continue;
    }
    if (typeof node !== 'object' || node === null) continue;
    if (depth > MAX_CUSTOM_DATA_DEPTH)
      return `${what} is nested more than ${MAX_CUSTOM_DATA_DEPTH} levels deep; custom_data holds a record's fields, not a tree that deep`;
    const inArray = Array.isArray(node);
    for (const [key, child] of Object.entries(node)) {
      if (!inArray && !key.isWellFormed()) return textProblem(key, `${placeOf(step, what)} key`);
      stack.push({ node: child, depth: depth + 1, up: step, key, inArray });
    }
  }
  return undefined;
}
