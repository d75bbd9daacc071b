/**
 * Training progress bars on stderr (cli-progress): one for the epochs, one for the batches of the current
 * epoch, with the running loss, accuracy, throughput and tfjs engine memory. Only drawn when asked for
 * and stderr is a terminal; otherwise every call is a no-op.
 */
import * as tf from '@tensorflow/tfjs';
import { formatMiB } from '../util/format.js';
import cliProgress from 'cli-progress';

export interface BatchProgress {
  batch: number;
  /** Null when the number of batches per epoch is unknown (a user dataset's first epoch). */
  batches: number | null;
  loss: number;
  accuracy: number;
  imagesPerSecond: number;
}

export interface TrainingProgress {
  /** Whether bars are being drawn (messages should then go through `log`). */
  readonly active: boolean;
  startEpoch(epoch: number, batches: number | null): void;
  batch(progress: BatchProgress): void;
  endEpoch(epoch: number, summary: string): void;
  /** Prints a line above the bars. */
  log(line: string): void;
  stop(): void;
}

const INACTIVE: TrainingProgress = {
  active: false,
  startEpoch: () => {},
  batch: () => {},
  endEpoch: () => {},
  log: () => {},
  stop: () => {},
};

const mib = (bytes: number): string => formatMiB(bytes);

export function createTrainingProgress(enabled: boolean, epochs: number, firstEpoch: number): TrainingProgress {
  if (!enabled || !process.stderr.isTTY) return INACTIVE;
  const bars = new cliProgress.MultiBar(
    {
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: false,
      format: '{label} {bar} {value}/{total} | {info}',
      barsize: 24,
    },
    cliProgress.Presets.shades_classic,
  );
  const epochBar = bars.create(epochs, firstEpoch, { label: 'epoch', info: '' });
  let batchBar: cliProgress.SingleBar | null = null;
  return {
    active: true,
    startEpoch(epoch, batches) {
      epochBar.update(epoch - 1, { label: 'epoch', info: `epoch ${epoch}/${epochs}` });
      if (batchBar) bars.remove(batchBar);
      batchBar = bars.create(batches ?? 0, 0, { label: 'batch', info: '' });
    },
    batch(p) {
      if (!batchBar) return;
      if (p.batches === null) batchBar.setTotal(p.batch);
      const info =
        `loss ${p.loss.toFixed(4)} | acc ${(100 * p.accuracy).toFixed(1)}% | ` +
        `${p.imagesPerSecond.toFixed(1)} img/s | engine ${mib(tf.memory().numBytes)}`;
      batchBar.update(p.batch, { label: 'batch', info });
    },
    endEpoch(epoch, summary) {
      epochBar.update(epoch, { label: 'epoch', info: summary });
    },
    log(line) {
      bars.log(`${line}\n`);
    },
    stop() {
      bars.stop();
    },
  };
}
