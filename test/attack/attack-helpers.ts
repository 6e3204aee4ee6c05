import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { expect } from 'vitest';
import { BIN, cleanEnv, tempDir } from '../helpers.js';

/** A key with every character that escaping changes: quote, backslash, slash, plus, percent, ampersand, angle brackets. */
export const HOSTILE_KEY = 'u21LiveKey-7f3c9"q\\z/+%&<x>';

/** The key and the forms a server may echo it in; a leak of any of them, or of its start, is a leak. */
export function keyForms(key: string): string[] {
  const percent = encodeURIComponent(key);
  return [key, JSON.stringify(key).slice(1, -1), percent, percent.toLowerCase(), key.slice(0, 12)];
}

/** Asserts that no text holds the key in any of its forms. */
export function expectNoKey(texts: Record<string, string>, key = HOSTILE_KEY): void {
  for (const [where, text] of Object.entries(texts)) {
    for (const form of keyForms(key)) expect(text.includes(form), `${where} holds ${JSON.stringify(form)}`).toBe(false);
  }
}

/** `count` small PDFs with distinct content, in a fresh folder. */
export async function pdfs(
  count: number,
  name = (i: number) => `doc_${String(i).padStart(3, '0')}.pdf`,
): Promise<string> {
  const dir = await tempDir();
  await Promise.all(
    Array.from({ length: count }, (_, i) => writeFile(join(dir, name(i)), `%PDF-1.4 document ${i}\n%%EOF\n`)),
  );
  return dir;
}

export { timesStored } from '../helpers.js';

/** The summary adds up to the files the test made: every one of them has exactly one outcome. */
export function expectAccountedFor(events: Array<Record<string, unknown>>, files: number): void {
  const summary = events.at(-1)!;
  expect(summary.event).toBe('summary');
  expect(Number(summary.uploaded) + Number(summary.failed) + Number(summary.skipped)).toBe(files);
  const outcomes = events.filter((e) => e.event === 'uploaded' || e.event === 'failed' || e.event === 'skipped');
  expect(outcomes).toHaveLength(files);
  expect(new Set(outcomes.map((e) => e.path)).size).toBe(files);
}

export interface StartedBin {
  pid: number;
  events: Array<Record<string, unknown>>;
  /** Resolves when the process has ended. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  /** Calls `action` with the process once `count` events of `kind` have come. */
  after(kind: string, count: number, action: (child: ReturnType<typeof spawn>) => void): void;
}

/** Spawns the built binary with --json on, reading its events as they come. `prefix` runs it through another command (`unshare …`). */
export function startBin(
  args: string[],
  options: { cwd: string; env: Record<string, string>; fileSizeLimitKb?: number; prefix?: string[] },
): StartedBin {
  const [command, ...before] = options.prefix ?? [];
  // A file size limit (ulimit -f) makes writes past it fail with EFBIG, as a full disk fails with ENOSPC.
  const child =
    options.fileSizeLimitKb !== undefined
      ? spawn(
          'bash',
          [
            '-c',
            `trap '' XFSZ; ulimit -f ${options.fileSizeLimitKb}; exec "$@"`,
            'bash',
            process.execPath,
            BIN,
            ...args,
          ],
          { cwd: options.cwd, env: cleanEnv(options.env) },
        )
      : command !== undefined
        ? spawn(command, [...before, process.execPath, BIN, ...args], { cwd: options.cwd, env: cleanEnv(options.env) })
        : spawn(process.execPath, [BIN, ...args], { cwd: options.cwd, env: cleanEnv(options.env) });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  const events: Array<Record<string, unknown>> = [];
  const waiting: Array<{ kind: string; count: number; action: (c: typeof child) => void }> = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (!line.startsWith('{')) return;
    const event = JSON.parse(line) as Record<string, unknown>;
    events.push(event);
    for (const w of waiting.splice(0)) {
      if (events.filter((e) => e.event === w.kind).length >= w.count) w.action(child);
      else waiting.push(w);
    }
  });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
  return { pid: child.pid!, events, done, after: (kind, count, action) => waiting.push({ kind, count, action }) };
}
