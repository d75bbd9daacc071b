/**
 * Every number that defines a DenseNet, in one place (torchvision's `DenseNet.__init__` arguments, in NHWC),
 * and the checks that run before a single tensor is allocated.
 */
import { UsageError } from '../util/errors.js';
import { boolean, finiteNumber, integer, knownKeys, nonEmptyString, plainObject, withoutUndefined } from '../util/validate.js';
import {
  BASELINE_MODE,
  DEFAULT_RECOMPUTING_MODE,
  MEMORY_MODE_ALIASES,
  memoryModeList,
  recomputes,
  resolveMemoryModeName,
  type MemoryMode,
} from './memory-modes.js';

export { MEMORY_MODES, type MemoryMode } from './memory-modes.js';

export interface DenseNetConfig {
  /** Feature maps each dense layer adds (k in the paper). */
  growthRate: number;
  /** Number of dense layers in each dense block. */
  blockConfig: number[];
  /** Channels produced by the 7×7 stem convolution. */
  numInitFeatures: number;
  /** Bottleneck width multiplier: the 1×1 conv produces bnSize·growthRate channels. */
  bnSize: number;
  /** Dropout rate applied to each dense layer's new features during training. */
  dropRate: number;
  /** Output classes of the linear classifier. */
  numClasses: number;
  /**
   * What backprop keeps and what it recomputes (memory-modes.ts): 'naive' keeps everything (torchvision's
   * default), 'bottleneck' is torchvision's `memory_efficient=True`, 'layer' and 'block' keep less.
   */
  memoryMode: MemoryMode;
  /** Input shape in NHWC without the batch: [height, width, 3]; height/width may be null for variable size. */
  inputShape: [number | null, number | null, number];
  /** Model name (used by tfjs for the model and in saved artifacts). */
  name: string;
}

/**
 * The options of a DenseNet: any field of the config, plus the older spelling of the memory mode, kept as an
 * alias: `memoryEfficient: true` is `memoryMode: 'layer'` (or `recompute`'s mode when given), `false` the
 * baseline.
 */
export type DenseNetOptions = Partial<DenseNetConfig> & MemoryModeAliases;

/** The pre-`memoryMode` spelling (still accepted): a switch and what it recomputes. */
export interface MemoryModeAliases {
  /** Alias: true → `memoryMode` = `recompute` ?? 'layer'; false → 'naive'. */
  memoryEfficient?: boolean;
  /** Alias: the recomputing mode `memoryEfficient: true` selects. */
  recompute?: MemoryMode;
}

export type DenseNetVariant = 'densenet121' | 'densenet161' | 'densenet169' | 'densenet201';

/** torchvision's four ImageNet DenseNets: (growth rate, stem width, block sizes). */
export const VARIANTS: Record<DenseNetVariant, Pick<DenseNetConfig, 'growthRate' | 'numInitFeatures' | 'blockConfig'>> = {
  densenet121: { growthRate: 32, numInitFeatures: 64, blockConfig: [6, 12, 24, 16] },
  densenet161: { growthRate: 48, numInitFeatures: 96, blockConfig: [6, 12, 36, 24] },
  densenet169: { growthRate: 32, numInitFeatures: 64, blockConfig: [6, 12, 32, 32] },
  densenet201: { growthRate: 32, numInitFeatures: 64, blockConfig: [6, 12, 48, 32] },
};

export const VARIANT_NAMES = Object.keys(VARIANTS) as DenseNetVariant[];

export const DEFAULT_CONFIG: DenseNetConfig = {
  ...VARIANTS.densenet121,
  bnSize: 4,
  dropRate: 0,
  numClasses: 1000,
  memoryMode: BASELINE_MODE,
  inputShape: [224, 224, 3],
  name: 'densenet',
};

/** The smallest spatial size that survives the stem and the three transitions with at least one pixel. */
export const MIN_IMAGE_SIZE = 32;

/** Checks a memory mode (or an alias of one), naming the option; returns the mode. */
export function validateMemoryMode(mode: unknown, name = 'memoryMode'): MemoryMode {
  const resolved = typeof mode === 'string' ? resolveMemoryModeName(mode) : undefined;
  if (resolved === undefined) {
    throw new UsageError(`${name} must be one of ${memoryModeList(', ')} (or ${Object.keys(MEMORY_MODE_ALIASES).join(', ')}), got ${JSON.stringify(mode)}`);
  }
  return resolved;
}

