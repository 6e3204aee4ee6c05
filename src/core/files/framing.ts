/** A file read whole: its bytes as they go out (as they are, or base64), FRAMING_ROOM in from either end of their memory, and the sha256 of the bytes read. */
export interface WholeFile {
  bytes: Buffer;
  sha256: string;
}

/**
 * Room left before and after a file's bytes in its memory, for the framing of a request of that
 * one file: its body is then made in place, without a copy (body/request-body.ts).
 */
export const FRAMING_ROOM = 2048;
