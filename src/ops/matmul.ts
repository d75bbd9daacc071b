/**
 * The matrix products of every 1×1 convolution's backward, routed through one place so they take fast
 * paths and dispatch the same kernels on every JavaScript backend (so `meta` predicts them to the byte):
 * - aᵀ·b (the weight gradient) is the filter gradient of a 1×1 convolution over a 1×K image — on wasm a
 *   chunked kernel; wasm's transposeA product is 12× slower than its plain one. TensorFlow's native
 *   transposed product is fast, so the tensorflow backend uses it directly; so does webgpu, whose filter
 *   gradient is one GPU thread per weight looping over all K positions (untiled), while its matMul reads
 *   the transposed operand in its tiled program. (Same buffers either way: one [M, N] output; meta
 *   predicts webgpu's step to the byte with the filter-gradient route.)
 * - a·wᵀ (the input gradient) transposes the small weight matrix explicitly instead of using transposeB.
 */
import * as tf from '@tensorflow/tfjs';
import { backendTraits } from '../backend/traits.js';
import { conv2dBackpropFilter } from './kernels.js';

/** aᵀ·b for a [K, M] and b [K, N]: the weight gradient of a 1×1 convolution. */
export function matMulTransposeA(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  if (backendTraits().transposedMatMul === 'matmul') return tf.matMul(a, b, true, false);
  const [k, m] = a.shape;
  const n = b.shape[1];
  return tf.tidy(() => {
    const x = tf.reshape(a, [1, 1, k, m]) as tf.Tensor4D;
    const dy = tf.reshape(b, [1, 1, k, n]) as tf.Tensor4D;
    return tf.reshape(conv2dBackpropFilter(x, dy, [1, 1, m, n], 1, 'valid'), [m, n]) as tf.Tensor2D;
  });
}

/** a·wᵀ for a [M, N] and a small w [K, N]: the input gradient of a 1×1 convolution. */
export function matMulTransposeB(a: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.matMul(a, tf.transpose(w)));
}
