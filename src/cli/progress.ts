/** A cli-progress bar on stderr for long CLI work; silent when stderr is not a terminal or with --json. */
import cliProgress from 'cli-progress';

export interface Progress {
  start(total: number, label: string): void;
  update(done: number, label: string): void;
  stop(): void;
}

export function createProgress(enabled: boolean): Progress {
  if (!enabled || !process.stderr.isTTY) {
    return { start: () => {}, update: () => {}, stop: () => {} };
  }
  const bar = new cliProgress.SingleBar(
    { format: '{bar} {value}/{total} {label} | {duration_formatted}', stream: process.stderr, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  return {
    start: (total, label) => bar.start(total, 0, { label }),
    update: (done, label) => bar.update(done, { label }),
    stop: () => bar.stop(),
  };
}
