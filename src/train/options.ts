/**
 * trainDenseNet's defaults and the checks of its options, made before anything is read, written or allocated.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type * as tfd from '@tensorflow/tfjs-data';
import { memoryModeFromOptions, MIN_IMAGE_SIZE, resolveConfig, VARIANT_NAMES, type DenseNetVariant } from '../layers/config.js';
import type { MemoryMode } from '../layers/memory-modes.js';
import type { CreateDenseNetOptions } from '../layers/densenet.js';
import { UsageError } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { boolean, byteSize, describe, finiteNumber, integer, knownKeys, logger as validateLogger, nonEmptyString, oneOf, plainObject } from '../util/validate.js';
import { checkWorkers, type WorkersOption } from '../parallel/workers.js';
import { AUGMENTS, type Augment } from '../data/dataset.js';
import { OPTIMIZER_NAMES, type OptimizerName } from '../step/optimizers.js';
import { SCHEDULE_NAMES, type ScheduleName } from './schedule.js';
import type { TrainBatch, TrainCallbacks, TrainDatasets, TrainDenseNetOptions } from './types.js';

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
  /** featuresLrScale when starting from pretrained weights. */
  pretrainedFeaturesLrScale: 0.1,
} as const;

export const OPTIMIZER_DEFAULTS: Record<OptimizerName, { lr: number; weightDecay: number; schedule: ScheduleName }> = {
  sgd: { lr: 0.1, weightDecay: 1e-4, schedule: 'step' },
  adam: { lr: 1e-3, weightDecay: 0, schedule: 'cosine' },
};

const OPTION_KEYS = [
  'model', 'numClasses', 'memoryMode', 'memoryEfficient', 'recompute', 'memoryBudget', 'data', 'valSplit', 'classNames', 'imageSize', 'batchSize',
  'epochs', 'optimizer', 'lr', 'weightDecay', 'momentum', 'schedule', 'augment', 'seed', 'pretrained', 'checkHash',
  'freezeFeatures', 'unfreezeAfter', 'featuresLrScale', 'labelSmoothing', 'cropPadding', 'flip', 'photometric', 'jpegQuality', 'outDir', 'resume', 'overwrite', 'callbacks', 'progress', 'logger', 'workers', 'allowOversubscribe', 'syncBatchNorm',
] as const;

/** What decides the numbers a run produces; stored in each snapshot and checked on resume. */
export interface RunSettings {
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
  /** Zero padding of 'crop', in pixels. */
  cropPadding: number;
  flip: boolean;
  photometric: number;
  jpegQuality: [number, number] | null;
  labelSmoothing: number;
  seed: number;
  valSplit: number;
  freezeFeatures: boolean;
  /** Epochs after which frozen features are unfrozen; null: frozen throughout (or never frozen). */
  unfreezeAfter: number | null;
  featuresLrScale: number;
  /** Bytes for the whole step, planned per dense block (planMemory); null: the model's own memory modes. */
  memoryBudget: number | null;
  /** Which recipe filled the settings not given (recipe.ts). */
  recipe: 'small-data' | 'standard';
  data: string | null;
  pretrained: string | null;
}


/** The subset of options checked up front, before anything is read, written or allocated. */
export interface Checked {
  given: Partial<RunSettings>;
  modelKind: 'variant' | 'config' | 'layers';
  modelConfig?: CreateDenseNetOptions;
  layersModel?: tf.LayersModel;
  /** The mode asked for (memoryMode or its aliases); undefined: the model's own, or the backend's default. */
  memoryMode?: MemoryMode;
  datasets?: TrainDatasets;
  classNames?: string[];
  outDir?: string;
  resume: boolean;
  overwrite: boolean;
  callbacks: TrainCallbacks;
  progress: boolean;
  logger: Logger;
  /** Data-parallel workers as asked (resolved against the backend when the run starts). */
  workers?: WorkersOption;
  /** Check a pretrained file's name-borne SHA-256 prefix (not a run setting: it changes no number). */
  checkHash: boolean;
  allowOversubscribe: boolean;
  /** Data-parallel batch norm synchronized (default) or per worker (PyTorch DDP's default). */
  syncBatchNorm: boolean;
}

function isDataset(value: unknown): value is tfd.Dataset<TrainBatch> {
  return typeof value === 'object' && value !== null && typeof (value as { iterator?: unknown }).iterator === 'function';
}

