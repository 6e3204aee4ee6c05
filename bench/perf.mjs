// Speed against what users would otherwise write: xargs + curl, one curl -Z process, and a
// bare undici loop (the limit), on a local sink, with the tool run as users run it (defaults on
// distinct files: a journal, duplicate detection and the content check on; rows with other
// flags are labelled); 5 MB documents; then real-API conditions (100 ms latency, 200 requests/s
// with real 429s); one 400 MB file; objects read from a local S3 server against the SDK alone;
// and startup. Medians of several runs.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { beforeAfter, BUILDS, documents, fmt, randomFiles, ROOT, runCli, startServer, table } from './lib.mjs';
import { S3_ENV, startS3 } from './s3-store.mjs';

const run = promisify(execFile);
const DATA = join(ROOT, '.bench', 'perf');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
// BENCH_ONLY=raw,docs,api,large,s3,startup runs some sections only.
const only = new Set((process.env.BENCH_ONLY ?? 'raw,docs,api,large,s3,startup').split(','));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const files = (name, count, bytes) => randomFiles(join(DATA, name), count, bytes);

async function sink(faults = {}) {
  const server = await startServer({ sink: true, faults });
  return { ...server, target: `${server.url}/v1/sandbox/entities/bench/link-media` };
}

async function timed(fn) {
  const started = performance.now();
  await fn();
  return (performance.now() - started) / 1000;
}

/**
 * Each tool's times over RUNS rounds, one tool after another in each, a fresh sink for each run
 * (round-robin: a machine that slows down weighs on every tool alike); a run that got fewer
 * than `expected` answers 200 stops the benchmark.
 */
async function roundRobin(tools, expected, label) {
  const seconds = new Map(tools.map(([name]) => [name, []]));
  for (let i = 0; i < RUNS; i++) {
    for (const [name, fn] of tools) {
      const server = await sink();
      seconds.get(name).push(await timed(() => fn(server)));
      const stats = await server.stop();
      if ((stats.statuses[200] ?? 0) < expected)
        throw new Error(`${name}, ${label}: only ${stats.statuses[200]} answers 200`);
    }
  }
  return seconds;
}

const curlConfig = (paths, url) => {
  const file = join(DATA, `curl-${paths.length}.cfg`);
  writeFileSync(
    file,
    paths
      .map(
        (p) =>
          `url = "${url}"\nrequest = "PUT"\nform = "file_1=@${p};type=image/jpeg"\nheader = "u21-key: sandbox-key"\noutput = "/dev/null"\n`,
      )
      .join('next\n'),
  );
  return file;
};

/**
 * A section's u21-media rows, each run as users run it (defaults: its default journal goes to a
 * scratch folder of the run's own; distinct files) with the row's `extra` flags, on this build
 * and on any BENCH_BEFORE build.
 */
const u21Rows = (dir, concurrency) => (name, extra) =>
  BUILDS.map(([suffix, bin]) => [
    `${name}${suffix}`,
    (server) =>
      runCli(
        [
          'upload',
          dir,
          '--entity',
          'bench',
          '--org',
          'sandbox',
          '--base-url',
          server.url,
          '--rate',
          '0',
          '--concurrency',
          String(concurrency),
          ...extra,
        ],
        { env: { U21_API_KEY: 'sandbox-key' }, bin },
      ),
  ]);

