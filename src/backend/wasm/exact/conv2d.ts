/** Conv2D forward with float64 sums (`exact` numerics): 1×1 as one product, others as an implicit GEMM. */
import * as tf from '@tensorflow/tfjs';
import { offsetOf, sizeOf, type TensorInfo, type WasmKernelArgs } from '../internals.js';
import { ExactGemm, ROW_BLOCK } from './exact-gemm.js';
import { convGeometry, gatherForward, isPointwise } from './patches.js';

/** y = conv(x, w), every output one float64 sum over taps and channels, rounded once. Null: not covered. */
export function conv2DExact({ inputs, backend, attrs }: WasmKernelArgs<tf.Conv2DInputs, tf.Conv2DAttrs>): TensorInfo | null {
  const { x, filter } = inputs;
  if (x.dtype !== 'float32' || filter.dtype !== 'float32') return null;
  const g = convGeometry(x.shape, filter.shape, attrs);
  if (g == null) return null;
  const y = backend.makeOutput(g.outShape, 'float32');
  const positions = g.batchSize * g.outHeight * g.outWidth;
  const co = g.outChannels;
  const K = g.filterHeight * g.filterWidth * g.inChannels;
  if (sizeOf(g.outShape) === 0) return y;
  const gemm = new ExactGemm(backend);
  try {
    const w64 = gemm.widened(4 * offsetOf(backend, filter), K, co);
    if (isPointwise(g)) {
      gemm.product(4 * offsetOf(backend, x), false, w64, 4 * offsetOf(backend, y), positions, co, K);
      return y;
    }
    const rows = Math.min(ROW_BLOCK, positions);
    const patch = gemm.alloc(8 * rows * K);
    const c = gemm.alloc(8 * rows * co);
    const xOff = offsetOf(backend, x);
    const yOff = 4 * offsetOf(backend, y);
    for (let p0 = 0; p0 < positions; p0 += rows) {
      const n = Math.min(rows, positions - p0);
      gatherForward(gemm.f32(), gemm.f64(), xOff, g, p0, n, patch >>> 3);
      gemm.zero(c, n * co);
      gemm.gemm(patch, 8 * K, 8, w64, 8 * co, c, 8 * co, n, co, K);
      gemm.round(c, yOff + 4 * p0 * co, n * co);
    }
    return y;
  } finally {
    gemm.dispose();
  }
}
