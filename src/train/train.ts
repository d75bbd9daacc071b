/**
 * `trainDenseNet`: trains or fine-tunes a DenseNet on an image folder (or tfjs-data datasets), with
 * validation, per-epoch checkpoints that a killed run resumes from bit-exactly, and the usual outputs
 * (history, metrics CSV, curves, class names, best model) in an output folder.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type * as tfd from '@tensorflow/tfjs-data';
import { explainOutOfMemory } from '../backend/out-of-memory.js';
import { renderLineChartSvg } from '../bench/chart.js';
import { fileSystemHandler } from '../io/file-system.js';
import {
  MIN_IMAGE_SIZE,
  RECOMPUTE_MODES,
  resolveConfig,
  VARIANT_NAMES,
  type DenseNetVariant,
  type RecomputeMode,
} from '../layers/config.js';
import { BUILDERS, createDenseNet, setMemoryEfficient, type CreateDenseNetOptions } from '../layers/densenet.js';
import { linearUniform, seedFor } from '../layers/initializers.js';
import { MemoryModeLayer } from '../layers/memory-mode-layer.js';
import { writeFileAtomic } from '../util/atomic.js';
import { UsageError } from '../util/errors.js';
import { silentLogger, stderrLogger, type Logger } from '../util/logger.js';
import { parseSafetensors } from '../weights/safetensors.js';
import { loadTorchvisionWeights } from '../weights/torchvision.js';
import { CHECKPOINT_POINTER, CHECKPOINTS_DIR, clearCheckpoints, readCheckpoint, writeCheckpoint, type LoadedCheckpoint } from './checkpoints.js';
import { AUGMENTS, imageFolderDataset, type Augment, type ImageFolderDataset } from './data.js';
import { deriveSeed, scanImageFolder, type ImageFolder } from './image-folder.js';
import { OPTIMIZER_NAMES, TrainingOptimizer, type OptimizerName } from './optimizers.js';
import { createTrainingProgress, type TrainingProgress } from './progress.js';
import { learningRateAt, SCHEDULE_NAMES, type ScheduleName } from './schedule.js';

/** A batch of a user-supplied dataset: NHWC float32 images (already normalised) and one-hot labels. */
export type TrainBatch = { xs: tf.Tensor; ys: tf.Tensor };

/** Datasets given directly instead of a folder. Each pass over `train` is one epoch; batches are disposed after use. */
export interface TrainDatasets {
  train: tfd.Dataset<TrainBatch>;
  val?: tfd.Dataset<TrainBatch>;
}

export interface BatchMetrics {
  /** 1-based. */
  epoch: number;
  /** 1-based batch within the epoch. */
  batch: number;
  /** Batches per epoch, null when unknown (user datasets). */
  batches: number | null;
  /** This batch's loss and accuracy. */
  loss: number;
  accuracy: number;
  /** Running means over the epoch so far. */
  epochLoss: number;
  epochAccuracy: number;
  lr: number;
  imagesPerSecond: number;
}

export interface EpochMetrics {
  /** 1-based. */
  epoch: number;
  /** Learning rate at the epoch's first step. */
  lr: number;
  trainLoss: number;
  trainAccuracy: number;
  /** Null without validation data. */
  valLoss: number | null;
  valAccuracy: number | null;
  trainImages: number;
  /** Wall-clock seconds of the epoch: training, validation and checkpoint. */
  seconds: number;
  /** Training images per second (training steps only). */
  imagesPerSecond: number;
}

export interface BestEpoch {
  epoch: number;
  valAccuracy: number | null;
  valLoss: number | null;
}

export interface TrainCallbacks {
  onBatchEnd?: (metrics: BatchMetrics) => void | Promise<void>;
  onEpochEnd?: (metrics: EpochMetrics) => void | Promise<void>;
}

