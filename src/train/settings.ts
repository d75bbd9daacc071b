/**
 * A run's settings: what was given, combined with the defaults or with a resumed snapshot's settings, and the
 * checks of the output folder and the pretrained weights that come with them.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { UsageError } from '../util/errors.js';
import { sniffStateDictFormat } from '../weights/state-dict.js';
import type { Logger } from '../util/logger.js';
import { OPTIMIZER_DEFAULTS, TRAIN_DEFAULTS, type Checked, type RunSettings } from './options.js';
import { SNAPSHOT_POINTER, SNAPSHOTS_DIR } from './snapshots.js';
import type { BestEpoch, EpochMetrics } from './types.js';

/** The trainer's record in each snapshot: what a resumed run needs besides tensors. */
export interface RunState {
  settings: RunSettings;
  classNames: string[];
  history: EpochMetrics[];
  best: BestEpoch | null;
  /** Where the data stream stands: the next epoch's shuffle/augmentation seed derives from (seed, epoch). */
  data: { nextEpoch: number; nextEpochSeed: number };
}

/** Files a run writes at the top of outDir; a fresh run refuses to start over any of them. */
const OUTPUT_FILES = [
  SNAPSHOT_POINTER, SNAPSHOTS_DIR, 'model.json', 'weights.bin', 'classes.json', 'history.json', 'metrics.csv', 'loss.svg', 'accuracy.svg', 'confusion.svg',
];

export async function statOf(p: string) {
  return fs.stat(p).catch(() => undefined);
}

/** Refuses an outDir that is a file or already holds a run (unless resuming or overwriting). */
export async function checkOutDir(checked: Checked): Promise<void> {
  const outDir = checked.outDir;
  if (outDir === undefined) return;
  const stat = await statOf(outDir);
  if (stat === undefined) return;
  if (!stat.isDirectory()) throw new UsageError(`outDir ${outDir} exists and is not a folder`);
  if (checked.resume || checked.overwrite) return;
  const entries = await fs.readdir(outDir);
  const clashes = OUTPUT_FILES.filter((f) => entries.includes(f));
  if (clashes.length > 0) {
    throw new UsageError(
      `outDir ${outDir} already holds training output (${clashes.join(', ')}); resume to continue that run, overwrite to replace it, or choose another outDir`,
    );
  }
}

/**
 * What `pretrained` is: a folder with a saved tfjs model, or a torchvision state_dict file — safetensors or
 * a PyTorch checkpoint (.pth/.pt, zip or legacy format), told by its first bytes rather than its name.
 */
export async function checkPretrained(file: string): Promise<'weights' | 'tfjs'> {
  const stat = await statOf(file);
  if (stat === undefined) throw new UsageError(`pretrained ${file} does not exist`);
  if (stat.isDirectory()) {
    if (!(await statOf(path.join(file, 'model.json')))?.isFile()) {
      throw new UsageError(`pretrained folder ${file} holds no model.json (a saved tfjs model, e.g. a previous outDir)`);
    }
    return 'tfjs';
  }
  const handle = await fs.open(file, 'r');
  const head = new Uint8Array(16);
  try {
    await handle.read(head, 0, head.length, 0);
  } finally {
    await handle.close();
  }
  if (sniffStateDictFormat(head, stat.size) === null) {
    throw new UsageError(`pretrained ${file} must be a torchvision state_dict (safetensors, or a PyTorch .pth/.pt checkpoint) or a folder with a saved tfjs model`);
  }
  return 'weights';
}

/** Combines what was given with the snapshot's settings (resume) and the defaults; rejects contradictions. */
export function resolveSettings(checked: Checked, stored: RunSettings | undefined, logger: Logger): RunSettings {
  const given = checked.given;
  if (stored) {
    const conflicts = (Object.keys(given) as (keyof RunSettings)[]).filter(
      (key) => key !== 'epochs' && JSON.stringify(given[key]) !== JSON.stringify(stored[key]),
    );
    if (conflicts.length > 0) {
      const list = conflicts.map((k) => `${k}: snapshot ${JSON.stringify(stored[k])}, now ${JSON.stringify(given[k])}`).join('; ');
      throw new UsageError(`cannot resume: the snapshot in ${checked.outDir} was trained with other settings (${list}); drop them or start a new outDir`);
    }
    if (given.epochs !== undefined && given.epochs !== stored.epochs) {
      logger.warn(`resuming with epochs ${given.epochs} instead of ${stored.epochs}: the learning-rate schedule differs from the original run's`);
    }
    return { ...stored, ...(given.epochs !== undefined ? { epochs: given.epochs } : {}) };
  }
  const optimizer = given.optimizer ?? TRAIN_DEFAULTS.optimizer;
  const defaults = OPTIMIZER_DEFAULTS[optimizer];
  if (given.data === undefined && checked.datasets === undefined) {
    throw new UsageError('data is required: an image folder (ROOT/train + ROOT/val, or ROOT/<class>/) or { train, val? } datasets');
  }
  return {
    model: given.model ?? TRAIN_DEFAULTS.model,
    numClasses: given.numClasses ?? 0,
    imageSize: given.imageSize ?? 0,
    batchSize: given.batchSize ?? TRAIN_DEFAULTS.batchSize,
    epochs: given.epochs ?? TRAIN_DEFAULTS.epochs,
    optimizer,
    lr: given.lr ?? defaults.lr,
    weightDecay: given.weightDecay ?? defaults.weightDecay,
    momentum: given.momentum ?? TRAIN_DEFAULTS.momentum,
    schedule: given.schedule ?? defaults.schedule,
    // The recipe's settings (recipe.ts) are filled once the folder's size is known.
    augment: given.augment ?? TRAIN_DEFAULTS.augment,
    cropPadding: given.cropPadding ?? 4,
    flip: given.flip ?? true,
    photometric: given.photometric ?? 0,
    jpegQuality: given.jpegQuality ?? null,
    labelSmoothing: given.labelSmoothing ?? 0,
    seed: given.seed ?? Math.floor(Math.random() * 2 ** 32),
    valSplit: given.valSplit ?? TRAIN_DEFAULTS.valSplit,
    freezeFeatures: given.freezeFeatures ?? false,
    unfreezeAfter: given.unfreezeAfter ?? null,
    featuresLrScale: given.featuresLrScale ?? (given.pretrained !== undefined ? TRAIN_DEFAULTS.pretrainedFeaturesLrScale : 1),
    memoryBudget: given.memoryBudget ?? null,
    recipe: 'standard',
    data: given.data ?? null,
    pretrained: given.pretrained ?? null,
  };
}