// ---- raw efficiency
if (only.has('raw')) {
  const small = files('photos-1000', 1000, 100_000);
  const oneMb = files('one-mb', 1, 1_000_000);
  const MB = (small.paths.length * 100_000) / 1e6;
  const raw = [['tool', 'files/s', 'MB/s']];
  const onBuilds = u21Rows(small.dir, 16);
  const undiciLoop = (server, source, count, concurrency = 16, mode = '') =>
    run(process.execPath, [
      join(ROOT, 'bench', 'undici-loop.mjs'),
      server.target,
      source,
      String(count),
      String(concurrency),
      mode,
    ]);
  const tools = [
    ...onBuilds('u21-media (defaults)', []),
    ...onBuilds('u21-media --no-journal', ['--no-journal']),
    ...onBuilds('u21-media --no-journal --allow-duplicates', ['--no-journal', '--allow-duplicates']),
    ...onBuilds('u21-media --format json', ['--format', 'json']),
    ...onBuilds('u21-media --batch 10', ['--batch', '10']),
    // A process per file is slow and steady: three runs are enough.
    [
      'xargs -P16 curl',
      (s) =>
        run(
          'sh',
          [
            '-c',
            `ls ${small.dir}/*.jpg | xargs -P16 -I{} curl -s -o /dev/null -X PUT -H 'u21-key: sandbox-key' -F 'file_1=@{};type=image/jpeg' ${s.target}`,
          ],
          { maxBuffer: 1 << 26 },
        ),
      3,
    ],
    [
      'curl -Z --parallel-max 16',
      (s) =>
        run('curl', ['-s', '-Z', '--parallel-max', '16', '-K', curlConfig(small.paths, s.target)], {
          maxBuffer: 1 << 26,
        }),
    ],
    ['bare undici loop (limit)', (s) => undiciLoop(s, small.paths[0], small.paths.length)],
    // The same bytes in 1 MB bodies, as --batch 10 sends them: the limit for that row.
    ['bare undici loop, 1 MB bodies (--batch 10 limit)', (s) => undiciLoop(s, oneMb.paths[0], small.paths.length / 10)],
    ['undici loop reading each file', (s) => undiciLoop(s, small.dir, small.paths.length)],
  ];
  // Round-robin, so that a machine that slows down or speeds up during the benchmark weighs on
  // every tool alike; each run gets a fresh sink, warmed up first so its JIT state is the same.
  const seconds = new Map(tools.map(([name]) => [name, []]));
  for (let i = 0; i < RUNS; i++) {
    for (const [name, fn, runs = RUNS] of tools) {
      if (i >= runs) continue;
      const server = await sink();
      await undiciLoop(server, small.paths[0], 500);
      seconds.get(name).push(await timed(() => fn(server)));
      const stats = await server.stop();
      const expected = 500 + small.paths.length / (name.includes('batch') ? 10 : 1);
      if ((stats.statuses[200] ?? 0) < expected) throw new Error(`${name}: only ${stats.statuses[200]} answers 200`);
    }
  }
  const rates = {};
  for (const [name] of tools) {
    const s = median(seconds.get(name));
    rates[name] = small.paths.length / s;
    raw.push([name, fmt(rates[name], 0), fmt(MB / s, 1)]);
  }
  console.log(
    `\nraw efficiency: ${small.paths.length} distinct files × 100 KB, concurrency 16, local sink warmed with 500 requests, median of ${RUNS} (xargs: 3), round-robin; every u21-media row passes --rate 0, as the loops have no ceiling (its default, 100 requests/s, would cap it)`,
  );
  table(raw);
  const ratio = (a, b, digits = 2) => fmt(rates[a] / rates[b], digits);
  console.log(
    `ratios: defaults/limit ${ratio('u21-media (defaults)', 'bare undici loop (limit)')}×, defaults/xargs-curl ${ratio('u21-media (defaults)', 'xargs -P16 curl', 1)}×, --no-journal/limit ${ratio('u21-media --no-journal', 'bare undici loop (limit)')}×, defaults/--no-journal ${ratio('u21-media (defaults)', 'u21-media --no-journal')}×, --batch 10/its limit ${ratio('u21-media --batch 10', 'bare undici loop, 1 MB bodies (--batch 10 limit)')}×, defaults/loop reading files ${ratio('u21-media (defaults)', 'undici loop reading each file')}×`,
  );
  if (BUILDS.length > 1) console.log(`after/before (files/s): ${beforeAfter(rates)}`);
}

// ---- documents: Unit21's per-file limit
if (only.has('docs')) {
  const docs = documents(join(DATA, 'documents-100'), 100, 5_000_000);
  const MB = (docs.paths.length * 5_000_000) / 1e6;
  const onBuilds = u21Rows(docs.dir, 8);
  const tools = [
    ...onBuilds('u21-media (defaults)', []),
    ...onBuilds('u21-media --no-journal', ['--no-journal']),
    [
      'xargs -P8 curl -F',
      (s) =>
        run(
          'sh',
          [
            '-c',
            `ls ${docs.dir}/*.pdf | xargs -P8 -I{} curl -s -o /dev/null -X PUT -H 'u21-key: sandbox-key' -F 'file_1=@{};type=application/pdf' ${s.target}`,
          ],
          { maxBuffer: 1 << 26 },
        ),
    ],
    [
      'undici loop streaming each file (limit)',
      (s) =>
        run(process.execPath, [
          join(ROOT, 'bench', 'undici-loop.mjs'),
          s.target,
          docs.dir,
          String(docs.paths.length),
          '8',
          'stream',
        ]),
    ],
  ];
  const seconds = await roundRobin(tools, docs.paths.length, 'documents');
  const table5 = [['tool', 'files/s', 'MB/s']];
  const rates = {};
  for (const [name] of tools) {
    const s = median(seconds.get(name));
    rates[name] = MB / s;
    table5.push([name, fmt(docs.paths.length / s, 1), fmt(rates[name], 0)]);
  }
  console.log(
    `\ndocuments: ${docs.paths.length} distinct PDFs × 5 MB (Unit21's per-file limit), concurrency 8, local sink, median of ${RUNS}, round-robin; u21-media rows pass --rate 0 and --concurrency 8, as the loops run 8 at a time`,
  );
  table(table5);
  const ratio = (a, b) => fmt(rates[a] / rates[b], 2);
  console.log(
    `ratios: defaults/limit ${ratio('u21-media (defaults)', 'undici loop streaming each file (limit)')}×, defaults/xargs-curl ${ratio('u21-media (defaults)', 'xargs -P8 curl -F')}×, --no-journal/limit ${ratio('u21-media --no-journal', 'undici loop streaming each file (limit)')}×, --no-journal/xargs-curl ${ratio('u21-media --no-journal', 'xargs -P8 curl -F')}×, defaults/--no-journal ${ratio('u21-media (defaults)', 'u21-media --no-journal')}×`,
  );
  if (BUILDS.length > 1) console.log(`after/before (MB/s): ${beforeAfter(rates)}`);
}

