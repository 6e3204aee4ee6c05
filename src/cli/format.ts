/** Bytes in SI units, as Unit21's 5 MB limit is written; a rate under 1 kB/s in whole bytes. */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${Math.round(bytes)} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = -1;
  do {
    value /= 1000;
    unit++;
  } while (value >= 1000 && unit < units.length - 1);
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function formatDuration(ms: number): string {
  return ms < 60_000
    ? `${(ms / 1000).toFixed(1)} s`
    : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** A count as every human line writes it: `1,175`. */
export const count = (n: number) => n.toLocaleString('en-US');

export const plural = (n: number, word: string) => `${count(n)} ${word}${n === 1 ? '' : 's'}`;

/**
 * What a file flagged possibly_duplicated may have left on its entity: a request of it was sent
 * and no answer came. Failed, that request may have been stored (once); uploaded after such a
 * request, the file may be there twice.
 */
export const unansweredCase = (outcome: 'uploaded' | 'failed') =>
  outcome === 'failed'
    ? "may be stored anyway: a request of it got no answer (this run's or an earlier one's)"
    : 'may be stored twice: an earlier attempt was sent and got no answer';

/** A rate of files: "31 files/s", "1 file/s"; under one a second, one significant digit ("0.4 files/s"), not "0". */
export function perSecond(files: number, ms: number): string {
  const rate = (1000 * files) / ms;
  return rate > 0 && rate < 0.95 ? `${Number(rate.toPrecision(1))} files/s` : `${plural(Math.round(rate), 'file')}/s`;
}
