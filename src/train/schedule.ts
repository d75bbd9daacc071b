/**
 * Learning-rate schedules as pure functions of the position in training, so a resumed run sets exactly the
 * rate the uninterrupted run would have set at the same step.
 */

/**
 * - 'step': the DenseNet paper's (and torchvision's CIFAR/ImageNet recipes'): the base rate, divided by 10
 *   at 50% and again at 75% of the epochs (PyTorch `MultiStepLR(milestones=[⌊E/2⌋, ⌊3E/4⌋], gamma=0.1)`).
 * - 'cosine': half a cosine from the base rate down to 0 over the whole run, updated every step
 *   (PyTorch `CosineAnnealingLR(T_max=total steps, eta_min=0)` stepped per batch).
 * - 'constant': the base rate throughout.
 */
export type ScheduleName = 'step' | 'cosine' | 'constant';

export const SCHEDULE_NAMES: readonly ScheduleName[] = ['step', 'cosine', 'constant'];

export interface SchedulePosition {
  /** 0-based epoch. */
  epoch: number;
  /** 0-based batch within the epoch. */
  batch: number;
  /** Batches per epoch; null when the data does not say (a user dataset), which makes 'cosine' per-epoch. */
  batchesPerEpoch: number | null;
}

/** The learning rate for one training step. */
export function learningRateAt(schedule: ScheduleName, baseLr: number, epochs: number, position: SchedulePosition): number {
  switch (schedule) {
    case 'constant':
      return baseLr;
    case 'step': {
      const milestones = [Math.floor(epochs * 0.5), Math.floor(epochs * 0.75)].filter((m) => m > 0);
      const passed = milestones.filter((m) => position.epoch >= m).length;
      return baseLr * 0.1 ** passed;
    }
    case 'cosine': {
      const { batchesPerEpoch } = position;
      const progress =
        batchesPerEpoch !== null && batchesPerEpoch > 0
          ? (position.epoch * batchesPerEpoch + Math.min(position.batch, batchesPerEpoch - 1)) / (epochs * batchesPerEpoch)
          : position.epoch / epochs;
      return baseLr * 0.5 * (1 + Math.cos(Math.PI * progress));
    }
  }
}
