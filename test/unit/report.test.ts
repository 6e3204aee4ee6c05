import { describe, expect, it } from 'vitest';
import { lastOutcomes } from '../../src/core/outcomes/report.js';
import { isUndecided, type ReportRow } from '../../src/core/inputs/report-format.js';

/** A report row of a file sent to cust-1; `time` null as in a report from before rows had one. */
const row = (path: string, outcome: ReportRow['outcome'], more: Partial<ReportRow> = {}): ReportRow => ({
  time: null,
  org: 'acme',
  host: 'h',
  entity_id: 'cust-1',
  path,
  abs_path: `/data/${path}`,
  name: path,
  media_type: null,
  media_type_source: 'none',
  custom_data: null,
  bytes: 1,
  sha256: null,
  outcome,
  reason: outcome === 'skipped' ? 'journal: already uploaded' : null,
  status: null,
  error_code: null,
  attempts: 1,
  possibly_duplicated: false,
  object: null,
  ...more,
});

const outcomes = (reports: ReportRow[][]) => lastOutcomes(reports).rows.map((r) => [r.path, r.entity_id, r.outcome]);

describe('lastOutcomes', () => {
  it("keeps the later report's row of a file when the rows have no time, in the place of its first row", () => {
    const merged = lastOutcomes([[row('a.jpg', 'failed'), row('b.jpg', 'uploaded')], [row('a.jpg', 'uploaded')]]);
    expect(merged.rows.map((r) => [r.path, r.outcome])).toEqual([
      ['a.jpg', 'uploaded'],
      ['b.jpg', 'uploaded'],
    ]);
    expect(merged.replaced).toBe(1);
  });

  it('goes by time when both rows have one, whatever the order of the reports', () => {
    const early = row('a.jpg', 'failed', { time: '2026-01-01T00:00:00.000Z' });
    const late = row('a.jpg', 'uploaded', { time: '2026-01-02T00:00:00.000Z' });
    expect(outcomes([[late], [early]])).toEqual([['a.jpg', 'cust-1', 'uploaded']]);
    expect(outcomes([[early], [late]])).toEqual([['a.jpg', 'cust-1', 'uploaded']]);
  });

  it('tells files apart by abs_path (else path) and by where they went', () => {
    const reports = [
      [
        row('a.jpg', 'failed'),
        row('a.jpg', 'failed', { entity_id: 'cust-2' }),
        row('a.jpg', 'failed', { object: 'alerts' }),
      ],
      [row('a.jpg', 'uploaded', { path: 'other/a.jpg' })],
    ];
    expect(outcomes(reports)).toEqual([
      ['other/a.jpg', 'cust-1', 'uploaded'],
      ['a.jpg', 'cust-2', 'failed'],
      ['a.jpg', 'cust-1', 'failed'],
    ]);
    expect(
      outcomes([[row('a.jpg', 'failed', { abs_path: null })], [row('a.jpg', 'uploaded', { abs_path: null })]]),
    ).toEqual([['a.jpg', 'cust-1', 'uploaded']]);
  });

  it('never lets a skip replace an upload, and lets one replace a failure', () => {
    expect(outcomes([[row('a.jpg', 'uploaded')], [row('a.jpg', 'skipped')]])).toEqual([
      ['a.jpg', 'cust-1', 'uploaded'],
    ]);
    expect(
      outcomes([[row('a.jpg', 'failed')], [row('a.jpg', 'skipped', { reason: 'not_sent: the run was interrupted' })]]),
    ).toEqual([['a.jpg', 'cust-1', 'skipped']]);
  });

  it('leaves a file skipped for someone to decide undecided: an unknown outcome, an invalid input, a link not followed', () => {
    const last = lastOutcomes([
      [row('a.jpg', 'failed')],
      [row('a.jpg', 'skipped', { reason: 'unknown_outcome: an earlier run sent it and got no answer' })],
    ]).rows;
    expect(last.map(isUndecided)).toEqual([true]);
    expect(
      [
        'journal: already uploaded',
        'duplicate: same content',
        'not_sent: stopped',
        'invalid: empty',
        'link_outside: x',
      ].map((reason) => isUndecided(row('a.jpg', 'skipped', { reason }))),
    ).toEqual([false, false, false, true, true]);
  });
});