export interface TrainDenseNetOptions {
  /**
   * What to train: a torchvision variant name (default 'densenet121'), a configuration for createDenseNet
   * (its `seed` and `numClasses` are set from these options), or a built tf.LayersModel whose last layer is
   * the Dense classifier (replaced by a fresh one when its width differs from numClasses).
   */
  model?: DenseNetVariant | CreateDenseNetOptions | tf.LayersModel;
  /** Default: the number of class folders, or the width of the datasets' one-hot labels. */
  numClasses?: number;
  /**
   * Recompute during backprop instead of storing intermediates. Default: true on the wasm backend, where the
   * recomputing layers' analytic batch-norm gradients make a DenseNet-121 step about twice as fast as the
   * naive one (1.7 s vs 3.7 s at 64², batch 16, on 2 cores); false elsewhere (torchvision's default). A given
   * LayersModel or pretrained tfjs model keeps its own mode unless this is set. A run resumes bit-exactly
   * only in the mode it started in.
   */
  memoryEfficient?: boolean;
  /** What memory-efficient mode recomputes: 'layer' (default) or 'bottleneck'. */
  recompute?: RecomputeMode;
  /**
   * An image folder (`ROOT/train/<class>/*` + `ROOT/val/<class>/*`, or `ROOT/<class>/*` split by valSplit),
   * or datasets of { xs, ys } batches. On resume the folder of the checkpoint is the default.
   */
  data?: string | TrainDatasets;
  /** Validation fraction per class for an unsplit folder. Default 0.2. */
  valSplit?: number;
  /** Class names for datasets (folders name their classes). Default '0', '1', … */
  classNames?: string[];
  /**
   * Side of the square input, ≥ 32. Default 64 for folders: small folders are usually small images, and a
   * DenseNet-121 step at 64² is ~12× cheaper than at 224². Datasets default to their images' size.
   */
  imageSize?: number;
  /** Default 32. */
  batchSize?: number;
  /** Default 10. */
  epochs?: number;
  /**
   * Default 'adam' (lr 1e-3, no weight decay, cosine schedule): it fits a small folder within a few epochs
   * from scratch or from pretrained weights. 'sgd' is the DenseNet paper's recipe: Nesterov momentum 0.9,
   * weight decay 1e-4, lr 0.1 divided by 10 at 50% and 75% of the epochs — made for ImageNet/CIFAR over
   * hundreds of epochs, and too slow to settle in the few epochs a small folder gets.
   */
  optimizer?: OptimizerName;
  /** Base learning rate. Default 0.1 for 'sgd', 1e-3 for 'adam'. */
  lr?: number;
  /** Coupled L2 weight decay on every parameter (PyTorch semantics). Default 1e-4 for 'sgd', 0 for 'adam'. */
  weightDecay?: number;
  /** SGD (Nesterov) momentum. Default 0.9. */
  momentum?: number;
  /** Default 'step' for 'sgd', 'cosine' for 'adam'. */
  schedule?: ScheduleName;
  /**
   * Training augmentation for folders. Default 'none': a flip turns a diagonal into an antidiagonal, a 'b'
   * into a 'd'; choose 'flip' (or a crop) when the classes are mirror-symmetric.
   */
  augment?: Augment;
  /**
   * Same seed ⇒ same run: weight initialisation, the folder's train/val split, the data order and the
   * augmentation all derive from it. Default: a random seed, reported in the result and the checkpoint.
   * (Dropout, when a config sets dropRate > 0, draws from tfjs's own unseeded generator.)
   */
  seed?: number;
  /**
   * Weights to start from: a torchvision-format `.safetensors` file (its classifier is skipped when its width
   * differs from numClasses), or a folder holding a saved tfjs model (`model.json`), e.g. a previous outDir.
   */
  pretrained?: string;
  /** Train only the classifier; the features run in inference mode (frozen BatchNorm statistics too). */
  freezeFeatures?: boolean;
  /**
   * Where the run is kept: per-epoch checkpoint (`checkpoint.json` + `checkpoints/`), the best model by
   * validation accuracy (`model.json` + `weights.bin`), `classes.json`, `history.json`, `metrics.csv`,
   * `loss.svg`, `accuracy.svg`. Every file is written atomically.
   */
  outDir?: string;
  /** Continue from outDir's last checkpoint (starts afresh when there is none). Same seed ⇒ same result as uninterrupted. */
  resume?: boolean;
  /** Replace the training output already in outDir instead of refusing to start. */
  overwrite?: boolean;
  callbacks?: TrainCallbacks;
  /** Progress bars on stderr (only when it is a terminal). Default false. */
  progress?: boolean;
  logger?: Logger;
}

export interface TrainResult {
  /** The model after the last epoch (outDir's model.json holds the best epoch's). */
  model: tf.LayersModel;
  history: EpochMetrics[];
  best: BestEpoch;
  classNames: string[];
  seed: number;
}

/** Thrown when the loss stops being finite; the last checkpoint written before it is kept. */
export class TrainingDivergedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrainingDivergedError';
  }
}

/** Defaults for a small image-folder task (see the option docs for why). */
export const TRAIN_DEFAULTS = {
  model: 'densenet121' as DenseNetVariant,
  imageSize: 64,
  batchSize: 32,
  epochs: 10,
  optimizer: 'adam' as OptimizerName,
  augment: 'none' as Augment,
  valSplit: 0.2,
  momentum: 0.9,
} as const;

const OPTIMIZER_DEFAULTS: Record<OptimizerName, { lr: number; weightDecay: number; schedule: ScheduleName }> = {
  sgd: { lr: 0.1, weightDecay: 1e-4, schedule: 'step' },
  adam: { lr: 1e-3, weightDecay: 0, schedule: 'cosine' },
};

const OPTION_KEYS = [
  'model', 'numClasses', 'memoryEfficient', 'recompute', 'data', 'valSplit', 'classNames', 'imageSize', 'batchSize',
  'epochs', 'optimizer', 'lr', 'weightDecay', 'momentum', 'schedule', 'augment', 'seed', 'pretrained',
  'freezeFeatures', 'outDir', 'resume', 'overwrite', 'callbacks', 'progress', 'logger',
] as const;

/** Files a run writes at the top of outDir; a fresh run refuses to start over any of them. */
const OUTPUT_FILES = [CHECKPOINT_POINTER, CHECKPOINTS_DIR, 'model.json', 'weights.bin', 'classes.json', 'history.json', 'metrics.csv', 'loss.svg', 'accuracy.svg'];

/** What decides the numbers a run produces; stored in each checkpoint and checked on resume. */
interface RunSettings {
  model: string;
  numClasses: number;
  imageSize: number;
  batchSize: number;
  epochs: number;
  optimizer: OptimizerName;
  lr: number;
  weightDecay: number;
  momentum: number;
  schedule: ScheduleName;
  augment: Augment;
  seed: number;
  valSplit: number;
  freezeFeatures: boolean;
  data: string | null;
  pretrained: string | null;
}

interface CheckpointState {
  settings: RunSettings;
  classNames: string[];
  history: EpochMetrics[];
  best: BestEpoch | null;
  /** Where the data stream stands: the next epoch's shuffle/augmentation seed derives from (seed, epoch). */
  data: { nextEpoch: number; nextEpochSeed: number };
}

/** The subset of options checked up front, before anything is read, written or allocated. */
interface Checked {
  given: Partial<RunSettings>;
  modelKind: 'variant' | 'config' | 'layers';
  modelConfig?: CreateDenseNetOptions;
  layersModel?: tf.LayersModel;
  memoryEfficient?: boolean;
  recompute?: RecomputeMode;
  datasets?: TrainDatasets;
  classNames?: string[];
  outDir?: string;
  resume: boolean;
  overwrite: boolean;
  callbacks: TrainCallbacks;
  progress: boolean;
  logger: Logger;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

function positiveInteger(name: string, value: unknown, min = 1): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new UsageError(`${name} must be an integer ≥ ${min}, got ${describe(value)}`);
  }
  return value;
}