/**
 * The memory mode from the options' `memoryMode` and its aliases (`memoryEfficient`, `recompute`); undefined
 * when none is given. Giving `memoryMode` with an alias that disagrees is an error.
 */
export function memoryModeFromOptions(options: { memoryMode?: unknown; memoryEfficient?: unknown; recompute?: unknown }, owner = ''): MemoryMode | undefined {
  const label = (key: string) => (owner ? `${owner}: ${key}` : key);
  const efficient = boolean(label('memoryEfficient'), options.memoryEfficient);
  const recompute = options.recompute === undefined ? undefined : validateMemoryMode(options.recompute, label('recompute'));
  if (recompute !== undefined && !recomputes(recompute)) throw new UsageError(`${label('recompute')} must name a recomputing mode, got ${JSON.stringify(options.recompute)}`);
  const fromAliases = efficient === undefined ? recompute : efficient ? (recompute ?? DEFAULT_RECOMPUTING_MODE) : BASELINE_MODE;
  if (options.memoryMode === undefined) return fromAliases;
  const mode = validateMemoryMode(options.memoryMode, label('memoryMode'));
  if (fromAliases !== undefined && fromAliases !== mode) {
    throw new UsageError(`${label('memoryMode')} '${mode}' contradicts memoryEfficient/recompute (${fromAliases}); give memoryMode alone`);
  }
  return mode;
}

export function validateDropRate(dropRate: unknown, name = 'dropRate'): number {
  return finiteNumber(name, dropRate, (v) => v >= 0 && v < 1, 'a number in [0, 1)') as number;
}

/** Validates an input shape [height, width, channels] (NHWC without the batch). */
export function validateInputShape(inputShape: unknown): [number | null, number | null, number] {
  if (!Array.isArray(inputShape) || inputShape.length !== 3) {
    throw new UsageError(`inputShape must be [height, width, 3] (NHWC without the batch), got ${JSON.stringify(inputShape)}`);
  }
  const [height, width, channels] = inputShape as unknown[];
  if (channels !== 3) {
    throw new UsageError(`inputShape must have 3 channels (RGB, NHWC), got ${JSON.stringify(channels)}`);
  }
  for (const [label, size] of [['height', height], ['width', width]] as const) {
    if (size === null) continue;
    if (typeof size !== 'number' || !Number.isInteger(size) || size < MIN_IMAGE_SIZE) {
      throw new UsageError(`inputShape ${label} must be an integer ≥ ${MIN_IMAGE_SIZE} or null (variable size), got ${JSON.stringify(size)}`);
    }
  }
  return [height as number | null, width as number | null, 3];
}

/** Fills defaults and checks every field, naming the offending one; throws before any tensor exists. */
export function resolveConfig(options: DenseNetOptions = {}): DenseNetConfig {
  knownKeys('DenseNet', plainObject('DenseNet options', options), [...Object.keys(DEFAULT_CONFIG), 'memoryEfficient', 'recompute']);
  const { memoryEfficient, recompute, ...rest } = options;
  const memoryMode = memoryModeFromOptions({ memoryMode: rest.memoryMode, memoryEfficient, recompute });
  const config: DenseNetConfig = { ...DEFAULT_CONFIG, ...withoutUndefined(rest), ...(memoryMode ? { memoryMode } : {}) };
  const { blockConfig } = config;
  if (!Array.isArray(blockConfig) || blockConfig.length === 0 || !blockConfig.every((n) => Number.isInteger(n) && n > 0)) {
    throw new UsageError(`blockConfig must be a non-empty array of positive integers (layers per dense block), got ${JSON.stringify(blockConfig)}`);
  }
  for (const key of ['growthRate', 'numInitFeatures', 'bnSize', 'numClasses'] as const) integer(key, config[key]);
  validateDropRate(config.dropRate);
  config.inputShape = validateInputShape(config.inputShape);
  nonEmptyString('name', config.name);
  config.blockConfig = [...blockConfig];
  return config;
}
