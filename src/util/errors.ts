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