function finiteNumber(name: string, value: unknown, test: (v: number) => boolean, allowed: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || !test(value)) {
    throw new UsageError(`${name} must be ${allowed}, got ${describe(value)}`);
  }
  return value;
}

function boolean(name: string, value: unknown): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw new UsageError(`${name} must be true or false, got ${describe(value)}`);
  return value;
}

function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly unknown[]).includes(value)) {
    throw new UsageError(`${name} must be one of ${allowed.join(', ')}; got ${describe(value)}`);
  }
  return value as T;
}

function isDataset(value: unknown): value is tfd.Dataset<TrainBatch> {
  return typeof value === 'object' && value !== null && typeof (value as { iterator?: unknown }).iterator === 'function';
}

function checkOptions(options: TrainDenseNetOptions): Checked {
  if (options === null || typeof options !== 'object') throw new UsageError(`trainDenseNet options must be an object, got ${describe(options)}`);
  for (const key of Object.keys(options)) {
    if (!(OPTION_KEYS as readonly string[]).includes(key)) {
      throw new UsageError(`unknown trainDenseNet option '${key}'; allowed: ${OPTION_KEYS.join(', ')}`);
    }
  }
  const given: Partial<RunSettings> = {};
  const set = <K extends keyof RunSettings>(key: K, value: RunSettings[K] | undefined): void => {
    if (value !== undefined) given[key] = value;
  };
  set('numClasses', positiveInteger('numClasses', options.numClasses));
  const imageSize = positiveInteger('imageSize', options.imageSize, MIN_IMAGE_SIZE);
  set('imageSize', imageSize);
  set('batchSize', positiveInteger('batchSize', options.batchSize));
  set('epochs', positiveInteger('epochs', options.epochs));
  set('optimizer', oneOf('optimizer', options.optimizer, OPTIMIZER_NAMES));
  set('lr', finiteNumber('lr', options.lr, (v) => v > 0, 'a number > 0'));
  set('weightDecay', finiteNumber('weightDecay', options.weightDecay, (v) => v >= 0, 'a number ≥ 0'));
  set('momentum', finiteNumber('momentum', options.momentum, (v) => v >= 0 && v < 1, 'a number in [0, 1)'));
  set('schedule', oneOf('schedule', options.schedule, SCHEDULE_NAMES));
  set('augment', oneOf('augment', options.augment, AUGMENTS));
  set('valSplit', finiteNumber('valSplit', options.valSplit, (v) => v > 0 && v < 1, 'a number strictly between 0 and 1'));
  set('seed', finiteNumber('seed', options.seed, (v) => Number.isInteger(v) && v >= 0 && v < 2 ** 32, 'an integer in [0, 2^32)'));
  set('freezeFeatures', boolean('freezeFeatures', options.freezeFeatures));
  const memoryEfficient = boolean('memoryEfficient', options.memoryEfficient);
  const recompute = oneOf('recompute', options.recompute, RECOMPUTE_MODES);
  const resume = boolean('resume', options.resume) ?? false;
  const overwrite = boolean('overwrite', options.overwrite) ?? false;
  const progress = boolean('progress', options.progress) ?? false;

  const checked: Checked = { given, modelKind: 'variant', memoryEfficient, recompute, resume, overwrite, progress, callbacks: {}, logger: silentLogger };

  const model = options.model;
  if (model === undefined || typeof model === 'string') {
    if (model !== undefined && !(VARIANT_NAMES as string[]).includes(model)) {
      throw new UsageError(`model must be one of ${VARIANT_NAMES.join(', ')}, a DenseNet configuration or a tf.LayersModel; got '${model}'`);
    }
    if (model !== undefined) given.model = model;
  } else if (model instanceof tf.LayersModel) {
    checked.modelKind = 'layers';
    checked.layersModel = model;
    given.model = `layers-model:${model.name}`;
  } else if (typeof model === 'object' && model !== null && !Array.isArray(model)) {
    const { seed: _seed, numClasses: _classes, ...rest } = model;
    void _seed;
    void _classes;
    try {
      resolveConfig(rest);
    } catch (error) {
      throw new UsageError(`model configuration: ${(error as Error).message}`);
    }
    checked.modelKind = 'config';
    checked.modelConfig = model;
    given.model = `config:${JSON.stringify(rest)}`;
  } else {
    throw new UsageError(`model must be a variant name, a DenseNet configuration or a tf.LayersModel; got ${describe(model)}`);
  }

  const data = options.data;
  if (typeof data === 'string') {
    if (data.length === 0) throw new UsageError('data must name an image folder, got an empty string');
    given.data = path.resolve(data);
  } else if (data !== undefined) {
    if (typeof data !== 'object' || data === null || !isDataset(data.train) || (data.val !== undefined && !isDataset(data.val))) {
      throw new UsageError('data must be an image folder path or { train, val? } tfjs-data datasets of { xs, ys } batches');
    }
    checked.datasets = data;
    if (options.valSplit !== undefined) throw new UsageError('valSplit applies to an image folder; datasets bring their own val');
  }
  if (options.classNames !== undefined) {
    if (!Array.isArray(options.classNames) || options.classNames.some((c) => typeof c !== 'string' || c.length === 0)) {
      throw new UsageError('classNames must be an array of non-empty strings');
    }
    if (typeof data === 'string') throw new UsageError('classNames applies to datasets; an image folder names its classes by its folders');
    checked.classNames = [...options.classNames];
  }
  if (options.pretrained !== undefined) {
    if (typeof options.pretrained !== 'string' || options.pretrained.length === 0) {
      throw new UsageError(`pretrained must be a .safetensors file or a saved tfjs model folder, got ${describe(options.pretrained)}`);
    }
    if (checked.modelKind === 'layers') throw new UsageError('pretrained cannot be combined with a tf.LayersModel: load the weights into it yourself');
    given.pretrained = path.resolve(options.pretrained);
  }
  if (options.outDir !== undefined) {
    if (typeof options.outDir !== 'string' || options.outDir.length === 0) throw new UsageError(`outDir must be a folder path, got ${describe(options.outDir)}`);
    checked.outDir = path.resolve(options.outDir);
  }
  if (resume && checked.outDir === undefined) throw new UsageError('resume needs outDir, the folder holding the checkpoint to continue');
  if (resume && overwrite) throw new UsageError('resume and overwrite contradict each other: resume continues the run in outDir, overwrite replaces it');
  if (options.callbacks !== undefined) {
    const cb = options.callbacks;
    if (typeof cb !== 'object' || cb === null) throw new UsageError('callbacks must be an object { onBatchEnd?, onEpochEnd? }');
    for (const key of Object.keys(cb)) {
      const fn = (cb as Record<string, unknown>)[key];
      if ((key !== 'onBatchEnd' && key !== 'onEpochEnd') || (fn !== undefined && typeof fn !== 'function')) {
        throw new UsageError(`callbacks may hold the functions onBatchEnd and onEpochEnd; got '${key}'`);
      }
    }
    checked.callbacks = cb;
  }
  if (options.logger !== undefined) {
    const logger = options.logger;
    if (typeof logger !== 'object' || logger === null || typeof logger.info !== 'function' || typeof logger.warn !== 'function') {
      throw new UsageError('logger must be a Logger ({ info, warn })');
    }
    checked.logger = logger;
  }
  return checked;
}

