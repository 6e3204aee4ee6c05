// Its own module: the sandbox command checks its flags with it without loading the config search.
import { UsageError } from '../core/errors.js';

/** A number from a flag, variable or config value, in range, or a UsageError naming `origin` and the range. */
export function numberFrom(raw: unknown, origin: string, { min = 0, max = Infinity, whole = false }: { min?: number | undefined; max?: number | undefined; whole?: boolean }): number {
  const text = String(raw).trim();
  const value = typeof raw === 'number' ? raw : Number(whole ? text.replace(/_/g, '') : text);
  const wholeOk = !whole || (/^\d[\d_]*$/.test(text) && Number.isSafeInteger(value));
  if (text === '' || !Number.isFinite(value) || value < min || value > max || !wholeOk) {
    const range = max < Infinity ? `from ${min} to ${max}` : `of at least ${min}`;
    throw new UsageError(`${origin}: "${String(raw)}" is not a valid value`, `use ${whole ? 'a whole number' : 'a number'} ${range}`);
  }
  return value;
}
