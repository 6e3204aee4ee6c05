// Its own module: the sandbox command checks its flags with it without loading the config search.
import { UsageError } from '../core/shared/errors.js';

/** A number from a flag, variable or config value, in range, or a UsageError naming `origin` and the range. */
export function numberFrom(
  raw: unknown,
  origin: string,
  { min = 0, max = Infinity, whole = false }: { min?: number | undefined; max?: number | undefined; whole?: boolean },
): number {
  const text = String(raw).trim();
  const value = typeof raw === 'number' ? raw : Number(whole ? text.replace(/_/g, '') : text);
  const wholeOk = !whole || (/^\d[\d_]*$/.test(text) && Number.isSafeInteger(value));
  const range = max < Infinity ? `from ${min} to ${max}` : `of at least ${min}`;
  const hint = `use ${whole ? 'a whole number' : 'a number'} ${range}`;
  const refused = `${origin}: "${String(raw)}" is not a valid value`;
  if (text === '' || !Number.isFinite(value) || !wholeOk) throw new UsageError(refused, hint);
  // A number, but out of range: the line says which end it passed.
  if (value > max) throw new UsageError(`${refused} (over the maximum, ${max})`, hint);
  if (value < min) throw new UsageError(`${refused} (under the minimum, ${min})`, hint);
  return value;
}