async function statOf(p: string) {
  return fs.stat(p).catch(() => undefined);
}

/** Refuses an outDir that is a file or already holds a run (unless resuming or overwriting). */
async function checkOutDir(checked: Checked): Promise<void> {
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

async function checkPretrained(file: string): Promise<'safetensors' | 'tfjs'> {
  const stat = await statOf(file);
  if (stat === undefined) throw new UsageError(`pretrained ${file} does not exist`);
  if (stat.isDirectory()) {
    if (!(await statOf(path.join(file, 'model.json')))?.isFile()) {
      throw new UsageError(`pretrained folder ${file} holds no model.json (a saved tfjs model, e.g. a previous outDir)`);
    }
    return 'tfjs';
  }
  if (!file.endsWith('.safetensors')) {
    throw new UsageError(`pretrained ${file} must be a torchvision .safetensors file or a folder with a saved tfjs model`);
  }
  return 'safetensors';
}

/** Combines what was given with the checkpoint's settings (resume) and the defaults; rejects contradictions. */
function resolveSettings(checked: Checked, stored: RunSettings | undefined, logger: Logger): RunSettings {
  const given = checked.given;
  if (stored) {
    const conflicts = (Object.keys(given) as (keyof RunSettings)[]).filter(
      (key) => key !== 'epochs' && JSON.stringify(given[key]) !== JSON.stringify(stored[key]),
    );
    if (conflicts.length > 0) {
      const list = conflicts.map((k) => `${k}: checkpoint ${JSON.stringify(stored[k])}, now ${JSON.stringify(given[k])}`).join('; ');
      throw new UsageError(`cannot resume: the checkpoint in ${checked.outDir} was trained with other settings (${list}); drop them or start a new outDir`);
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
    augment: given.augment ?? TRAIN_DEFAULTS.augment,
    seed: given.seed ?? Math.floor(Math.random() * 2 ** 32),
    valSplit: given.valSplit ?? TRAIN_DEFAULTS.valSplit,
    freezeFeatures: given.freezeFeatures ?? false,
    data: given.data ?? null,
    pretrained: given.pretrained ?? null,
  };
}

interface DataSource {
  classNames: string[];
  numClasses: number;
  imageSize: number;
  /** Batches per epoch when known. */
  batchesPerEpoch: number | null;
  trainFor(epoch: number): tfd.Dataset<TrainBatch>;
  val: tfd.Dataset<TrainBatch> | null;
  folder?: ImageFolder;
}

function epochSeed(seed: number, epoch: number): number {
  return deriveSeed(seed, 0x7e57, epoch);
}

async function prepareData(checked: Checked, settings: RunSettings, logger: Logger): Promise<DataSource> {
  if (settings.data !== null && checked.datasets === undefined) {
    const folder = await scanImageFolder(settings.data, {
      // Left out at the default so that scanImageFolder only remarks on a valSplit the caller chose.
      valSplit: settings.valSplit === TRAIN_DEFAULTS.valSplit ? undefined : settings.valSplit,
      seed: settings.seed,
      numClasses: settings.numClasses > 0 ? settings.numClasses : undefined,
      logger,
    });
    if (folder.classNames.length < 2) {
      throw new UsageError(`image folder ${settings.data} has ${folder.classNames.length} class folder; a classifier needs at least 2`);
    }
    const imageSize = settings.imageSize > 0 ? settings.imageSize : TRAIN_DEFAULTS.imageSize;
    const numClasses = folder.classNames.length;
    const base = { imageSize, batchSize: settings.batchSize, numClasses, logger };
    const val = folder.val.length > 0 ? imageFolderDataset(folder.val, { ...base, augment: 'none' }) : null;
    if (folder.ignoredFiles > 0) logger.info(`${folder.ignoredFiles} non-image file(s) under ${settings.data} are ignored`);
    return {
      classNames: folder.classNames,
      numClasses,
      imageSize,
      batchesPerEpoch: Math.ceil(folder.train.length / settings.batchSize),
      trainFor: (epoch) =>
        imageFolderDataset(folder.train, { ...base, augment: settings.augment, shuffle: true, seed: epochSeed(settings.seed, epoch) }) as ImageFolderDataset,
      val,
      folder,
    };
  }
  const datasets = checked.datasets;
  if (!datasets) {
    throw new UsageError('data is required: the checkpoint was trained on datasets, which must be passed again to resume');
  }
  // One batch tells the image size and the number of classes when they are not given.
  const first = await datasets.train.take(1).toArray();
  if (first.length === 0) throw new UsageError('data.train is empty');
  const { xs, ys } = first[0]!;
  const shapes = { xs: xs.shape, ys: ys.shape };
  tf.dispose([xs, ys]);
  if (shapes.xs.length !== 4 || shapes.xs[3] !== 3 || shapes.ys.length !== 2 || shapes.ys[0] !== shapes.xs[0]) {
    throw new UsageError(`data.train batches must be { xs: [n, h, w, 3], ys: [n, classes] }; got xs [${shapes.xs}] and ys [${shapes.ys}]`);
  }
  const numClasses = shapes.ys[1]!;
  if (settings.numClasses > 0 && settings.numClasses !== numClasses) {
    throw new UsageError(`numClasses is ${settings.numClasses} but data.train's labels have ${numClasses} classes`);
  }
  if (shapes.xs[1] !== shapes.xs[2]) throw new UsageError(`data.train images must be square; got ${shapes.xs[1]}×${shapes.xs[2]}`);
  const imageSize = shapes.xs[1]!;
  if (settings.imageSize > 0 && settings.imageSize !== imageSize) {
    throw new UsageError(`imageSize is ${settings.imageSize} but data.train's images are ${imageSize}×${imageSize}`);
  }
  if (imageSize < MIN_IMAGE_SIZE) throw new UsageError(`data.train's images are ${imageSize}×${imageSize}; DenseNets need ≥ ${MIN_IMAGE_SIZE}`);
  const classNames = checked.classNames ?? Array.from({ length: numClasses }, (_, i) => String(i));
  if (classNames.length !== numClasses) throw new UsageError(`classNames has ${classNames.length} names for ${numClasses} classes`);
  return { classNames, numClasses, imageSize, batchesPerEpoch: null, trainFor: () => datasets.train, val: datasets.val ?? null };
}

/** Loads a saved tfjs model, first giving its input layer the wanted image size (DenseNets take any size ≥ 32). */
async function loadTfjsModel(dir: string, imageSize: number | null): Promise<tf.LayersModel> {
  const handler = fileSystemHandler(dir);
  if (!handler.load) throw new Error('the file-system handler cannot load');
  const artifacts = await handler.load();
  const topology = artifacts.modelTopology as { config?: { layers?: { class_name?: string; config?: Record<string, unknown> }[] } } | undefined;
  if (imageSize !== null) {
    for (const layer of topology?.config?.layers ?? []) {
      if (layer.class_name === 'InputLayer' && layer.config) {
        const key = 'batch_input_shape' in layer.config ? 'batch_input_shape' : 'batchInputShape';
        layer.config[key] = [null, imageSize, imageSize, 3];
      }
    }
  }
  return tf.loadLayersModel(tf.io.fromMemory(artifacts));
}

function modelImageSize(model: tf.LayersModel): number | null {
  const shape = model.inputs[0]?.shape;
  return shape && typeof shape[1] === 'number' && shape[1] === shape[2] ? shape[1] : null;
}

function classifierOf(model: tf.LayersModel): tf.layers.Layer {
  const last = model.layers[model.layers.length - 1];
  if (!last || last.getClassName() !== 'Dense') {
    throw new UsageError(`model '${model.name}' must end in a Dense classifier layer to be trained here; its last layer is ${last?.getClassName() ?? 'missing'}`);
  }
  return last;
}

function outputWidth(model: tf.LayersModel): number {
  const shape = model.outputs[0]!.shape;
  return shape[shape.length - 1] as number;
}

/** A new model sharing every layer but the classifier, which is re-initialised (PyTorch's nn.Linear init) at numClasses. */
function replaceClassifier(model: tf.LayersModel, numClasses: number, seed: number, disposeOld: boolean): tf.LayersModel {
  const old = classifierOf(model);
  const features = old.input as tf.SymbolicTensor;
  const fanIn = features.shape[features.shape.length - 1] as number;
  const head = tf.layers.dense({
    units: numClasses,
    name: 'classifier',
    kernelInitializer: linearUniform(fanIn, seedFor(seed, 300)),
    biasInitializer: 'zeros',
  });
  const replaced = tf.model({ inputs: model.inputs, outputs: head.apply(features) as tf.SymbolicTensor, name: model.name });
  // A caller's own model keeps its classifier; one we loaded has no other user.
  if (disposeOld) for (const weight of old.weights) weight.dispose();
  return replaced;
}

async function buildModel(
  checked: Checked,
  settings: RunSettings,
  data: DataSource,
  logger: Logger,
  checkpoint: LoadedCheckpoint<CheckpointState> | null,
): Promise<tf.LayersModel> {
  const { numClasses, imageSize } = data;
  const fresh = checked.modelKind !== 'layers' && settings.pretrained === null ? true : !(await isTfjsFolder(settings.pretrained));
  const memoryEfficient = checked.memoryEfficient ?? (fresh ? defaultMemoryEfficient() : undefined);
  const mode = {
    ...(memoryEfficient !== undefined ? { memoryEfficient } : {}),
    ...(checked.recompute !== undefined ? { recompute: checked.recompute } : {}),
  };
  const pretrainedKind = settings.pretrained !== null ? await checkPretrained(settings.pretrained) : null;
  let model: tf.LayersModel;
  if (pretrainedKind === 'tfjs') {
    if (checked.modelKind === 'config' || (checked.given.model !== undefined && checked.given.model !== settings.model)) {
      logger.info(`the architecture comes from the pretrained model in ${settings.pretrained}; model ${settings.model} is not used`);
    }
    model = await loadTfjsModel(settings.pretrained!, imageSize);
    classifierOf(model);
  } else if (checked.modelKind !== 'layers' && settings.model.startsWith('layers-model:') && checkpoint) {
    // Resuming a run that was handed a LayersModel, without it: the checkpoint holds the architecture.
    model = await loadTfjsModel(checkpoint.modelDir, imageSize);
  } else if (checked.modelKind === 'layers') {
    model = checked.layersModel!;
    const size = modelImageSize(model);
    if (size !== null && size !== imageSize) {
      throw new UsageError(`the given model takes ${size}×${size} images but imageSize is ${imageSize}`);
    }
    classifierOf(model);
  } else {
    const common = { numClasses, inputShape: [imageSize, imageSize, 3] as [number, number, number], seed: settings.seed, ...mode };
    if (settings.model.startsWith('config:')) {
      // On resume without `model`, the configuration comes back from the checkpoint's settings.
      const config = checked.modelConfig ?? (JSON.parse(settings.model.slice('config:'.length)) as CreateDenseNetOptions);
      if (config.numClasses !== undefined && config.numClasses !== numClasses) {
        throw new UsageError(`the model configuration has numClasses ${config.numClasses} but the data has ${numClasses} classes`);
      }
      model = createDenseNet({ ...config, ...common });
    } else {
      model = BUILDERS[settings.model as DenseNetVariant](common);
    }
  }
  if (outputWidth(model) !== numClasses) {
    logger.info(`replacing the ${outputWidth(model)}-class classifier by a new ${numClasses}-class one`);
    model = replaceClassifier(model, numClasses, settings.seed, checked.modelKind !== 'layers');
  }
  if (pretrainedKind === 'safetensors') {
    const bytes = new Uint8Array(await fs.readFile(settings.pretrained!));
    const file = parseSafetensors(bytes, settings.pretrained!);
    const theirs = file.tensors.get('classifier.bias')?.shape[0];
    const skipClassifier = theirs !== numClasses;
    await loadTorchvisionWeights(model, file.tensors, { skipClassifier, logger });
  }
  if (mode.memoryEfficient !== undefined || mode.recompute !== undefined) {
    setMemoryEfficient(model, mode.memoryEfficient ?? currentlyEfficient(model), mode.recompute);
  }
  return model;
}

/** See TrainDenseNetOptions.memoryEfficient. */
function defaultMemoryEfficient(): boolean {
  return tf.getBackend() === 'wasm';
}

async function isTfjsFolder(file: string | null): Promise<boolean> {
  return file !== null && ((await statOf(file))?.isDirectory() ?? false);
}

function currentlyEfficient(model: tf.LayersModel): boolean {
  return model.layers.some((l) => l instanceof MemoryModeLayer && l.memoryEfficient);
}

/** Copies a checkpoint's weights (running statistics included) into `model`, checking that they fit. */
async function restoreWeights(model: tf.LayersModel, checkpoint: LoadedCheckpoint<CheckpointState>): Promise<void> {
  const saved = await tf.loadLayersModel(fileSystemHandler(checkpoint.modelDir));
  try {
    const ours = model.weights;
    const theirs = saved.weights;
    const mismatch = ours.length !== theirs.length || ours.some((w, i) => w.shape.join('x') !== theirs[i]!.shape.join('x'));
    if (mismatch) {
      throw new UsageError(`cannot resume: the checkpoint in ${checkpoint.modelDir} holds a different architecture than the model being trained`);
    }
    model.setWeights(saved.getWeights());
  } finally {
    saved.dispose();
  }
}

function featureFrozenVariables(model: tf.LayersModel): tf.Variable[] {
  return classifierOf(model).trainableWeights.map((w) => w.read() as tf.Variable);
}

/** Runs `fn`, turning an out-of-memory failure into explainOutOfMemory's message. */
async function explainingOom<T>(fn: () => Promise<T>, context: { model: string; batchSize: number; memoryEfficient: boolean }): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw explainOutOfMemory(error, { backend: tf.getBackend(), ...context });
  }
}

