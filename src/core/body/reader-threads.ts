import { Worker } from 'node:worker_threads';
import type { FileIdentity } from '../files/file-identity.js';
import type { CheckedFile } from './file-stream.js';
import type { ReaderReply, ReaderRequest } from './reader.worker.js';
import type { WholeFile } from '../files/framing.js';
import { readObject } from '../s3/store.js';

export type { WholeFile } from '../files/framing.js';

/** Reads files off the event loop: whole and hashed, for the bodies of small requests; or hashed only. */
export interface BodyReader {
  /** A file whole as it goes out (base64 for JSON), with the sha256 of its bytes; one that can no longer be read at its planned size rejects with its error (`path`). */
  read(file: CheckedFile, base64: boolean): Promise<WholeFile>;
  /** sha256 of a file, read a mebibyte at a time, to compare contents: one that is not the file checked rejects with its error (`path`). */
  digest(path: string, identity?: FileIdentity): Promise<string>;
  /** Gives a file's memory back once its bytes are in a body; they must not be used after. */
  recycle(bytes: Buffer): void;
  /** Stops the reader; files not yet read reject. */
  close(): Promise<void>;
}

// The compiled module beside this one. The tests run this file from source, after the build:
// a worker thread runs only JavaScript, so it is taken from the build then.
const WORKER_MODULE = new URL(
  import.meta.url.endsWith('.ts') ? '../../../dist/core/body/reader.worker.js' : './reader.worker.js',
  import.meta.url,
);

// Memory given back, kept for the files read ahead at the default settings: at most this many
// pieces (each is looked through for every read) and this many bytes.
const SPARE_AT_MOST = 32;
const SPARE_BYTES_AT_MOST = 16 * 1024 * 1024;

interface Thread {
  worker: Worker;
  /** Until the thread runs (some 60 ms): requests wait in its outbox meanwhile. */
  starting: boolean;
  pending: Map<number, { resolve: (reply: Answer) => void; reject: (error: Error) => void }>;
  /** Requests not yet posted: those of one turn of the event loop go in one message. */
  outbox: ReaderRequest[];
}

/**
 * Files are read and hashed by threads of their own, with plain blocking reads that hold up
 * nothing else. On the event loop, each file took three thread-pool round trips (open, read,
 * close) and its hash, which cost more than sending it. Threads start as files wait for them,
 * one at a time (a thread takes some 60 ms and 8 MB), and idle ones do not keep the process alive.
 */
export class ReaderThreads implements BodyReader {
  private readonly threads: Thread[] = [];
  /** Memory of files already copied into bodies, handed to the next reads to be read into again. */
  private spare: ArrayBuffer[] = [];
  private nextId = 0;
  private closed = false;
  private started = 0;

  /** At most `count` threads (readerThreadCount gives a run's), started as files need them. */
  constructor(private readonly count: number) {}

  /** Threads started so far, those since stopped included. */
  get threadsStarted(): number {
    return this.started;
  }

  read(file: CheckedFile, base64: boolean): Promise<WholeFile> {
    // An object streams from its bucket on the event loop: there is no file for a thread to read.
    if (file.stored) return readObject({ ...file, stored: file.stored }, base64);
    return this.ask({ file, base64 }).then((reply) => {
      if (!('memory' in reply)) throw new Error('a file reader thread answered a read without the bytes');
      return { bytes: Buffer.from(reply.memory, reply.offset, reply.length), sha256: reply.sha256 };
    });
  }

  digest(path: string, identity?: FileIdentity): Promise<string> {
    return this.ask({ digestOf: { path, ...(identity && { identity }) } }).then((reply) => reply.sha256);
  }

  private ask(request: DistributiveOmit<ReaderRequest, 'id'>): Promise<Answer> {
    if (this.closed) return Promise.reject(new Error('the file reader was closed'));
    const thread = this.threadFor();
    const id = this.nextId++;
    if (thread.pending.size === 0) thread.worker.ref();
    return new Promise((resolve, reject) => {
      thread.pending.set(id, { resolve, reject });
      // Those asked for in one turn of the event loop go in one message.
      if (thread.outbox.push({ id, ...request } as ReaderRequest) === 1) setImmediate(() => this.post(thread));
    });
  }

  /**
   * Fresh memory costs its first touch of every page, more than reading the file into it; this
   * memory is already touched. At most SPARE_AT_MOST pieces and SPARE_BYTES_AT_MOST are kept,
   * until the reader closes.
   */
  recycle(bytes: Buffer): void {
    const memory = bytes.buffer;
    if (this.closed || !(memory instanceof ArrayBuffer) || memory.byteLength === 0 || this.spare.includes(memory))
      return; // handed over already
    const kept = this.spare.reduce((sum, spare) => sum + spare.byteLength, 0);
    if (this.spare.length < SPARE_AT_MOST && kept + memory.byteLength <= SPARE_BYTES_AT_MOST) this.spare.push(memory);
  }

  /**
   * The thread to read the next file: an idle one; else, while below `count`, a new one, but only
   * once every thread is running and busy, so a burst of files does not start a thread each;
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
    const requests = thread.outbox;
    thread.outbox = [];
    // A piece of memory for each file read, at most: each one handed over costs the message.
    const given = this.spare.splice(0, requests.filter((request) => 'file' in request).length);
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
        else waiting?.resolve(reply);
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

/** A reply that is not an error. */
type Answer = Exclude<ReaderReply, { error: unknown }>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
