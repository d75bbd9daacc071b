/** Conv2DBackpropInput with float64 sums (`exact` numerics). */
import * as tf from '@tensorflow/tfjs';
import { offsetOf, sizeOf, type TensorInfo, type WasmKernelArgs } from '../internals.js';
import { ExactGemm, ROW_BLOCK } from './exact-gemm.js';
import { convGeometry, gatherInputGrad, isPointwise } from './patches.js';

/**
 * dx[b, h, w, c] = Σ over taps and output channels of dy·w as one float64 sum, rounded once: the patch matrix
 * of dy (gatherInputGrad) times W'[(i, j, o), c] = w[i, j, c, o]. Null: not covered.
 */
export function conv2DBackpropInputExact(
  { inputs, backend, attrs }: WasmKernelArgs<tf.Conv2DBackpropInputInputs, tf.Conv2DBackpropInputAttrs>,
): TensorInfo | null {
  const { dy, filter } = inputs;
  if (dy.dtype !== 'float32' || filter.dtype !== 'float32') return null;
  const g = convGeometry(attrs.inputShape, filter.shape, attrs);
  if (g == null) return null;
  const dx = backend.makeOutput([...attrs.inputShape], 'float32');
  if (sizeOf(attrs.inputShape) === 0) return dx;
  const { inChannels: ci, outChannels: co, filterHeight: fh, filterWidth: fw } = g;
  const positions = g.batchSize * g.inHeight * g.inWidth;
  const K = fh * fw * co;
  const gemm = new ExactGemm(backend);
  try {
    const wT = gemm.alloc(8 * K * ci);
    {
      const h = gemm.f32();
      const d = gemm.f64();
      const src = offsetOf(backend, filter);
      const dst = wT >>> 3;
      for (let t = 0; t < fh * fw; t++) {
        for (let c = 0; c < ci; c++) {
          for (let o = 0; o < co; o++) d[dst + (t * co + o) * ci + c] = h[src + (t * ci + c) * co + o] as number;
        }
      }
    }
    if (isPointwise(g)) {
      gemm.product(4 * offsetOf(backend, dy), false, wT, 4 * offsetOf(backend, dx), positions, ci, co);
      return dx;
    }
    const rows = Math.min(ROW_BLOCK, positions);
    const patch = gemm.alloc(8 * rows * K);
    const c = gemm.alloc(8 * rows * ci);
    const dyOff = offsetOf(backend, dy);
    const dxOff = 4 * offsetOf(backend, dx);
    for (let p0 = 0; p0 < positions; p0 += rows) {
      const n = Math.min(rows, positions - p0);
      gatherInputGrad(gemm.f32(), gemm.f64(), dyOff, g, p0, n, patch >>> 3);
      gemm.zero(c, n * ci);
      gemm.gemm(patch, 8 * K, 8, wT, 8 * ci, c, 8 * ci, n, ci, K);
      gemm.round(c, dxOff + 4 * p0 * ci, n * ci);
    }
    return dx;
  } finally {
    gemm.dispose();
  }
}