interface Prepared {
  checked: Checked;
  checkpoint: LoadedCheckpoint<CheckpointState> | null;
  settings: RunSettings;
  data: DataSource;
}

/** Everything that can fail on the caller's input, before a tensor is allocated or a file written. */
async function prepare(options: TrainDenseNetOptions): Promise<Prepared> {
  const checked = checkOptions(options);
  await checkOutDir(checked);
  const logger = checked.logger;
  const checkpoint = checked.resume ? await readCheckpoint<CheckpointState>(checked.outDir!) : null;
  if (checked.resume && !checkpoint) logger.info(`no checkpoint in ${checked.outDir}; starting a new run there`);
  const settings = resolveSettings(checked, checkpoint?.state.settings, logger);
  if (settings.pretrained !== null) await checkPretrained(settings.pretrained);
  const data = await prepareData(checked, settings, logger);
  if (checkpoint) {
    const stored = checkpoint.state.classNames;
    if (JSON.stringify(stored) !== JSON.stringify(data.classNames)) {
      throw new UsageError(`cannot resume: the checkpoint's classes (${stored.join(', ')}) differ from the data's (${data.classNames.join(', ')})`);
    }
  }
  settings.numClasses = data.numClasses;
  settings.imageSize = data.imageSize;
  return { checked, checkpoint, settings, data };
}

