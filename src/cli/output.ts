import type { Writable } from 'node:stream';
import { NO_REDACTION, type Redact } from '../core/shared/redact.js';
import { safeJson, shown } from '../core/shared/safe-text.js';

/** A stream as the program is given it: stdout or stderr, a terminal or not. */
export type Stream = Writable & { isTTY?: boolean; columns?: number };

/** Raised by a renderer once stdout, which carries the run's results, cannot be written: the run stops as when its report cannot be. */
export class OutputError extends Error {
  readonly path: string;
  readonly code: string;

  /** The message is the file system's, as a journal's or a report's write error says it. */
  constructor(name: string, cause: NodeJS.ErrnoException) {
    super(cause.message);
    this.path = name;
    this.code = cause.code ?? 'EIO';
  }
}

/**
 * The one way text leaves the program, to stdout or to stderr. Every line is made safe where it
 * leaves: the characters that act on a terminal (escape sequences, line breaks, bidirectional
 * overrides, U+2028) are shown as escapes, JSON is written exact but with them escaped, and the
 * run's secrets (the key, a proxy's password) are taken out in every form a server may echo.
 * A stream that fails is written no more: a reader that went away (EPIPE) is no failure, any
 * other error (a full disk, a closed terminal) is kept in `failure` for the command to act on.
 */
export class Output {
  /** The first error writing failed with, a reader going away (EPIPE) aside. */
  failure: NodeJS.ErrnoException | undefined;
  private broken = false;
  private redact: Redact = NO_REDACTION;
  /** JSON lines of one turn of the event loop, written together: thousands of events a second cost a write each otherwise. */
  private pending = '';

  constructor(
    readonly name: 'stdout' | 'stderr',
    private readonly stream: Stream,
  ) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      this.broken = true;
      if (error.code !== 'EPIPE') this.failure ??= error;
    });
  }

  get isTTY(): boolean {
    return this.stream.isTTY === true;
  }

  /** The stream itself, for the spinner alone (ora draws and clears its own line; its text is made safe by the renderer). */
  get spinnerStream(): Stream {
    return this.stream;
  }

  /** Takes these secrets out of every line from now on. */
  hide(redact: Redact): void {
    this.redact = redact;
  }

  /** One line for a person; `paint` colours it once it is safe. */
  line(text: string, paint: (text: string) => string = String): void {
    this.write(`${paint(shown(this.redact(text)))}\n`);
  }

  /** Text of several lines (help, tables), each made safe as `line` makes one. */
  lines(text: string): void {
    const ended = text.endsWith('\n');
    this.write(
      `${(ended ? text.slice(0, -1) : text)
        .split('\n')
        .map((line) => shown(this.redact(line)))
        .join('\n')}${ended ? '\n' : ''}`,
    );
  }

  /** One JSON value on a line, written with the others of this turn. */
  json(value: unknown): void {
    if (!this.pending) setImmediate(() => this.flush());
    this.pending += `${this.redact(safeJson(value))}\n`;
  }

  /** Writes the JSON lines waiting. */
  flush(): void {
    const text = this.pending;
    this.pending = '';
    if (text) this.raw(text);
  }

  /** Throws OutputError once writing has failed (a reader that went away aside). */
  check(): void {
    if (this.failure) throw new OutputError(this.name, this.failure);
  }

  /** A line goes after the JSON lines before it. */
  private write(text: string): void {
    this.flush();
    this.raw(text);
  }

  private raw(text: string): void {
    if (!this.broken) this.stream.write(text);
  }
}
