/**
 * torchvision's initialisation: Kaiming-normal conv kernels (std √(2/fan_in), a plain normal — tfjs's
 * heNormal is truncated and rescaled, which is not the same distribution) and PyTorch's default Linear init.
 */
import * as tf from '@tensorflow/tfjs';

export type Initializer = ReturnType<typeof tf.initializers.zeros>;

/** Derives distinct, reproducible seeds for the weights of one layer; undefined stays unseeded. */
export function seedFor(seed: number | undefined, offset: number): number | undefined {
  return seed === undefined ? undefined : seed * 1_000_003 + offset;
}

export function kaimingNormal(shape: number[], seed?: number): Initializer {
  const fanIn = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  return tf.initializers.randomNormal({ mean: 0, stddev: Math.sqrt(2 / fanIn), seed });
}

/** PyTorch's `nn.Linear` weight init: U(−1/√fan_in, 1/√fan_in). */
export function linearUniform(fanIn: number, seed?: number): Initializer {
  const bound = 1 / Math.sqrt(fanIn);
  return tf.initializers.randomUniform({ minval: -bound, maxval: bound, seed });
}
