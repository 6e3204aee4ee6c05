import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { FILE_CHANGED, NON_BLOCKING_READ } from './file-stream.js';

/** A whole body in order: framing as it is, and files read in whole (JSON: as base64). */
export type Piece = string | { path: string; bytes: number; base64?: boolean };

export interface Assembled {
  body: Buffer;
  /** sha256 (hex) of each file's bytes, in order. */
  digests: string[];
}

type Reply =
  | { id: number; body: ArrayBuffer; length: number; digests: string[] }
  | { id: number; error: Pick<NodeJS.ErrnoException, 'message' | 'code' | 'errno' | 'path' | 'syscall' | 'stack'> };

/**
 * Small requests are read, hashed and framed by threads of their own, with plain blocking reads
 * that hold up nothing else. On the event loop, each file took three thread-pool round trips
 * (open, read, close) and its hash, which cost more than sending it. One core is left to the
 * event loop: on two cores, a second reader made a run 10% slower. Up to four readers, so that
 * network storage has several reads waiting at a time where there are cores for them.
 */
const THREADS = Math.max(1, Math.min(4, availableParallelism() - 1));

interface Thread {
  worker: Worker;
  pending: Map<number, { resolve: (assembled: Assembled) => void; reject: (error: Error) => void }>;
  /** Requests not yet posted: those of one turn of the event loop go in one message. */
  outbox: { id: number; pieces: readonly Piece[] }[];
}

/** Memory of bodies the server has read, handed back with the next requests to be read into again. */
let spare: ArrayBuffer[] = [];
// Enough for the requests in flight and read ahead at the default settings.
const SPARE_AT_MOST = 32;

/**
 * Gives a body's memory back once the server has read all of it. Fresh memory costs its
 * first touch of every page, more than reading the file into it; this memory is already
 * touched. Kept only while requests are waiting to be read, so a finished run holds none.
 * The body must not be used after.
 */
export function recycle(body: Buffer): void {
  const memory = body.buffer;
  if (!(memory instanceof ArrayBuffer) || memory.byteLength === 0 || spare.includes(memory)) return; // handed over already
  if (spare.length < SPARE_AT_MOST && threads.some((thread) => thread.pending.size > 0)) spare.push(memory);
}

const threads: Thread[] = [];
let nextId = 0;

/**
 * The body the pieces make, each file read in full at the size planned. A file that can no
 * longer be read so (gone, grown or shrunk) rejects with its error, which names it (`path`).
 */
export function assemble(pieces: readonly Piece[]): Promise<Assembled> {
  const thread = startReaderThreads().reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
  const id = nextId++;
  if (thread.pending.size === 0) thread.worker.ref();
  return new Promise((resolve, reject) => {
    thread.pending.set(id, { resolve, reject });
    if (thread.outbox.push({ id, pieces }) === 1) {
      setImmediate(() => {
        const [requests, given] = [thread.outbox, spare];
        [thread.outbox, spare] = [[], []];
        try {
          thread.worker.postMessage({ requests, spare: given }, given);
        } catch (error) {
          // Not to be: the requests fail (a bug, no path) rather than wait forever.
          for (const { id } of requests) {
            thread.pending.get(id)?.reject(error as Error);
            thread.pending.delete(id);
          }
          if (thread.pending.size === 0) thread.worker.unref();
        }
      });
    }
  });
}

/** Starts the threads, if not yet running (a thread takes some 60 ms); idle threads do not keep the process alive. */
function startReaderThreads(): readonly Thread[] {
  while (threads.length < THREADS) threads.push(startThread());
  return threads;
}

function startThread(): Thread {
  const worker = new Worker(`(${readerThread})()`, { eval: true, workerData: { fileChanged: FILE_CHANGED, openFlags: NON_BLOCKING_READ } });
  const thread: Thread = { worker, pending: new Map(), outbox: [] };
  worker.on('message', (replies: Reply[]) => {
    for (const reply of replies) settle(reply);
  });
  const settle = (reply: Reply) => {
    const waiting = thread.pending.get(reply.id);
    thread.pending.delete(reply.id);
    if (thread.pending.size === 0) worker.unref();
    if ('error' in reply) waiting?.reject(Object.assign(new Error(reply.error.message), reply.error));
    else waiting?.resolve({ body: Buffer.from(reply.body, 0, reply.length), digests: reply.digests });
  };
  // A thread that dies takes its requests with it (a bug, not a file's fault: no path); the next request starts another.
  const fail = (error: Error) => {
    if (threads.includes(thread)) threads.splice(threads.indexOf(thread), 1);
    for (const { reject } of thread.pending.values()) reject(error);
    thread.pending.clear();
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`a file reader thread stopped (exit code ${code})`)));
  // After the listeners: adding a message listener makes the thread hold the process again.
  worker.unref();
  return thread;
}

