import * as tf from '@tensorflow/tfjs';
import { createDenseNet, type CreateDenseNetOptions } from '../../src/layers/index.js';
import { MEMORY_MODES, type MemoryMode } from '../../src/layers/config.js';

export const MODES: readonly MemoryMode[] = MEMORY_MODES;

/** The model options of a memory mode. */
export const modeOptions = (memoryMode: MemoryMode): { memoryMode: MemoryMode } => ({ memoryMode });

/** A DenseNet small enough for the cpu backend: two blocks, a transition, 32×32 input. */
export function tinyDenseNet(mode: MemoryMode, overrides: CreateDenseNetOptions = {}): tf.LayersModel {
  return createDenseNet({
    growthRate: 4,
    blockConfig: [2, 3],
    numInitFeatures: 8,
    bnSize: 2,
    numClasses: 3,
    inputShape: [32, 32, 3],
    seed: 7,
    ...modeOptions(mode),
    ...overrides,
  });
}

/**
 * Gives every BatchNorm non-trivial parameters and running statistics (torchvision's init leaves them at
 * γ=1, β=0, which makes some gradients vanish by BN's scale invariance and hides errors).
 */
export function perturbNorms(model: tf.LayersModel, seed: number): tf.LayersModel {
  let offset = 0;
  for (const weight of model.weights) {
    const name = weight.originalName;
    const shape = weight.shape as number[];
    const s = seed * 1000 + offset++;
    if (name.endsWith('/gamma') || name.endsWith('/moving_variance')) weight.write(tf.randomUniform(shape, 0.5, 1.5, 'float32', s));
    else if (name.endsWith('/beta') || name.endsWith('/moving_mean')) weight.write(tf.randomNormal(shape, 0, 0.2, 'float32', s));
  }
  return model;
}