export function checkOptions(options: TrainDenseNetOptions): Checked {
  knownKeys('trainDenseNet', plainObject('trainDenseNet options', options), OPTION_KEYS);
  const given: Partial<RunSettings> = {};
  const set = <K extends keyof RunSettings>(key: K, value: RunSettings[K] | undefined): void => {
    if (value !== undefined) given[key] = value;
  };
  set('numClasses', integer('numClasses', options.numClasses));
  const imageSize = integer('imageSize', options.imageSize, MIN_IMAGE_SIZE);
  set('imageSize', imageSize);
  set('batchSize', integer('batchSize', options.batchSize));
  set('epochs', integer('epochs', options.epochs));
  set('optimizer', oneOf('optimizer', options.optimizer, OPTIMIZER_NAMES));
  set('lr', finiteNumber('lr', options.lr, (v) => v > 0, 'a number > 0'));
  set('weightDecay', finiteNumber('weightDecay', options.weightDecay, (v) => v >= 0, 'a number ≥ 0'));
  set('momentum', finiteNumber('momentum', options.momentum, (v) => v >= 0 && v < 1, 'a number in [0, 1)'));
  set('schedule', oneOf('schedule', options.schedule, SCHEDULE_NAMES));
  set('augment', oneOf('augment', options.augment, AUGMENTS));
  set('valSplit', finiteNumber('valSplit', options.valSplit, (v) => v > 0 && v < 1, 'a number strictly between 0 and 1'));
  set('seed', finiteNumber('seed', options.seed, (v) => Number.isInteger(v) && v >= 0 && v < 2 ** 32, 'an integer in [0, 2^32)'));
  set('freezeFeatures', boolean('freezeFeatures', options.freezeFeatures));
  set('unfreezeAfter', integer('unfreezeAfter', options.unfreezeAfter, 0));
  set('featuresLrScale', finiteNumber('featuresLrScale', options.featuresLrScale, (v) => v >= 0, 'a number ≥ 0'));
  set('labelSmoothing', finiteNumber('labelSmoothing', options.labelSmoothing, (v) => v >= 0 && v < 1, 'a number in [0, 1)'));
  set('cropPadding', integer('cropPadding', options.cropPadding, 0));
  set('flip', boolean('flip', options.flip));
  set('photometric', finiteNumber('photometric', options.photometric, (v) => v >= 0 && v < 1, 'a number in [0, 1)'));
  if (options.jpegQuality !== undefined) {
    const q = options.jpegQuality;
    const valid = q === null || (Array.isArray(q) && q.length === 2 && q.every((v) => Number.isInteger(v)) && q[0] >= 1 && q[0] <= q[1] && q[1] <= 100);
    if (!valid) throw new UsageError(`jpegQuality must be null (off) or [min, max] with integers 1 ≤ min ≤ max ≤ 100, got ${describe(q)}`);
    given.jpegQuality = q === null ? null : [q[0], q[1]];
  }
  if (given.unfreezeAfter !== undefined) {
    if (given.freezeFeatures === false) throw new UsageError('unfreezeAfter unfreezes frozen features; it contradicts freezeFeatures: false');
    given.freezeFeatures = true;
  }
  // 'auto' is what a budget does: plan each block's mode. Without a budget there is nothing to plan with.
  const planned = options.memoryMode === 'auto';
  if (planned && options.memoryBudget === undefined) throw new UsageError("memoryMode 'auto' plans the modes to fit memoryBudget; give memoryBudget too");
  const memoryMode = memoryModeFromOptions({ ...options, memoryMode: planned ? undefined : options.memoryMode });
  set('memoryBudget', byteSize('memoryBudget', options.memoryBudget));
  if (options.memoryBudget !== undefined && memoryMode !== undefined) {
    throw new UsageError("memoryBudget chooses the memory mode of each dense block; drop memoryMode (or give 'auto'), or the budget");
  }
  const resume = boolean('resume', options.resume) ?? false;
  const overwrite = boolean('overwrite', options.overwrite) ?? false;
  const progress = boolean('progress', options.progress) ?? false;

  const logger = validateLogger('logger', options.logger) ?? silentLogger;
  const checkHash = boolean('checkHash', options.checkHash) ?? true;
  const allowOversubscribe = boolean('allowOversubscribe', options.allowOversubscribe) ?? false;
  const syncBatchNorm = boolean('syncBatchNorm', options.syncBatchNorm) ?? true;
  const checked: Checked = { given, modelKind: 'variant', memoryMode, resume, overwrite, progress, callbacks: {}, logger, checkHash, allowOversubscribe, syncBatchNorm };
  checked.workers = checkWorkers('workers', options.workers);
  checkModel(options.model, checked);
  checkData(options, checked);
  if (options.pretrained !== undefined) {
    nonEmptyString('pretrained', options.pretrained, 'a torchvision weights file (.safetensors or PyTorch .pth) or a saved tfjs model folder');
    if (checked.modelKind === 'layers') throw new UsageError('pretrained cannot be combined with a tf.LayersModel: load the weights into it yourself');
    given.pretrained = path.resolve(options.pretrained);
  }
  if (options.outDir !== undefined) checked.outDir = path.resolve(nonEmptyString('outDir', options.outDir, 'a folder path')!);
  if (resume && checked.outDir === undefined) throw new UsageError('resume needs outDir, the folder holding the snapshot to continue');
  if (resume && overwrite) throw new UsageError('resume and overwrite contradict each other: resume continues the run in outDir, overwrite replaces it');
  checked.callbacks = checkCallbacks(options.callbacks);
  return checked;
}

/** `model`: a variant name, a createDenseNet configuration (validated here) or a tf.LayersModel. */
function checkModel(model: TrainDenseNetOptions['model'], checked: Checked): void {
  const { given } = checked;
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

}

/** `data` (a folder or datasets), with `valSplit` and `classNames`, which each apply to one kind only. */
function checkData(options: TrainDenseNetOptions, checked: Checked): void {
  const { given } = checked;
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
}

function checkCallbacks(callbacks: unknown): TrainCallbacks {
  if (callbacks === undefined) return {};
  if (typeof callbacks !== 'object' || callbacks === null) throw new UsageError('callbacks must be an object { onBatchEnd?, onEpochEnd? }');
  for (const [key, fn] of Object.entries(callbacks)) {
    if ((key !== 'onBatchEnd' && key !== 'onEpochEnd') || (fn !== undefined && typeof fn !== 'function')) {
      throw new UsageError(`callbacks may hold the functions onBatchEnd and onEpochEnd; got '${key}'`);
    }
  }
  return callbacks as TrainCallbacks;
}
