import { CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import { EXIT, exitCodeOf } from '../../src/cli/exit-codes.js';
import { InputError, UsageError } from '../../src/core/shared/errors.js';

describe('exit codes', () => {
  it('maps how any command ended to its code', () => {
    expect(exitCodeOf({ failed: 0, invalid: 0, link_outside: 0, unknown_outcome: 0 })).toBe(EXIT.ok);
    for (const count of ['failed', 'invalid', 'link_outside', 'unknown_outcome'] as const)
      expect(exitCodeOf({ [count]: 1 }), count).toBe(EXIT.someFailed);
    expect(exitCodeOf({ write_error: { path: 'j', code: 'ENOSPC', message: '' } })).toBe(EXIT.someFailed);
    // A refused key or an interruption says so whatever else happened.
    expect(exitCodeOf({ stopped: 'auth', failed: 3 })).toBe(EXIT.keyRefused);
    expect(exitCodeOf({ stopped: 'interrupted', write_error: {} })).toBe(EXIT.interrupted);
    expect(exitCodeOf({ stopped: 'fail-fast', failed: 1 })).toBe(EXIT.someFailed);
    expect(exitCodeOf({ error: new UsageError('x') })).toBe(EXIT.badInput);
    expect(exitCodeOf({ error: new InputError([{ path: 'a', message: 'b' }], 0) })).toBe(EXIT.badInput);
    expect(exitCodeOf({ error: new CommanderError(0, 'commander.helpDisplayed', '') })).toBe(EXIT.ok);
    expect(exitCodeOf({ error: new CommanderError(1, 'commander.unknownOption', '') })).toBe(EXIT.badInput);
    expect(exitCodeOf({ error: new Error('bug') })).toBe(EXIT.someFailed);
  });
});