/**
 * Runs every check trainDenseNet makes before it starts (options, data folder, outDir, checkpoint, pretrained
 * file) and throws the same UsageError it would; writes and allocates nothing. Lets a caller fail fast
 * before slower set-up such as picking a backend.
 */
export async function validateTrainOptions(options: TrainDenseNetOptions): Promise<void> {
  await prepare(options);
}

/**
 * Trains (or fine-tunes) a DenseNet classifier. Every option is checked, the data folder scanned and the
 * output folder inspected before any tensor is allocated or any file written: a failed start changes
 * nothing on disk. Kernels are registered by initBackend alone: on wasm it adds the training kernels and the
 * fast overrides, without which wasm cannot train a CNN at all.
 */
export async function trainDenseNet(options: TrainDenseNetOptions): Promise<TrainResult> {
  const { checked, checkpoint, settings, data } = await prepare(options);
  const baseLogger = checked.logger;

  await tf.ready();

  const memoryEfficient = checked.memoryEfficient ?? defaultMemoryEfficient();
  const oomContext = { model: settings.model.startsWith('config:') ? 'a DenseNet' : settings.model, batchSize: settings.batchSize, memoryEfficient };
  const model = await explainingOom(() => buildModel(checked, settings, data, baseLogger, checkpoint), oomContext);
  const optimizer = new TrainingOptimizer({ name: settings.optimizer, lr: settings.lr, weightDecay: settings.weightDecay, momentum: settings.momentum });
  let history: EpochMetrics[] = [];
  let best: BestEpoch | null = null;
  let progress: TrainingProgress | undefined;
  const outDir = checked.outDir;
  try {
    let startEpoch = 0;
    if (checkpoint) {
      await restoreWeights(model, checkpoint);
      const state = await checkpoint.readOptimizerState();
      try {
        await optimizer.setState(state);
      } finally {
        tf.dispose(state.map((s) => s.tensor));
      }
      history = checkpoint.state.history;
      best = checkpoint.state.best;
      startEpoch = checkpoint.epoch;
      baseLogger.info(`resuming ${checked.outDir} after epoch ${startEpoch} of ${settings.epochs}`);
    }
    const variables = settings.freezeFeatures ? featureFrozenVariables(model) : model.trainableWeights.map((w) => w.read() as tf.Variable);
    progress = createTrainingProgress(checked.progress, settings.epochs, startEpoch);
    const bars = progress;
    // Lines written straight to stderr would tear the bars; the bars print them above themselves instead.
    const logger: Logger =
      bars.active && baseLogger === stderrLogger ? { info: (m) => bars.log(m), warn: (m) => bars.log(`warning: ${m}`) } : baseLogger;
    if (outDir !== undefined) {
      if (checked.overwrite) await clearCheckpoints(outDir);
      await writeFileAtomic(path.join(outDir, 'classes.json'), `${JSON.stringify(data.classNames, null, 2)}\n`);
    }
    for (let epoch = startEpoch; epoch < settings.epochs; epoch++) {
      const epochStart = performance.now();
      bars.startEpoch(epoch + 1, data.batchesPerEpoch);
      const train = await explainingOom(
        () => trainEpoch(model, optimizer, variables, data, settings, epoch, checked.callbacks, bars, outDir, history),
        oomContext,
      );
      const val = data.val ? await explainingOom(() => evaluate(model, data.val!), oomContext) : null;
      const metrics: EpochMetrics = {
        epoch: epoch + 1,
        lr: train.lr,
        trainLoss: train.loss,
        trainAccuracy: train.accuracy,
        valLoss: val?.loss ?? null,
        valAccuracy: val?.accuracy ?? null,
        trainImages: train.images,
        seconds: 0,
        imagesPerSecond: train.images / train.seconds,
      };
      const improved = isBetter(metrics, best, history);
      if (improved) best = { epoch: metrics.epoch, valAccuracy: metrics.valAccuracy, valLoss: metrics.valLoss };
      if (outDir !== undefined) {
        if (improved) await model.save(fileSystemHandler(outDir));
        const state: CheckpointState = {
          settings,
          classNames: data.classNames,
          history: [...history, { ...metrics, seconds: (performance.now() - epochStart) / 1000 }],
          best,
          data: { nextEpoch: epoch + 1, nextEpochSeed: epochSeed(settings.seed, epoch + 1) },
        };
        const optimizerState = await optimizer.getState();
        try {
          await writeCheckpoint(outDir, epoch + 1, model, optimizerState, state);
        } finally {
          tf.dispose(optimizerState.map((s) => s.tensor));
        }
      }
      metrics.seconds = (performance.now() - epochStart) / 1000;
      history = [...history, metrics];
      if (outDir !== undefined) await writeReports(outDir, history, best!, data.classNames, settings);
      const summary = formatEpoch(metrics, settings.epochs);
      bars.endEpoch(metrics.epoch, summary);
      logger.info(summary);
      await checked.callbacks.onEpochEnd?.(metrics);
    }
  } catch (error) {
    optimizer.dispose();
    if (model !== checked.layersModel) model.dispose();
    throw error;
  } finally {
    progress?.stop();
  }
  optimizer.dispose();
  return { model, history, best: best!, classNames: data.classNames, seed: settings.seed };
}

