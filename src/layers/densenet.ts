/**
 * DenseNet builders (Huang et al., arXiv 1608.06993) with torchvision's architecture, as `tf.LayersModel`s:
 * stem → (dense block → transition)* → dense block → final BN-ReLU-pool → linear classifier (logits).
 */
import * as tf from '@tensorflow/tfjs';
import { resolveConfig, VARIANTS, type DenseNetConfig, type DenseNetOptions, type DenseNetVariant } from './config.js';
import { DenseBlock } from './dense-block.js';
import { FinalNorm } from './head.js';
import { linearUniform, seedFor } from './initializers.js';
import { Stem } from './stem.js';
import { Transition } from './transition.js';
import { UsageError } from '../util/errors.js';
import { integer } from '../util/validate.js';

export interface CreateDenseNetOptions extends DenseNetOptions {
  /** Seed for weight initialisation (same seed, same weights); unseeded when absent. */
  seed?: number;
}

/** Builds a DenseNet from a configuration; every field is validated before any tensor is allocated. */
export function createDenseNet(options: CreateDenseNetOptions = {}): tf.LayersModel {
  const { seed, ...rest } = options ?? {};
  integer('seed', seed, Number.MIN_SAFE_INTEGER);
  const config = resolveConfig(rest);
  return buildDenseNet(config, seed);
}

function buildDenseNet(config: DenseNetConfig, seed: number | undefined): tf.LayersModel {
  const mode = { memoryMode: config.memoryMode };
  const input = tf.input({ shape: config.inputShape, name: 'images' });
  let x = new Stem({ name: 'stem', filters: config.numInitFeatures, ...mode, seed: seedFor(seed, 1) }).apply(input) as tf.SymbolicTensor;
  let channels = config.numInitFeatures;
  config.blockConfig.forEach((numLayers, i) => {
    x = new DenseBlock({
      name: `denseblock${i + 1}`,
      numLayers,
      growthRate: config.growthRate,
      bnSize: config.bnSize,
      dropRate: config.dropRate,
      ...mode,
      seed: seedFor(seed, 100 + i),
    }).apply(x) as tf.SymbolicTensor;
    channels += numLayers * config.growthRate;
    if (i !== config.blockConfig.length - 1) {
      channels = Math.floor(channels / 2);
      x = new Transition({ name: `transition${i + 1}`, outputChannels: channels, ...mode, seed: seedFor(seed, 200 + i) }).apply(x) as tf.SymbolicTensor;
    }
  });
  x = new FinalNorm({ name: 'norm5', ...mode }).apply(x) as tf.SymbolicTensor;
  const logits = tf.layers
    .dense({
      units: config.numClasses,
      name: 'classifier',
      kernelInitializer: linearUniform(channels, seedFor(seed, 300)),
      biasInitializer: 'zeros',
    })
    .apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: logits, name: config.name });
}

/** Options of the named builders: the architecture is fixed, the rest is the caller's. */
export type VariantOptions = Omit<CreateDenseNetOptions, 'growthRate' | 'blockConfig' | 'numInitFeatures'>;

function variant(name: DenseNetVariant, options: VariantOptions = {}): tf.LayersModel {
  for (const fixed of ['growthRate', 'blockConfig', 'numInitFeatures'] as const) {
    if (options && fixed in options) {
      throw new UsageError(`${name}: ${fixed} is fixed by the architecture; use createDenseNet for a custom configuration`);
    }
  }
  return createDenseNet({ name, ...options, ...VARIANTS[name] });
}

/** DenseNet-121 (k=32, blocks 6-12-24-16): 7,978,856 trainable parameters at 1000 classes. */
export const densenet121 = (options?: VariantOptions) => variant('densenet121', options);
/** DenseNet-161 (k=48, blocks 6-12-36-24, stem 96): 28,681,000 trainable parameters at 1000 classes. */
export const densenet161 = (options?: VariantOptions) => variant('densenet161', options);
/** DenseNet-169 (k=32, blocks 6-12-32-32): 14,149,480 trainable parameters at 1000 classes. */
export const densenet169 = (options?: VariantOptions) => variant('densenet169', options);
/** DenseNet-201 (k=32, blocks 6-12-48-32): 20,013,928 trainable parameters at 1000 classes. */
export const densenet201 = (options?: VariantOptions) => variant('densenet201', options);

export const BUILDERS: Record<DenseNetVariant, (options?: VariantOptions) => tf.LayersModel> = {
  densenet121,
  densenet161,
  densenet169,
  densenet201,
};

/** The side of a model's square input, or null when it takes any size (or a non-square one). */
export function inputImageSize(model: tf.LayersModel): number | null {
  const shape = model.inputs[0]?.shape;
  return shape && typeof shape[1] === 'number' && shape[1] === shape[2] ? shape[1] : null;
}
