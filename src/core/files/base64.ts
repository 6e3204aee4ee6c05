/**
 * base64 in pieces whose strings stay below V8's 128 KiB bound for ordinary heap objects: a
 * larger string goes to the large-object space, and encoding ran ten times slower. A multiple
 * of 3, so only the last piece of a file may be padded.
 */
export const ENCODE_SIZE = 3 * 16 * 1024;

/** Length of standard padded base64 for `bytes` bytes. */
export const base64Length = (bytes: number) => 4 * Math.ceil(bytes / 3);

/** `bytes` as base64 into `target` at `at`; returns how many bytes were written. */
export function writeBase64(bytes: Buffer, target: Buffer, at: number): number {
  let out = at;
  for (const piece of base64Pieces(bytes)) out += target.write(piece, out, 'latin1');
  return out - at;
}

/** `bytes` as base64 strings of at most ENCODE_SIZE input bytes each. */
export function* base64Pieces(bytes: Buffer): Generator<string> {
  for (let from = 0; from < bytes.length; from += ENCODE_SIZE)
    yield bytes.subarray(from, from + ENCODE_SIZE).toString('base64');
}