interface EpochTotals {
  loss: number;
  accuracy: number;
  images: number;
  seconds: number;
  lr: number;
}

async function trainEpoch(
  model: tf.LayersModel,
  optimizer: TrainingOptimizer,
  variables: tf.Variable[],
  data: DataSource,
  settings: RunSettings,
  epoch: number,
  callbacks: TrainCallbacks,
  progress: TrainingProgress,
  outDir: string | undefined,
  history: EpochMetrics[],
): Promise<EpochTotals> {
  const iterator = await data.trainFor(epoch).iterator();
  const training = !settings.freezeFeatures;
  let lossSum = 0;
  let correct = 0;
  let images = 0;
  let batch = 0;
  let stepSeconds = 0;
  let firstLr = NaN;
  for (;;) {
    const next = await iterator.next();
    if (next.done) break;
    const { xs, ys } = next.value;
    const lr = learningRateAt(settings.schedule, settings.lr, settings.epochs, { epoch, batch, batchesPerEpoch: data.batchesPerEpoch });
    if (batch === 0) firstLr = lr;
    optimizer.setLearningRate(lr);
    const n = xs.shape[0]!;
    const start = performance.now();
    let loss: number;
    let batchCorrect: number;
    try {
      if (ys.shape[1] !== data.numClasses) {
        throw new UsageError(`a training batch has labels of width ${ys.shape[1]}; the model has ${data.numClasses} classes`);
      }
      const out = optimizer.step(() => model.apply(xs, { training }) as tf.Tensor, ys, variables);
      [loss, batchCorrect] = [(await out.loss.data())[0]!, (await out.correct.data())[0]!];
      tf.dispose([out.loss, out.correct]);
    } finally {
      tf.dispose([xs, ys]);
    }
    stepSeconds += (performance.now() - start) / 1000;
    if (!Number.isFinite(loss)) {
      const last = history.length > 0 ? history[history.length - 1]!.epoch : 0;
      const kept =
        outDir === undefined
          ? ''
          : last > 0
            ? `; the last good checkpoint (epoch ${last}) is kept in ${outDir}`
            : `; no checkpoint had been written to ${outDir} yet`;
      throw new TrainingDivergedError(
        `training diverged: the loss became ${loss} at epoch ${epoch + 1}, batch ${batch + 1} (learning rate ${lr})${kept}; lower lr and start again`,
      );
    }
    lossSum += loss * n;
    correct += batchCorrect;
    images += n;
    batch++;
    const metrics: BatchMetrics = {
      epoch: epoch + 1,
      batch,
      batches: data.batchesPerEpoch,
      loss,
      accuracy: batchCorrect / n,
      epochLoss: lossSum / images,
      epochAccuracy: correct / images,
      lr,
      imagesPerSecond: images / stepSeconds,
    };
    progress.batch({ batch, batches: data.batchesPerEpoch, loss: metrics.epochLoss, accuracy: metrics.epochAccuracy, imagesPerSecond: metrics.imagesPerSecond });
    await callbacks.onBatchEnd?.(metrics);
  }
  if (images === 0) throw new UsageError(`epoch ${epoch + 1} had no training batches`);
  return { loss: lossSum / images, accuracy: correct / images, images, seconds: stepSeconds, lr: firstLr };
}