/**
 * The thread's code. It is sent as source, so it must not use anything from outside it: it runs
 * alike from the build and from the tests' TypeScript.
 */
function readerThread(): void {
  const { parentPort, workerData } = process.getBuiltinModule('node:worker_threads');
  const { openSync, readSync, closeSync } = process.getBuiltinModule('node:fs');
  const { createHash } = process.getBuiltinModule('node:crypto');
  // base64 in pieces whose strings stay below V8's 128 KiB bound for ordinary heap objects.
  const ENCODE_SIZE = 3 * 16 * 1024;
  const base64Length = (bytes: number) => 4 * Math.ceil(bytes / 3);

  /**
   * A file's planned bytes into `target` at `at`, which has room for one byte more: a read short
   * of that byte, with the planned bytes in, has found the end, so no read just to see it.
   */
  function readPlanned(path: string, bytes: number, target: Buffer, at: number): Buffer {
    const fd = openSync(path, workerData.openFlags); // as the stream opens: a pipe fails, not waits
    try {
      let filled = 0;
      for (;;) {
        const n = readSync(fd, target, at + filled, bytes + 1 - filled, filled);
        filled += n;
        if (n === 0 || filled >= bytes) break;
      }
      if (filled !== bytes) throw Object.assign(new Error(workerData.fileChanged), { code: 'file_changed' });
      return target.subarray(at, at + bytes);
    } finally {
      closeSync(fd);
    }
  }

  // Where a file read for JSON waits to be encoded.
  let scratch = Buffer.alloc(0);
  // Memory of earlier bodies, given back with the current message to be read into again; what it does not use is let go.
  let spare: ArrayBuffer[] = [];

  function build(pieces: Piece[]): { body: Buffer; digests: string[] } {
    const lengths = pieces.map((piece) => (typeof piece === 'string' ? Buffer.byteLength(piece) : piece.base64 ? base64Length(piece.bytes) : piece.bytes));
    const length = lengths.reduce((sum, n) => sum + n, 0);
    // Memory of its own, not a slice of a shared pool: it is handed over to the event loop whole.
    // Given-back memory is used only if it fits closely, so a small body never holds a large one.
    const fitting = spare.filter((memory) => memory.byteLength > length && memory.byteLength <= 2 * length + 65_536);
    const reused = fitting.reduce<ArrayBuffer | undefined>((best, memory) => (best && best.byteLength <= memory.byteLength ? best : memory), undefined);
    if (reused) spare.splice(spare.indexOf(reused), 1);
    const body = reused ? Buffer.from(reused, 0, length + 1) : Buffer.allocUnsafeSlow(length + 1);
    const digests: string[] = [];
    let at = 0;
    for (const [index, piece] of pieces.entries()) {
      if (typeof piece === 'string') body.write(piece, at, 'utf8');
      else {
        let bytes: Buffer;
        try {
          // Read straight into place; the framing after it is written over the extra byte.
          if (!piece.base64) bytes = readPlanned(piece.path, piece.bytes, body, at);
          else {
            if (scratch.length < piece.bytes + 1) scratch = Buffer.allocUnsafeSlow(piece.bytes + 1);
            bytes = readPlanned(piece.path, piece.bytes, scratch, 0);
          }
        } catch (error) {
          // The file system's errors, and a changed size, are the file's; anything else is a bug.
          const { syscall, code } = error as NodeJS.ErrnoException;
          throw syscall !== undefined || code === 'file_changed' ? Object.assign(error as Error, { path: piece.path }) : error;
        }
        digests.push(createHash('sha256').update(bytes).digest('hex'));
        if (piece.base64) {
          let out = at;
          for (let from = 0; from < bytes.length; from += ENCODE_SIZE) {
            out += body.write(bytes.subarray(from, from + ENCODE_SIZE).toString('base64'), out, 'latin1');
          }
        }
      }
      at += lengths[index]!;
    }
    return { body: body.subarray(0, length), digests };
  }

  parentPort!.on('message', ({ requests, spare: given }: { requests: { id: number; pieces: Piece[] }[]; spare: ArrayBuffer[] }) => {
    spare = given;
    let replies: unknown[] = [];
    let transfer: ArrayBuffer[] = [];
    let bytes = 0;
    for (const [index, { id, pieces }] of requests.entries()) {
      try {
        const { body, digests } = build(pieces);
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
  });
}
