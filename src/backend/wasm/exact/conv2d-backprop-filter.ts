/** Conv2DBackpropFilter with float64 sums (`exact` numerics). */
import * as tf from '@tensorflow/tfjs';
import { offsetOf, sizeOf, type TensorInfo, type WasmKernelArgs } from '../internals.js';
import { ExactGemm, ROW_BLOCK } from './exact-gemm.js';
import { convGeometry, gatherForward, isPointwise } from './patches.js';

/**
 * dW[(i, j, c), o] = Σ over all output positions of patch·dy — patchᵀ·dy, read transposed in place — as one
 * float64 sum per weight across every block of positions, rounded once at the end. Null: not covered.
 */
export function conv2DBackpropFilterExact(
  { inputs, backend, attrs }: WasmKernelArgs<tf.Conv2DBackpropFilterInputs, tf.Conv2DBackpropFilterAttrs>,
): TensorInfo | null {
  const { x, dy } = inputs;
  if (x.dtype !== 'float32' || dy.dtype !== 'float32') return null;
  const g = convGeometry(x.shape, attrs.filterShape, attrs);
  if (g == null) return null;
  const dw = backend.makeOutput([...attrs.filterShape], 'float32');
  const co = g.outChannels;
  const K = g.filterHeight * g.filterWidth * g.inChannels;
  const positions = g.batchSize * g.outHeight * g.outWidth;
  if (sizeOf(attrs.filterShape) === 0) return dw;
  const gemm = new ExactGemm(backend);
  try {
    const c = gemm.alloc(8 * K * co);
    gemm.zero(c, K * co);
    const rows = Math.min(2 * ROW_BLOCK, positions);
    const patch = gemm.alloc(8 * rows * K);
    const dy64 = gemm.alloc(8 * rows * co);
    const pointwise = isPointwise(g);
    const x32 = 4 * offsetOf(backend, x);
    const dy32 = 4 * offsetOf(backend, dy);
    for (let p0 = 0; p0 < positions; p0 += rows) {
      const n = Math.min(rows, positions - p0);
      if (pointwise) {
        gemm.promoteRows(x32 + 4 * p0 * K, 4 * K, patch, 8 * K, n, K);
      } else {
        gatherForward(gemm.f32(), gemm.f64(), x32 >>> 2, g, p0, n, patch >>> 3);
      }
      gemm.promoteRows(dy32 + 4 * p0 * co, 4 * co, dy64, 8 * co, n, co);
      // patchᵀ·dy: A(i, k) = patch[k, i], read transposed in place.
      gemm.gemm(patch, 8, 8 * K, dy64, 8 * co, c, 8 * co, K, co, n);
    }
    gemm.round(c, 4 * offsetOf(backend, dw), K * co);
    return dw;
  } finally {
    gemm.dispose();
  }
}
