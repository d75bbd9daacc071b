/**
 * An error in what the caller asked for (a bad argument, a missing file): the CLI turns it into a usage
 * error (exit 2). Everything else that goes wrong is a failure (exit 1).
 */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * A weights file that cannot be read as what it claims to be (truncated, corrupt, a format or dtype we do
 * not read). A UsageError, because the file is what the caller handed us; `file` names it.
 */
export class WeightsFileError extends UsageError {
  constructor(
    readonly file: string,
    defect: string,
  ) {
    super(`weights file '${file}': ${defect}`);
    this.name = 'WeightsFileError';
  }
}

/**
 * A pickle that names a global outside the short list a state_dict needs (`posix.system`, `builtins.eval`, a
 * class of the saver's own): refused before anything could run. `global` is `module.name`.
 */
export class UnsafePickleError extends WeightsFileError {
  constructor(
    file: string,
    readonly global: string,
    why: string,
  ) {
    super(file, `refused the global '${global}': ${why}`);
    this.name = 'UnsafePickleError';
  }
}
