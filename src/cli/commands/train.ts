/** `efficient-densenet train`: trains or fine-tunes a DenseNet on an image folder (trainDenseNet). */
import { promises as fs } from 'node:fs';
import { COMPUTING_BACKENDS, initBackend, type BackendName } from '../../backend/index.js';
import { DEFAULT_NUMERICS, NUMERICS, NUMERICS_NAMES, type Numerics } from '../../backend/numerics.js';
import { MIN_IMAGE_SIZE, VARIANT_NAMES, type DenseNetVariant } from '../../layers/config.js';
import {
  BASELINE_MODE,
  DEFAULT_RECOMPUTING_MODE,
  MEMORY_MODE_ALIASES,
  MEMORY_MODES,
  memoryModeList,
  recomputes,
  resolveMemoryModeName,
} from '../../layers/memory-modes.js';
import type { CreateDenseNetOptions } from '../../layers/densenet.js';
import { AUGMENTS, type Augment } from '../../data/dataset.js';
import { OPTIMIZER_NAMES, type OptimizerName } from '../../step/optimizers.js';
import { SCHEDULE_NAMES, type ScheduleName } from '../../train/schedule.js';
import { SMALL_DATA_DEFAULTS, SMALL_DATA_IMAGES } from '../../train/recipe.js';
import { TRAIN_DEFAULTS, trainDenseNet, validateTrainOptions, type TrainDenseNetOptions, type TrainResult } from '../../train/index.js';
import { UsageError } from '../../util/errors.js';
import { silentLogger } from '../../util/logger.js';
import { choice, integer, number, optional, parseBytes, parseCommandArgs } from '../args.js';
import { formatNumber, table } from '../format.js';
import type { CommandIO } from '../command-io.js';


