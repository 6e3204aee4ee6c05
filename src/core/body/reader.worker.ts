import { parentPort } from 'node:worker_threads';
import type { FileIdentity } from '../files/file-identity.js';
import type { CheckedFile } from './file-stream.js';
import { FileReader } from './whole-file.js';

/** A reader thread: reads the files it is sent whole, or only hashes them, and sends them back a mebibyte at a time. */
export type ReaderRequest =
  | { id: number; file: CheckedFile; base64: boolean }
  | { id: number; digestOf: { path: string; identity?: FileIdentity } };

export type ReaderReply =
  | { id: number; memory: ArrayBuffer; offset: number; length: number; sha256: string }
  | { id: number; sha256: string }
  | { id: number; error: Pick<NodeJS.ErrnoException, 'message' | 'code' | 'errno' | 'path' | 'syscall' | 'stack'> };

const reader = new FileReader();

parentPort!.on('message', ({ requests, spare }: { requests: ReaderRequest[]; spare: ArrayBuffer[] }) => {
  let replies: ReaderReply[] = [];
  let transfer: ArrayBuffer[] = [];
  let bytes = 0;
  for (const [index, request] of requests.entries()) {
    const { id } = request;
    try {
      if ('digestOf' in request)
        replies.push({ id, sha256: reader.digest(request.digestOf.path, request.digestOf.identity) });
      else {
        const read = reader.read(request.file, request.base64, spare);
        const memory = read.bytes.buffer as ArrayBuffer; // its own, never a pool's
        replies.push({ id, memory, offset: read.bytes.byteOffset, length: read.bytes.length, sha256: read.sha256 });
        transfer.push(memory);
        bytes += read.bytes.length;
      }
    } catch (error) {
      const { message, code, errno, path, syscall, stack } = error as NodeJS.ErrnoException;
      replies.push({ id, error: { message, code, errno, path, syscall, stack } });
    }
    // Sent back a mebibyte at a time: the first of many files is not held up by the rest.
    if (bytes >= 1_048_576 || index === requests.length - 1) {
      parentPort!.postMessage(replies, transfer);
      [replies, transfer, bytes] = [[], [], 0];
    }
  }
  // Memory given back and not used is let go with the message.
});
