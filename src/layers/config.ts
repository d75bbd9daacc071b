/**
 * Every number that defines a DenseNet, in one place (torchvision's `DenseNet.__init__` arguments, in NHWC),
 * and the checks that run before a single tensor is allocated.
 */

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

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0;
}

export function validateRecompute(recompute: unknown): RecomputeMode {
  if (!(RECOMPUTE_MODES as readonly unknown[]).includes(recompute)) {
    throw new Error(`recompute must be 'layer', 'bottleneck' or 'block', got ${JSON.stringify(recompute)}`);
  }
  return recompute as RecomputeMode;
}

/** Validates an input shape [height, width, channels] (NHWC without the batch). */
export function validateInputShape(inputShape: unknown): [number | null, number | null, number] {
  if (!Array.isArray(inputShape) || inputShape.length !== 3) {
    throw new Error(`inputShape must be [height, width, 3] (NHWC without the batch), got ${JSON.stringify(inputShape)}`);
  }
  const [height, width, channels] = inputShape as unknown[];
  if (channels !== 3) {
    throw new Error(`inputShape must have 3 channels (RGB, NHWC), got ${JSON.stringify(channels)}`);
  }
  for (const [label, size] of [['height', height], ['width', width]] as const) {
    if (size === null) continue;
    if (!isPositiveInteger(size) || size < MIN_IMAGE_SIZE) {
      throw new Error(`inputShape ${label} must be an integer ≥ ${MIN_IMAGE_SIZE} or null (variable size), got ${JSON.stringify(size)}`);
    }
  }
  return [height as number | null, width as number | null, 3];
}

/** Fills defaults and checks every field, naming the offending one; throws before any tensor exists. */
export function resolveConfig(options: DenseNetOptions = {}): DenseNetConfig {
  if (options === null || typeof options !== 'object') {
    throw new Error(`DenseNet options must be an object, got ${JSON.stringify(options)}`);
  }
  const known = new Set(Object.keys(DEFAULT_CONFIG));
  for (const key of Object.keys(options)) {
    if (!known.has(key)) {
      throw new Error(`unknown DenseNet option '${key}'; allowed: ${[...known].join(', ')}`);
    }
  }
  const config: DenseNetConfig = { ...DEFAULT_CONFIG, ...stripUndefined(options) };
  const { blockConfig } = config;
  if (!Array.isArray(blockConfig) || blockConfig.length === 0 || !blockConfig.every(isPositiveInteger)) {
    throw new Error(`blockConfig must be a non-empty array of positive integers (layers per dense block), got ${JSON.stringify(blockConfig)}`);
  }
  for (const key of ['growthRate', 'numInitFeatures', 'bnSize', 'numClasses'] as const) {
    if (!isPositiveInteger(config[key])) {
      throw new Error(`${key} must be a positive integer, got ${JSON.stringify(config[key])}`);
    }
  }
  if (typeof config.dropRate !== 'number' || !(config.dropRate >= 0 && config.dropRate < 1)) {
    throw new Error(`dropRate must be a number in [0, 1), got ${JSON.stringify(config.dropRate)}`);
  }
  if (typeof config.memoryEfficient !== 'boolean') {
    throw new Error(`memoryEfficient must be true or false, got ${JSON.stringify(config.memoryEfficient)}`);
  }
  validateRecompute(config.recompute);
  config.inputShape = validateInputShape(config.inputShape);
  if (typeof config.name !== 'string' || config.name.length === 0) {
    throw new Error(`name must be a non-empty string, got ${JSON.stringify(config.name)}`);
  }
  config.blockConfig = [...blockConfig];
  return config;
}

function stripUndefined<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}