export const TRAIN_HELP = `Usage: efficient-densenet train --data DIR [options]
Trains or fine-tunes a DenseNet classifier on an image folder: DIR/train/<class>/* and DIR/val/<class>/*,
or DIR/<class>/* split per class by --val-split. Progress goes to stderr; the result to stdout.
  --data DIR            the image folder (on --resume, the snapshot's folder by default)
  --model NAME|FILE     ${VARIANT_NAMES.join(' | ')}, or a JSON file holding a DenseNet configuration
                        (growthRate, blockConfig, numInitFeatures, bnSize, dropRate) (default ${TRAIN_DEFAULTS.model})
  --image-size S        square input side ≥ ${MIN_IMAGE_SIZE} (default ${TRAIN_DEFAULTS.imageSize})
  --batch N             batch size (default ${TRAIN_DEFAULTS.batchSize})
  --epochs N            (default ${TRAIN_DEFAULTS.epochs})
  --optimizer O         adam: lr 1e-3, cosine schedule, no weight decay (default; fits a small folder in a few epochs)
                        sgd: the DenseNet paper's Nesterov momentum 0.9, weight decay 1e-4, lr 0.1 ÷ 10 at 50% and 75%
  --lr X                base learning rate (default per optimizer)
  --weight-decay X      coupled L2 weight decay, PyTorch semantics (default 1e-4 for sgd, 0 for adam;
                        5e-4 for sgd in the small-data recipe)
  --label-smoothing E   cross-entropy label smoothing (default 0)
  --schedule S          ${SCHEDULE_NAMES.join(' | ')} (default step for sgd, cosine for adam)
  --augment A           ${AUGMENTS.join(' | ')}: training augmentation. Default: the small-data recipe
                        when DIR has < ${SMALL_DATA_IMAGES} training images (crop + flip + JPEG), else none
  --crop-padding P      zero padding of --augment crop in px (default image size / 8)
  --no-flip             never mirror (when mirroring changes the class: b/d, diagonal/antidiagonal)
  --photometric S       brightness/contrast/saturation jitter in [1-S, 1+S] (default 0)
  --jpeg-quality A-B    re-encode half the training images as JPEG, quality in [A, B], or 'off'
                        (default ${SMALL_DATA_DEFAULTS.jpegQuality.join('-')} small-data, else off)
  --val-split F         validation fraction per class of an unsplit folder (default ${TRAIN_DEFAULTS.valSplit})
  --memory-mode M       ${memoryModeList()}: what backprop keeps and recomputes (default
                        ${DEFAULT_RECOMPUTING_MODE} on wasm, where it is also the fastest, ${BASELINE_MODE} elsewhere);
                        auto with --memory-budget. Aliases: --memory-efficient (= ${DEFAULT_RECOMPUTING_MODE}, or
                        --recompute M), --no-memory-efficient (= ${BASELINE_MODE})
  --memory-budget SIZE  e.g. 4GiB: a memory mode per dense block so that the whole step fits, at the least
                        predicted time (planMemory; instead of a fixed --memory-mode)
  --pretrained PATH     start from torchvision weights — a .safetensors file or a PyTorch checkpoint such as
                        densenet121-a639ec97.pth (read without Python; nothing in it is run) — or a saved
                        tfjs model folder (the classifier is replaced when its number of classes differs)
  --no-check-hash       load a pretrained file whose name's SHA-256 prefix (densenet121-a639ec97.pth)
                        does not match its bytes (checked by default)
  --freeze-features     train only the classifier (the features run in inference mode)
  --unfreeze-after N    with frozen features: unfreeze them after N epochs (implies --freeze-features)
  --features-lr-scale X the features' learning rate as a fraction of the classifier's
                        (default ${TRAIN_DEFAULTS.pretrainedFeaturesLrScale} with --pretrained, else 1)
  --out DIR             snapshot every epoch; best model (model.json), classes.json, history.json,
                        metrics.csv, loss.svg, accuracy.svg and confusion.svg (best epoch)
  --resume              continue from the last snapshot in --out (same result as an uninterrupted run)
  --overwrite           replace the training output already in --out
  --seed N              same seed, same run (default random, reported)
  --backend B           ${COMPUTING_BACKENDS.join(' | ')} (default auto, or EFFICIENT_DENSENET_BACKEND)
  --numerics N          ${NUMERICS_NAMES.map((n) => `${n}: ${NUMERICS[n].summary}`).join('; ')}
                        (default ${DEFAULT_NUMERICS}, or EFFICIENT_DENSENET_NUMERICS; --workers run the same)
  --workers N|auto      data-parallel worker threads, each its own tfjs (wasm, cpu): every batch split into
                        shards, batch norm synchronized, same result as one; auto: up to one per core when
                        each shard holds ≥ 8,192 pixels, fewer if memory is short, logged (default 1).
                        Capped to --batch; refused above the cores, or when the workers' memory does not fit
  --allow-oversubscribe run more --workers than the machine has cores
  --no-sync-batch-norm  with --workers: each worker normalises with its own shard's batch statistics and the
                        gradients are averaged (PyTorch DDP's default: another function than one process)
  --json                print { history, best, classNames, seed } as JSON on stdout
  --verbose             stack traces on failure`;

