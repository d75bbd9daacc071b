/**
 * aᵀ·b, the weight gradient of every 1×1 convolution. Routed through one function so a backend whose
 * transposed matmul is slow (wasm) can use a faster formulation.
 */
import * as tf from '@tensorflow/tfjs';

export function matMulTransposeA(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  return tf.matMul(a, b, true, false);
}
