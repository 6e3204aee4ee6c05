import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiskTable } from '../../src/core/disk/disk-table.js';
import { Scratch } from '../../src/core/disk/scratch.js';
import { scratch, tempDir } from '../helpers.js';

describe('DiskTable', () => {
  it('gives back every value set, through several doublings, and nothing for other keys', async () => {
    const table = (await scratch()).table();
    const keys = Array.from({ length: 50_000 }, (_, i) => `/data/cust-${i % 500}/scan_${i}.jpg`);
    keys.forEach((key, i) => table.set(key, i + 1));
    keys.forEach((key, i) => expect(table.get(key)).toBe(i + 1));
    expect(table.get('/data/cust-1/scan_50000.jpg')).toBeUndefined();
    expect(table.get('/data/cust-1/scan_1.jpg ')).toBeUndefined();
    // On disk, not in memory: 50,000 slots of 24 bytes at most 70% full.
    expect(statSync(table.path).size).toBeGreaterThanOrEqual((50_000 * 24) / 0.7);
  });

  it('keeps what it was given once closed, for the next run to open', async () => {
    const table = (await scratch()).table();
    const keys = Array.from({ length: 50_000 }, (_, i) => `key ${i}`);
    keys.forEach((key, i) => table.set(key, i));
    table.close();
    const again = DiskTable.open(table.path)!;
    keys.forEach((key, i) => expect(again.get(key)).toBe(i));
    expect(again.add('key 7', 1)).toBe(false);
    again.close();
  });

  it('replaces a value, keeps NaN and negatives, and adds only what is absent', async () => {
    const table = (await scratch()).table();
    table.set('a', 1);
    table.set('a', -2);
    table.set('b', Number.NaN);
    expect(table.get('a')).toBe(-2);
    expect(table.get('b')).toBeNaN();
    expect(table.add('a', 5)).toBe(false);
    expect(table.add('c', 5)).toBe(true);
    expect(table.get('a')).toBe(-2);
    expect(table.get('c')).toBe(5);
  });

  it('knows nothing when empty', async () => {
    expect((await scratch()).table().get('/a.jpg')).toBeUndefined();
  });
});

describe('StringLog', () => {
  it('gives back each string by the number it was given, whatever its characters', async () => {
    const strings = (await scratch()).strings();
    const texts = ['a.jpg', '', 'ünïcödé/пути/写真.jpg', 'x'.repeat(5000)];
    const places = texts.map((text) => strings.add(text));
    texts.forEach((text, i) => expect(strings.get(places[i]!)).toBe(text));
  });

  it('gives them back whether still in memory or written to its file, one longer than its buffer too', async () => {
    const strings = (await scratch()).strings();
    const texts = Array.from({ length: 20_000 }, (_, i) =>
      i === 7_000 ? 'L'.repeat(200_000) : `/photos/cust_${i}/selfie_${i}.jpg`,
    );
    const places: number[] = [];
    for (const [i, text] of texts.entries()) {
      places.push(strings.add(text));
      // Read back now and then while later ones are added: from memory, then from the file.
      if (i % 997 === 0) expect(strings.get(places[i >> 1]!)).toBe(texts[i >> 1]);
    }
    texts.forEach((text, i) => expect(strings.get(places[i]!)).toBe(text));
  });
});

describe('Scratch', () => {
  it('removes its files and its lock when removed', async () => {
    const made = await scratch();
    const table = made.table();
    table.set('a', 1);
    await made.remove();
    expect(() => statSync(table.path)).toThrow(/ENOENT/);
    expect(existsSync(`${made.dir}.lock`)).toBe(false);
  });

  it("removes a killed run's folder, and leaves a live run's alone", async () => {
    const live = await scratch();
    const liveFile = live.table().path;
    // A folder with no lock: its run is gone (its lock went with it).
    const abandoned = join(tmpdir(), `u21-media-${process.getuid!()}`, 'run-0123456789ab');
    mkdirSync(abandoned);
    await scratch();
    expect(existsSync(abandoned)).toBe(false);
    expect(existsSync(liveFile)).toBe(true);
  });

  it("refuses a user's folder under $TMPDIR that others can write to, naming it", async () => {
    const dir = await tempDir();
    mkdirSync(join(dir, `u21-media-${process.getuid!()}`), { mode: 0o777 });
    chmodSync(join(dir, `u21-media-${process.getuid!()}`), 0o777);
    const before = process.env.TMPDIR;
    process.env.TMPDIR = dir;
    try {
      await expect(Scratch.create()).rejects.toThrow(
        `${join(dir, `u21-media-${process.getuid!()}`)} is not a private folder of this user's`,
      );
    } finally {
      process.env.TMPDIR = before;
    }
  });
});