export const TRAIN_OPTIONS = {
  data: { type: 'string' },
  model: { type: 'string' },
  'image-size': { type: 'string' },
  batch: { type: 'string' },
  epochs: { type: 'string' },
  optimizer: { type: 'string' },
  lr: { type: 'string' },
  'weight-decay': { type: 'string' },
  schedule: { type: 'string' },
  augment: { type: 'string' },
  'crop-padding': { type: 'string' },
  'no-flip': { type: 'boolean' },
  photometric: { type: 'string' },
  'jpeg-quality': { type: 'string' },
  'label-smoothing': { type: 'string' },
  'unfreeze-after': { type: 'string' },
  'features-lr-scale': { type: 'string' },
  'val-split': { type: 'string' },
  'memory-efficient': { type: 'boolean' },
  'no-memory-efficient': { type: 'boolean' },
  'memory-budget': { type: 'string' },
  recompute: { type: 'string' },
  'memory-mode': { type: 'string' },
  pretrained: { type: 'string' },
  'no-check-hash': { type: 'boolean' },
  'freeze-features': { type: 'boolean' },
  out: { type: 'string' },
  resume: { type: 'boolean' },
  overwrite: { type: 'boolean' },
  seed: { type: 'string' },
  backend: { type: 'string' },
  numerics: { type: 'string' },
  workers: { type: 'string' },
  'allow-oversubscribe': { type: 'boolean' },
  'no-sync-batch-norm': { type: 'boolean' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean' },
} as const;

async function readModelOption(value: string | undefined): Promise<DenseNetVariant | CreateDenseNetOptions | undefined> {
  if (value === undefined) return undefined;
  if ((VARIANT_NAMES as string[]).includes(value)) return value as DenseNetVariant;
  if (!value.endsWith('.json')) {
    throw new UsageError(`--model must be one of ${VARIANT_NAMES.join(', ')} or a .json configuration file; got '${value}'`);
  }
  let text: string;
  try {
    text = await fs.readFile(value, 'utf8');
  } catch (error) {
    throw new UsageError(`--model ${value} cannot be read: ${(error as Error).message}`);
  }
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`--model ${value} is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new UsageError(`--model ${value} must hold a JSON object (a DenseNet configuration)`);
  }
  return config as CreateDenseNetOptions;
}

export async function trainCommand(argv: string[], io: CommandIO): Promise<void> {
  const { values } = parseCommandArgs(argv, TRAIN_OPTIONS);
  if (values.help) return io.stdout(TRAIN_HELP);
  if (values.data === undefined && !values.resume) throw new UsageError('--data is required (an image folder: DIR/train + DIR/val, or DIR/<class>/)');
  if (values.resume && values.out === undefined) throw new UsageError('--resume needs --out, the folder holding the snapshot');
  const model = await readModelOption(values.model);
  const imageSize = optional(values['image-size'], (v) => integer(v, 'image-size', { min: MIN_IMAGE_SIZE }));
  const batchSize = optional(values.batch, (v) => integer(v, 'batch'));
  const epochs = optional(values.epochs, (v) => integer(v, 'epochs'));
  const optimizer = optional(values.optimizer, (v) => choice(v, 'optimizer', OPTIMIZER_NAMES, 'adam') as OptimizerName);
  const lr = optional(values.lr, (v) => number(v, 'lr', 0, { min: 0, exclusiveMin: true }));
  const weightDecay = optional(values['weight-decay'], (v) => number(v, 'weight-decay', 0, { min: 0 }));
  const schedule = optional(values.schedule, (v) => choice(v, 'schedule', SCHEDULE_NAMES, 'step') as ScheduleName);
  const augment = optional(values.augment, (v) => choice(v, 'augment', AUGMENTS, 'flip') as Augment);
  const cropPadding = optional(values['crop-padding'], (v) => integer(v, 'crop-padding', { min: 0 }));
  const photometric = optional(values.photometric, (v) => number(v, 'photometric', 0, { min: 0, max: 0.99 }));
  const jpegQuality = optional(values['jpeg-quality'], parseJpegQuality);
  const labelSmoothing = optional(values['label-smoothing'], (v) => number(v, 'label-smoothing', 0, { min: 0, max: 0.99 }));
  const unfreezeAfter = optional(values['unfreeze-after'], (v) => integer(v, 'unfreeze-after', { min: 0 }));
  const featuresLrScale = optional(values['features-lr-scale'], (v) => number(v, 'features-lr-scale', 1, { min: 0 }));
  const valSplit = optional(values['val-split'], (v) => number(v, 'val-split', 0, { min: 0, max: 1, exclusiveMin: true }));
  const recompute = optional(values.recompute, (v) => choice(v, 'recompute', MEMORY_MODES.filter(recomputes), DEFAULT_RECOMPUTING_MODE));
  const memoryMode = optional(values['memory-mode'], (v) => choice(v, 'memory-mode', [...MEMORY_MODES, ...Object.keys(MEMORY_MODE_ALIASES), 'auto'], 'auto'));
  const aliasGiven = values['memory-efficient'] || values['no-memory-efficient'] || recompute !== undefined;
  if (memoryMode !== undefined && aliasGiven) throw new UsageError('--memory-efficient, --no-memory-efficient and --recompute are aliases of --memory-mode; give one of them');
  if (memoryMode === 'auto' && values['memory-budget'] === undefined) throw new UsageError('--memory-mode auto plans the modes to fit --memory-budget; give --memory-budget too');
  const seed = optional(values.seed, (v) => integer(v, 'seed', { min: 0 }));
  const backend = optional(values.backend, (v) => choice(v, 'backend', COMPUTING_BACKENDS, 'auto') as BackendName);
  const numerics = optional(values.numerics, (v) => choice(v, 'numerics', NUMERICS_NAMES, DEFAULT_NUMERICS) as Numerics);
  const workers = optional(values.workers, parseWorkers);
  if (values['memory-efficient'] && values['no-memory-efficient']) throw new UsageError('--memory-efficient and --no-memory-efficient contradict each other');
  if (valSplit === 1) throw new UsageError(`--val-split must be a number > 0 and < 1, got '${values['val-split']}'`);

  const options: TrainDenseNetOptions = {
    data: values.data,
    model,
    imageSize,
    batchSize,
    epochs,
    optimizer,
    lr,
    weightDecay,
    schedule,
    augment,
    cropPadding,
    flip: values['no-flip'] ? false : undefined,
    photometric,
    jpegQuality,
    labelSmoothing,
    unfreezeAfter,
    featuresLrScale,
    valSplit,
    memoryMode: memoryMode === undefined ? undefined : memoryMode === 'auto' ? 'auto' : resolveMemoryModeName(memoryMode),
    memoryEfficient: values['memory-efficient'] ? true : values['no-memory-efficient'] ? false : undefined,
    recompute,
    memoryBudget: optional(values['memory-budget'], (v) => parseBytes(v, 'memory-budget')),
    pretrained: values.pretrained,
    ...(values['no-check-hash'] ? { checkHash: false } : {}),
    freezeFeatures: values['freeze-features'] ? true : undefined,
    outDir: values.out,
    resume: values.resume ?? false,
    overwrite: values.overwrite ?? false,
    seed,
    workers,
    allowOversubscribe: values['allow-oversubscribe'] ? true : undefined,
    ...(values['no-sync-batch-norm'] ? { syncBatchNorm: false } : {}),
    progress: true,
    logger: io.logger,
  };
  // Bad input is reported before the backend loads (and before it logs anything).
  await validateTrainOptions({ ...options, logger: silentLogger });
  await initBackend(backend, { logger: io.logger, ...(numerics !== undefined ? { numerics } : {}) });
  const result = await trainDenseNet(options);
  result.model.dispose();
  if (values.json) {
    const { history, best, classNames } = result;
    io.stdout(JSON.stringify({ history, best, classNames, seed: result.seed }, null, 2));
    return;
  }
  io.stdout(formatResult(result, values.out));
}

function parseWorkers(value: string): number | 'auto' {
  if (value === 'auto') return 'auto';
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1) throw new UsageError(`--workers must be an integer ≥ 1 or 'auto', got '${value}'`);
  return Number(value);
}

function parseJpegQuality(value: string): [number, number] | null {
  if (value === 'off') return null;
  const match = /^(\d+)(?:-(\d+))?$/.exec(value.trim());
  const [lo, hi] = match ? [Number(match[1]), Number(match[2] ?? match[1])] : [NaN, NaN];
  if (!(lo >= 1 && lo <= hi && hi <= 100)) throw new UsageError(`--jpeg-quality must be A-B with 1 ≤ A ≤ B ≤ 100 (e.g. 40-95), or off; got '${value}'`);
  return [lo, hi];
}

function formatResult(result: TrainResult, outDir: string | undefined): string {
  const pct = (v: number | null) => (v === null ? '—' : `${(100 * v).toFixed(1)}%`);
  const rows = result.history.map((m) => [
    String(m.epoch),
    m.lr.toPrecision(3),
    formatNumber(m.trainLoss, 4),
    pct(m.trainAccuracy),
    m.valLoss === null ? '—' : formatNumber(m.valLoss, 4),
    pct(m.valAccuracy),
    formatNumber(m.imagesPerSecond, 1),
    formatNumber(m.seconds, 1),
  ]);
  const lines = [table(['epoch', 'lr', 'train loss', 'train acc', 'val loss', 'val acc', 'images/s', 'seconds'], rows), ''];
  const { best } = result;
  lines.push(
    best.valAccuracy !== null
      ? `best: epoch ${best.epoch}, validation accuracy ${pct(best.valAccuracy)} (loss ${formatNumber(best.valLoss, 4)})`
      : `best: epoch ${best.epoch} (lowest training loss; no validation data)`,
  );
  lines.push(`seed ${result.seed}${outDir !== undefined ? `; best model, snapshot and curves in ${outDir}` : ''}`);
  return lines.join('\n');
}