// ---- real-API conditions
if (only.has('api')) {
  const api = files('api', 5000, 10_000);
  const real = [['tool', 'files/s', 'lost or failed', '429s']];
  const apiRates = {};
  async function realApi(name, fn, perRequest = 1) {
    const server = await sink({ latencyMs: 100, rateLimit: 200 });
    const seconds = await timed(() => fn(server).catch(() => {}));
    const stats = await server.stop();
    const ok = (stats.statuses[200] ?? 0) * perRequest;
    apiRates[name] = ok / seconds;
    real.push([name, fmt(apiRates[name], 0), Math.max(0, api.paths.length - ok), stats.statuses[429] ?? 0]);
  }
  const u21api = (server, extra, bin) =>
    runCli(['upload', api.dir, '--entity', 'bench', '--org', 'sandbox', '--base-url', server.url, ...extra], {
      env: { U21_API_KEY: 'sandbox-key' },
      bin,
    });
  for (const [suffix, bin] of BUILDS) {
    await realApi(`u21-media (defaults)${suffix}`, (s) => u21api(s, [], bin));
    await realApi(`u21-media --rate 200 --concurrency 32${suffix}`, (s) =>
      u21api(s, ['--rate', '200', '--concurrency', '32'], bin),
    );
    await realApi(
      `u21-media --rate 200 --concurrency 32 --batch 10${suffix}`,
      (s) => u21api(s, ['--rate', '200', '--concurrency', '32', '--batch', '10'], bin),
      10,
    );
  }
  await realApi('curl -Z --parallel-max 64 --retry 5', (s) =>
    run('curl', ['-s', '-Z', '--parallel-max', '64', '--retry', '5', '-K', curlConfig(api.paths, s.target)], {
      maxBuffer: 1 << 26,
    }),
  );
  console.log(
    `\nreal-API conditions: ${api.paths.length} files × 10 KB, 100 ms latency, 200 requests/s with real 429s`,
  );
  table(real);
  console.log(
    `ratio: u21 --batch 10 / curl -Z ${fmt(apiRates['u21-media --rate 200 --concurrency 32 --batch 10'] / apiRates['curl -Z --parallel-max 64 --retry 5'], 1)}×`,
  );
  if (BUILDS.length > 1) console.log(`after/before (files/s): ${beforeAfter(apiRates)}`);
}

// ---- large file
if (only.has('large')) {
  const bigDir = join(DATA, 'large');
  if (!existsSync(join(bigDir, 'big.mp4'))) {
    mkdirSync(bigDir, { recursive: true });
    const chunk = randomBytes(4_000_000);
    writeFileSync(join(bigDir, 'big.mp4'), Buffer.concat(Array.from({ length: 100 }, () => chunk)));
  }
  const large = [['format', 'MB/s', 'peak RSS (MB)']];
  const LARGE_RUNS = 3;
  const largeRuns = {};
  for (let i = 0; i < LARGE_RUNS; i++) {
    for (const format of ['multipart', 'json']) {
      for (const [suffix, bin] of BUILDS) {
        const server = await sink();
        (largeRuns[`${format}${suffix}`] ??= []).push(
          await runCli(
            [
              'upload',
              join(bigDir, 'big.mp4'),
              '--entity',
              'bench',
              '--org',
              'sandbox',
              '--base-url',
              server.url,
              '--max-file-size',
              '500000000',
              '--format',
              format,
              '--timeout',
              '600',
            ],
            { env: { U21_API_KEY: 'sandbox-key' }, bin },
          ),
        );
        await server.stop();
      }
    }
  }
  const largeRates = {};
  for (const [format, results] of Object.entries(largeRuns)) {
    largeRates[format] = 400 / (median(results.map((r) => r.wallMs)) / 1000);
    large.push([format, fmt(largeRates[format], 0), fmt(Math.max(...results.map((r) => r.peakRssMb)), 0)]);
  }
  console.log(`\nlarge file: one 400 MB file, median of ${LARGE_RUNS} (peak RSS: the highest)`);
  table(large);
  if (BUILDS.length > 1) console.log(`after/before (MB/s): ${beforeAfter(largeRates)}`);
}

