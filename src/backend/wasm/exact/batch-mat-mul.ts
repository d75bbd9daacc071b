/** BatchMatMul with float64 sums (`exact` numerics). */
import * as tf from '@tensorflow/tfjs';
import { offsetOf, sizeOf, type TensorInfo, type WasmKernelArgs } from '../internals.js';
import { ExactGemm } from './exact-gemm.js';

/**
 * op(a)·op(b) per batch entry (broadcasting a batch of one), each output one float64 sum rounded once.
 * Both operands are widened to float64 in scratch (a transposed B transposed on the way: the GEMM reads B's
 * rows as vectors); A a block of rows at a time. Null: not covered.
 */
export function batchMatMulExact({ inputs, backend, attrs }: WasmKernelArgs<tf.BatchMatMulInputs, tf.BatchMatMulAttrs>): TensorInfo | null {
  const { a, b } = inputs;
  const { transposeA, transposeB } = attrs;
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return null;
  const ra = a.shape.length;
  const rb = b.shape.length;
  if (ra < 2 || rb < 2) return null;
  const m = (transposeA ? a.shape[ra - 1] : a.shape[ra - 2]) as number;
  const k = (transposeA ? a.shape[ra - 2] : a.shape[ra - 1]) as number;
  const kB = (transposeB ? b.shape[rb - 1] : b.shape[rb - 2]) as number;
  const n = (transposeB ? b.shape[rb - 2] : b.shape[rb - 1]) as number;
  const batchA = sizeOf(a.shape.slice(0, -2));
  const batchB = sizeOf(b.shape.slice(0, -2));
  const batch = Math.max(batchA, batchB);
  if (k !== kB || (batchA !== batch && batchA !== 1) || (batchB !== batch && batchB !== 1)) return null;
  const outShape = [...tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2)), m, n];
  const out = backend.makeOutput(outShape, 'float32');
  if (m * n === 0) return out;
  if (k === 0) {
    new Float32Array(backend.wasm.HEAPU8.buffer).fill(0, offsetOf(backend, out), offsetOf(backend, out) + m * n * batch);
    return out;
  }
  const gemm = new ExactGemm(backend);
  try {
    const b64 = gemm.alloc(8 * k * n);
    for (let t = 0; t < batch; t++) {
      if (t === 0 || batchB !== 1) {
        const bAt = offsetOf(backend, b) + (batchB === 1 ? 0 : t) * k * n;
        if (transposeB) {
          const h = gemm.f32();
          const d = gemm.f64();
          const dst = b64 >>> 3;
          for (let j = 0; j < n; j++) for (let kk = 0; kk < k; kk++) d[dst + kk * n + j] = h[bAt + j * k + kk] as number;
        } else {
          gemm.promoteRows(4 * bAt, 4 * n, b64, 8 * n, k, n);
        }
      }
      const aAt = 4 * (offsetOf(backend, a) + (batchA === 1 ? 0 : t) * m * k);
      gemm.product(aAt, transposeA, b64, 4 * (offsetOf(backend, out) + t * m * n), m, n, k);
    }
    return out;
  } finally {
    gemm.dispose();
  }
}
