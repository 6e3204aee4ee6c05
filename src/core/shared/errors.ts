/** Base of every error the tool explains to its user: a one-line message plus a hint. */
export class U21MediaError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** A bad flag, option value or combination of options. Exit 2. */
export class UsageError extends U21MediaError {}

/** Several setup problems found together (no key, no org, no host, no entity): all are said in one run. Exit 2. */
export class SetupError extends U21MediaError {
  constructor(readonly errors: readonly U21MediaError[]) {
    super(`${errors.length} setup problems: ${errors.map((e) => e.message).join('; ')}`);
  }
}

/** A bad config file. Exit 2. */
export class ConfigError extends U21MediaError {}

/** One or more invalid inputs found by preflight. Exit 2, nothing sent. */
export class InputError extends U21MediaError {
  /** `validFiles`: how many inputs were fine, so the hint offers --skip-invalid only when it would send something. */
  constructor(
    readonly problems: readonly Problem[],
    readonly validFiles: number,
  ) {
    super(
      problems.length === 1 ? `${problems[0]!.path}: ${problems[0]!.message}` : `${problems.length} inputs are invalid`,
      validFiles > 0
        ? 'fix them, or pass --skip-invalid to upload the valid files only'
        : 'fix them; no file is valid as it stands, so --skip-invalid would send nothing',
    );
  }
}

/** An input that preflight refused: the file (or option) at fault and what to do. */
export interface Problem {
  path: string;
  message: string;
}
