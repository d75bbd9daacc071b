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
    gemm.zero64(c, K * co);
    if (isPointwise(g)) {
      gemm.gemm(4 * offsetOf(backend, x), 4, 4 * K, 4 * offsetOf(backend, dy), 4 * co, c, 8 * co, K, co, positions);
    } else {
      const rows = Math.min(ROW_BLOCK, positions);
      const patch = gemm.alloc(4 * rows * K);
      const xOff = offsetOf(backend, x);
      const dyOff = 4 * offsetOf(backend, dy);
      for (let p0 = 0; p0 < positions; p0 += rows) {
        const n = Math.min(rows, positions - p0);
        gatherForward(gemm.f32(), xOff, g, p0, n, patch >>> 2);
        gemm.gemm(patch, 4, 4 * K, dyOff + 4 * p0 * co, 4 * co, c, 8 * co, K, co, n);
      }
    }
    gemm.round(c, 4 * offsetOf(backend, dw), K * co);
    return dw;
  } finally {
    gemm.dispose();
  }
}
