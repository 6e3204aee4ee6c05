import { Worker } from 'node:worker_threads';
import type { Assembled, Piece } from './assembler.js';
import type { ReaderReply, ReaderRequest } from './reader.worker.js';

export type { Assembled, Piece } from './assembler.js';

/** Reads whole bodies for small requests: framing and files, hashed, in one buffer. */
export interface BodyReader {
  /** The body the pieces make; a file that can no longer be read at its planned size rejects with its error (`path`). */
  assemble(pieces: readonly Piece[]): Promise<Assembled>;
  /** Gives a body's memory back once the server has read all of it; the body must not be used after. */
  recycle(body: Buffer): void;
  /** Stops the reader; bodies not yet read reject. */
  close(): Promise<void>;
}

// The compiled module beside this one. The tests run this file from source, after the build:
// a worker thread runs only JavaScript, so it is taken from the build then.
const WORKER_MODULE = new URL(import.meta.url.endsWith('.ts') ? '../../../dist/core/body/reader.worker.js' : './reader.worker.js', import.meta.url);

// Memory given back, kept for the requests in flight and read ahead at the default settings.
const SPARE_AT_MOST = 32;

interface Thread {
  worker: Worker;
  /** Until the thread runs (some 60 ms): requests wait in its outbox meanwhile. */
  starting: boolean;
  pending: Map<number, { resolve: (assembled: Assembled) => void; reject: (error: Error) => void }>;
  /** Requests not yet posted: those of one turn of the event loop go in one message. */
  outbox: ReaderRequest[];
}

/**
 * Small requests are read, hashed and framed by threads of their own, with plain blocking reads
 * that hold up nothing else. On the event loop, each file took three thread-pool round trips
 * (open, read, close) and its hash, which cost more than sending it. Threads start as bodies
 * wait for them, one at a time (a thread takes some 60 ms and 8 MB), and idle ones do not keep
 * the process alive.
 */
export class ReaderThreads implements BodyReader {
  private readonly threads: Thread[] = [];
  /** Memory of bodies the server has read, handed to the next requests to be read into again. */
  private spare: ArrayBuffer[] = [];
  private nextId = 0;
  private closed = false;
  private started = 0;

  /** At most `count` threads (readerThreadCount gives a run's), started as bodies need them. */
  constructor(private readonly count: number) {}

  /** Threads started so far, those since stopped included. */
  get threadsStarted(): number {
    return this.started;
  }

  assemble(pieces: readonly Piece[]): Promise<Assembled> {
    if (this.closed) return Promise.reject(new Error('the file reader was closed'));
    const thread = this.threadFor();
    const id = this.nextId++;
    if (thread.pending.size === 0) thread.worker.ref();
    return new Promise((resolve, reject) => {
      thread.pending.set(id, { resolve, reject });
      if (thread.outbox.push({ id, pieces: pieces as Piece[] }) === 1) setImmediate(() => this.post(thread));
    });
  }

  /**
   * Fresh memory costs its first touch of every page, more than reading the file into it; this
   * memory is already touched. Kept only while requests are waiting to be read, so an idle
   * reader holds none.
   */
  recycle(body: Buffer): void {
    const memory = body.buffer;
    if (!(memory instanceof ArrayBuffer) || memory.byteLength === 0 || this.spare.includes(memory)) return; // handed over already
    if (this.spare.length < SPARE_AT_MOST && this.threads.some((thread) => thread.pending.size > 0)) this.spare.push(memory);
  }

  /**
   * The thread to read the next body: an idle one; else, while below `count`, a new one, but only
   * once every thread is running and busy, so a burst of bodies does not start a thread each;
   * else the least busy.
   */
  private threadFor(): Thread {
    const idle = this.threads.find((thread) => thread.pending.size === 0 && !thread.starting);
    if (idle) return idle;
    if (this.threads.length < this.count && !this.threads.some((thread) => thread.starting)) {
      const thread = this.startThread();
      this.threads.push(thread);
      return thread;
    }
    return this.threads.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
  }

  close(): Promise<void> {
    this.closed = true;
    const threads = this.threads.splice(0);
    this.spare = [];
    // Not waited for: on Node 20 the end of an idle thread sometimes never comes, and a run must
    // not hang on it (exit code 13). The threads are unref'd, so they do not hold the process.
    for (const thread of threads) thread.worker.terminate().catch(() => {});
    return Promise.resolve();
  }

  private post(thread: Thread) {
    const [requests, given] = [thread.outbox, this.spare];
    [thread.outbox, this.spare] = [[], []];
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
  }

  private startThread(): Thread {
    // No flags of the process's own (such as --input-type of an -e script): the thread needs none.
    const worker = new Worker(WORKER_MODULE, { execArgv: [] });
    this.started++;
    const thread: Thread = { worker, starting: true, pending: new Map(), outbox: [] };
    worker.once('online', () => (thread.starting = false));
    worker.on('message', (replies: ReaderReply[]) => {
      thread.starting = false; // a reply says it runs, whichever of the two is heard first
      for (const reply of replies) {
        const waiting = thread.pending.get(reply.id);
        thread.pending.delete(reply.id);
        if ('error' in reply) waiting?.reject(Object.assign(new Error(reply.error.message), reply.error));
        else waiting?.resolve({ body: Buffer.from(reply.body, 0, reply.length), digests: reply.digests });
      }
      if (thread.pending.size === 0) worker.unref();
    });
    // A thread that dies takes its requests with it (a bug, not a file's fault: no path); the next request starts another.
    const fail = (error: Error) => {
      const index = this.threads.indexOf(thread);
      if (index !== -1) this.threads.splice(index, 1);
      for (const { reject } of thread.pending.values()) reject(error);
      thread.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`a file reader thread stopped (exit code ${code})`)));
    // After the listeners: adding a message listener makes the thread hold the process again.
    worker.unref();
    return thread;
  }
}