/** Mean loss and accuracy over a dataset, in inference mode. */
export async function evaluate(model: tf.LayersModel, dataset: tfd.Dataset<TrainBatch>): Promise<{ loss: number; accuracy: number; images: number }> {
  let lossSum = 0;
  let correct = 0;
  let images = 0;
  const iterator = await dataset.iterator();
  for (;;) {
    const next = await iterator.next();
    if (next.done) break;
    const { xs, ys } = next.value;
    try {
      const [sum, hits] = tf.tidy(() => {
        const logits = model.apply(xs, { training: false }) as tf.Tensor;
        const perExample = tf.neg(tf.sum(tf.mul(ys, tf.logSoftmax(logits)), -1));
        return [tf.sum(perExample), tf.sum(tf.cast(tf.equal(tf.argMax(logits, -1), tf.argMax(ys, -1)), 'float32'))];
      });
      lossSum += (await sum.data())[0]!;
      correct += (await hits.data())[0]!;
      tf.dispose([sum, hits]);
      images += xs.shape[0]!;
    } finally {
      tf.dispose([xs, ys]);
    }
  }
  return images === 0 ? { loss: NaN, accuracy: NaN, images } : { loss: lossSum / images, accuracy: correct / images, images };
}

/** Higher validation accuracy wins, ties go to the lower validation loss; without validation, the lower training loss. */
function isBetter(metrics: EpochMetrics, best: BestEpoch | null, history: EpochMetrics[]): boolean {
  if (best === null) return true;
  if (metrics.valAccuracy !== null && best.valAccuracy !== null) {
    if (metrics.valAccuracy !== best.valAccuracy) return metrics.valAccuracy > best.valAccuracy;
    return (metrics.valLoss ?? Infinity) < (best.valLoss ?? Infinity);
  }
  const previous = history.find((h) => h.epoch === best.epoch);
  return previous === undefined || metrics.trainLoss < previous.trainLoss;
}

function formatEpoch(m: EpochMetrics, epochs: number): string {
  const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
  const val = m.valLoss !== null && m.valAccuracy !== null ? ` | val loss ${m.valLoss.toFixed(4)} acc ${pct(m.valAccuracy)}` : '';
  return (
    `epoch ${m.epoch}/${epochs}: loss ${m.trainLoss.toFixed(4)} acc ${pct(m.trainAccuracy)}${val} | ` +
    `lr ${m.lr.toPrecision(3)} | ${m.imagesPerSecond.toFixed(1)} img/s | ${m.seconds.toFixed(1)} s`
  );
}

const CSV_COLUMNS = ['epoch', 'lr', 'train_loss', 'train_accuracy', 'val_loss', 'val_accuracy', 'train_images', 'seconds', 'images_per_second'];

export function metricsCsv(history: EpochMetrics[]): string {
  const cell = (v: number | null) => (v === null ? '' : String(v));
  const rows = history.map((m) =>
    [m.epoch, m.lr, m.trainLoss, m.trainAccuracy, m.valLoss, m.valAccuracy, m.trainImages, m.seconds, m.imagesPerSecond].map(cell).join(','),
  );
  return `${[CSV_COLUMNS.join(','), ...rows].join('\n')}\n`;
}

async function writeReports(outDir: string, history: EpochMetrics[], best: BestEpoch, classNames: string[], settings: RunSettings): Promise<void> {
  await writeFileAtomic(path.join(outDir, 'history.json'), `${JSON.stringify({ history, best, classNames, settings }, null, 2)}\n`);
  await writeFileAtomic(path.join(outDir, 'metrics.csv'), metricsCsv(history));
  const series = (name: string, pick: (m: EpochMetrics) => number | null) => ({
    name,
    points: history.map((m) => ({ x: m.epoch, y: pick(m) ?? NaN })),
  });
  const hasVal = history.some((m) => m.valLoss !== null);
  const loss = await renderLineChartSvg({
    title: 'Loss',
    xLabel: 'epoch',
    yLabel: 'softmax cross-entropy',
    series: [series('train', (m) => m.trainLoss), ...(hasVal ? [series('validation', (m) => m.valLoss)] : [])],
  });
  const accuracy = await renderLineChartSvg({
    title: 'Accuracy',
    xLabel: 'epoch',
    yLabel: 'accuracy',
    series: [series('train', (m) => m.trainAccuracy), ...(hasVal ? [series('validation', (m) => m.valAccuracy)] : [])],
  });
  await writeFileAtomic(path.join(outDir, 'loss.svg'), loss);
  await writeFileAtomic(path.join(outDir, 'accuracy.svg'), accuracy);
}
