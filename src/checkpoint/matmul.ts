/**
 * The matrix products of every 1×1 convolution's forward and backward, routed through one place so they take
 * the fast paths: wasm's BatchMatMul is fast only without transposes (12× slower with transposeA), so aᵀ·b
 * uses the wasm backend's chunked kernel and b·Wᵀ transposes the small weight matrix explicitly.
 */
import * as tf from '@tensorflow/tfjs';
import { matMulTransposeAFast } from '../backend/wasm-kernels.js';

/** aᵀ·b for a [K, M] and b [K, N]: the weight gradient of a 1×1 convolution. */
export function matMulTransposeA(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  return matMulTransposeAFast(a, b);
}

/** a·wᵀ for a [M, N] and a small w [K, N]: the input gradient of a 1×1 convolution. */
export function matMulTransposeB(a: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.matMul(a, tf.transpose(w)));
}
