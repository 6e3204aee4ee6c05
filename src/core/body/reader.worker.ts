import { parentPort } from 'node:worker_threads';
import { Assembler, type Piece } from './assembler.js';

/** A reader thread: builds the bodies it is sent, and sends them back a mebibyte at a time. */
export interface ReaderRequest {
  id: number;
  pieces: Piece[];
}

export type ReaderReply =
  | { id: number; body: ArrayBuffer; length: number; digests: string[] }
  | { id: number; error: Pick<NodeJS.ErrnoException, 'message' | 'code' | 'errno' | 'path' | 'syscall' | 'stack'> };

const assembler = new Assembler();

parentPort!.on('message', ({ requests, spare }: { requests: ReaderRequest[]; spare: ArrayBuffer[] }) => {
  let replies: ReaderReply[] = [];
  let transfer: ArrayBuffer[] = [];
  let bytes = 0;
  for (const [index, { id, pieces }] of requests.entries()) {
    try {
      const { body, digests } = assembler.build(pieces, spare);
      const buffer = body.buffer as ArrayBuffer; // its own, never a pool's
      replies.push({ id, body: buffer, length: body.length, digests });
      transfer.push(buffer);
      bytes += body.length;
    } catch (error) {
      const { message, code, errno, path, syscall, stack } = error as NodeJS.ErrnoException;
      replies.push({ id, error: { message, code, errno, path, syscall, stack } });
    }
    // Sent back a mebibyte at a time: the first of many large requests is not held up by the rest.
    if (bytes >= 1_048_576 || index === requests.length - 1) {
      parentPort!.postMessage(replies, transfer);
      [replies, transfer, bytes] = [[], [], 0];
    }
  }
  // Memory given back and not used is let go with the message.
});