// ---- objects from S3: a local s3rver to the sink, against GET piped to PUT with the SDK alone
if (only.has('s3')) {
  const sets = [
    {
      prefix: 'photos',
      what: '1,000 objects × 100 KB',
      files: files('photos-1000', 1000, 100_000),
      bytes: 100_000,
      concurrency: 16,
    },
    {
      prefix: 'documents',
      what: '100 PDF objects × 5 MB',
      files: documents(join(DATA, 'documents-100'), 100, 5_000_000),
      bytes: 5_000_000,
      concurrency: 8,
    },
  ];
  const s3 = await startS3(
    join(ROOT, '.bench', 's3'),
    'bench',
    Object.fromEntries(sets.map((set) => [set.prefix, set.files.paths])),
  );
  const results = [['objects', 'tool', 'objects/s', 'MB/s']];
  const ratios = [];
  for (const {
    prefix,
    what,
    files: { paths },
    bytes,
    concurrency,
  } of sets) {
    const u21s3 = (server, extra, bin) =>
      runCli(
        [
          'upload',
          `s3://bench/${prefix}/`,
          '--s3-endpoint',
          s3.endpoint,
          '--entity',
          'bench',
          '--org',
          'sandbox',
          '--base-url',
          server.url,
          '--rate',
          '0',
          '--concurrency',
          String(concurrency),
          ...extra,
        ],
        { env: { U21_API_KEY: 'sandbox-key', ...S3_ENV }, bin },
      );
    const tools = [
      ...BUILDS.map(([suffix, bin]) => [`u21-media (defaults)${suffix}`, (server) => u21s3(server, [], bin)]),
      // Without the content check's ranged reads (one or two GETs per object before its send): what they cost.
      ['u21-media --no-sniff', (server) => u21s3(server, ['--no-sniff'])],
      [
        'SDK GET piped to PUT (aws s3 cp-like)',
        (server) =>
          run(
            process.execPath,
            [
              join(ROOT, 'bench', 's3-sdk-loop.mjs'),
              server.target,
              s3.endpoint,
              'bench',
              `${prefix}/`,
              String(concurrency),
            ],
            { env: { PATH: process.env.PATH, ...S3_ENV } },
          ),
      ],
    ];
    const seconds = await roundRobin(tools, paths.length, prefix);
    const rates = {};
    for (const [name] of tools) {
      const s = median(seconds.get(name));
      rates[name] = paths.length / s;
      results.push([what, name, fmt(rates[name], 0), fmt((paths.length * bytes) / 1e6 / s, 0)]);
    }
    const sdk = rates['SDK GET piped to PUT (aws s3 cp-like)'];
    ratios.push(
      `${what}: defaults/SDK ${fmt(rates['u21-media (defaults)'] / sdk, 2)}×, --no-sniff/SDK ${fmt(rates['u21-media --no-sniff'] / sdk, 2)}×`,
    );
    if (BUILDS.length > 1) ratios.push(`after/before: ${beforeAfter(rates)}`);
  }
  await s3.close();
  console.log(
    `\nobjects from S3: distinct objects from s3rver on 127.0.0.1 to the local sink, concurrency 16 (100 KB) and 8 (5 MB), median of ${RUNS}, round-robin; u21-media reads s3://bench/<prefix>/ with --s3-endpoint and --rate 0, the SDK loop lists the prefix and pipes each GET's body into a PUT`,
  );
  table(results);
  console.log(`ratios against the SDK's GET piped to PUT: ${ratios.join('; ')}`);
}

// ---- startup
if (only.has('startup')) {
  const startup = [['command', 'median (ms)']];
  const wall = async (args) => {
    const times = [];
    for (let i = 0; i < 11; i++) times.push(await timed(() => run(process.execPath, args)));
    return median(times) * 1000;
  };
  const base = await wall(['-e', '0']);
  startup.push(['node -e 0', fmt(base, 0)]);
  const startupMs = {};
  for (const [suffix, bin] of BUILDS) {
    for (const args of [['--version'], ['--help']]) {
      const name = `u21-media ${args[0]}${suffix}`;
      startupMs[name] = await wall([bin, ...args]);
      startup.push([name, fmt(startupMs[name], 0)]);
    }
  }
  console.log('\nstartup');
  table(startup);
  console.log(`ratio: --version / node -e 0 ${fmt(startupMs['u21-media --version'] / base, 2)}×`);
  if (BUILDS.length > 1) console.log(`before/after (time): ${beforeAfter(startupMs, false)}`);
}
