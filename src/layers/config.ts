/**
 * Every number that defines a DenseNet, in one place (torchvision's `DenseNet.__init__` arguments, in NHWC),
 * and the checks that run before a single tensor is allocated.
 */
import { UsageError } from '../util/errors.js';
import { boolean, finiteNumber, integer, knownKeys, nonEmptyString, plainObject, withoutUndefined } from '../util/validate.js';

/** How a dense layer trades compute for memory during backprop. */
export type RecomputeMode = 'layer' | 'bottleneck' | 'block';

/**
 * The resolved memory strategy of a layer:
 * - `naive`: concatenate → BN → ReLU → 1×1 conv with every intermediate kept for backprop (quadratic).
 * - `bottleneck`: torchvision's `memory_efficient=True`: the concat-BN-ReLU-1×1 bottleneck keeps only its inputs.
 * - `layer`: only each dense layer's 1×1 output and new features are kept; every BN/ReLU is recomputed.
 * - `block`: only each dense block's output (and the network input) is kept; the 1×1 outputs and the stem
 *   convolution are recomputed too (one extra 1×1 convolution per dense layer, one extra 7×7 convolution).
 */
export type MemoryMode = 'naive' | RecomputeMode;

/** Every memory mode, the baseline first. */
export const MEMORY_MODES: readonly MemoryMode[] = ['naive', 'bottleneck', 'layer', 'block'];

export const RECOMPUTE_MODES: readonly RecomputeMode[] = ['layer', 'bottleneck', 'block'];

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
  /** Recompute during backprop instead of storing intermediates. */
  memoryEfficient: boolean;
  /** What memory-efficient mode recomputes: whole dense layers (default), whole dense blocks, or torchvision's bottleneck only. */
  recompute: RecomputeMode;
  /** Input shape in NHWC without the batch: [height, width, 3]; height/width may be null for variable size. */
  inputShape: [number | null, number | null, number];
  /** Model name (used by tfjs for the model and in saved artifacts). */
  name: string;
}

export type DenseNetOptions = Partial<DenseNetConfig>;

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
  memoryEfficient: false,
  recompute: 'layer',
  inputShape: [224, 224, 3],
  name: 'densenet',
};

/** The smallest spatial size that survives the stem and the three transitions with at least one pixel. */
export const MIN_IMAGE_SIZE = 32;

export function isVariant(name: string): name is DenseNetVariant {
  return Object.prototype.hasOwnProperty.call(VARIANTS, name);
}

export function memoryModeOf(memoryEfficient: boolean, recompute: RecomputeMode): MemoryMode {
  return memoryEfficient ? recompute : 'naive';
}

/** The model options that give a memory mode (the inverse of memoryModeOf). */
export function memoryModeOptions(mode: MemoryMode): { memoryEfficient: boolean; recompute: RecomputeMode } {
  return mode === 'naive' ? { memoryEfficient: false, recompute: 'layer' } : { memoryEfficient: true, recompute: mode };
}

export function validateRecompute(recompute: unknown): RecomputeMode {
  if (!(RECOMPUTE_MODES as readonly unknown[]).includes(recompute)) {
    throw new UsageError(`recompute must be 'layer', 'bottleneck' or 'block', got ${JSON.stringify(recompute)}`);
  }
  return recompute as RecomputeMode;
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
  knownKeys('DenseNet', plainObject('DenseNet options', options), Object.keys(DEFAULT_CONFIG));
  const config: DenseNetConfig = { ...DEFAULT_CONFIG, ...withoutUndefined(options) };
  const { blockConfig } = config;
  if (!Array.isArray(blockConfig) || blockConfig.length === 0 || !blockConfig.every((n) => Number.isInteger(n) && n > 0)) {
    throw new UsageError(`blockConfig must be a non-empty array of positive integers (layers per dense block), got ${JSON.stringify(blockConfig)}`);
  }
  for (const key of ['growthRate', 'numInitFeatures', 'bnSize', 'numClasses'] as const) integer(key, config[key]);
  validateDropRate(config.dropRate);
  boolean('memoryEfficient', config.memoryEfficient);
  validateRecompute(config.recompute);
  config.inputShape = validateInputShape(config.inputShape);
  nonEmptyString('name', config.name);
  config.blockConfig = [...blockConfig];
  return config;
}
