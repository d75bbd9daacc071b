/** A fast override of the wasm BatchMatMul for the transposed and batched cases. */
import * as tf from '@tensorflow/tfjs';
import { wasmGemm } from '../gemm/gemm.js';
import { gemmRoute } from '../gemm/routes.js';
import {
  byteOffsetOf, heap, matMul, offsetOf, release, releaseView, reshape, run, sizeOf, transpose, view, wasmKernel,
  type TensorInfo, type WasmKernelArgs, zeroFill,
} from '../internals.js';

/**
 * BatchMatMul: only the untransposed, batch-1 case reaches XNNPACK. Others
 * are rewritten into it: explicit Transpose for transposed operands (O(n),
 * versus a ~12x slower scalar product), and a loop over batch entries with
 * zero-copy views for batched products. Tiny products keep the original
 * path, where per-call overhead would dominate.
 */
function batchMatMulFast({ inputs, backend, attrs }: WasmKernelArgs<tf.BatchMatMulInputs, tf.BatchMatMulAttrs>): TensorInfo {
  const { a, b } = inputs;
  const { transposeA, transposeB } = attrs;
  const fallback = () => run(backend, tf.BatchMatMul, inputs, attrs);
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return fallback();
  const ra = a.shape.length;
  const rb = b.shape.length;
  if (ra < 2 || rb < 2) return fallback();
  const m = (transposeA ? a.shape[ra - 1] : a.shape[ra - 2]) as number;
  const k = (transposeA ? a.shape[ra - 2] : a.shape[ra - 1]) as number;
  const kB = (transposeB ? b.shape[rb - 1] : b.shape[rb - 2]) as number;
  const nn = (transposeB ? b.shape[rb - 2] : b.shape[rb - 1]) as number;
  const batchA = sizeOf(a.shape.slice(0, -2));
  const batchB = sizeOf(b.shape.slice(0, -2));
  const batch = Math.max(batchA, batchB);
  if (batch === 1 && k === kB && m * k * nn >= 32768 && gemmRoute('matMul') === 'gemm') {
    const shape = [...tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2)), m, nn];
    return ownGemm(backend, a, b, shape, { m, k, n: nn, transposeA, transposeB });
  }
  const simple = !transposeA && !transposeB && batch === 1;
  if (simple || k !== kB || m * k * nn < 32768 || m * nn === 0 || k === 0 ||
      (batchA !== batch && batchA !== 1) || (batchB !== batch && batchB !== 1)) {
    return fallback();
  }
  const outShape = [
    ...tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2)), m, nn,
  ];

  const a3 = reshape(backend, a, [batchA, a.shape[ra - 2] as number, a.shape[ra - 1] as number]);
  const b3 = reshape(backend, b, [batchB, b.shape[rb - 2] as number, b.shape[rb - 1] as number]);
  const aN = transposeA ? transpose(backend, a3, [0, 2, 1]) : a3;
  const bN = transposeB ? transpose(backend, b3, [0, 2, 1]) : b3;
  if (transposeA) release(backend, a3);
  if (transposeB) release(backend, b3);

  let result: TensorInfo;
  if (batch === 1) {
    const a2 = reshape(backend, aN, [m, k]);
    const b2 = reshape(backend, bN, [k, nn]);
    const p = matMul(backend, a2, b2);
    result = reshape(backend, p, outShape);
    release(backend, p, a2, b2, aN, bN);
  } else {
    result = backend.makeOutput(outShape, 'float32');
    for (let i = 0; i < batch; i++) {
      const av = view(backend, aN, (batchA === 1 ? 0 : i) * m * k, [m, k]);
      const bv = view(backend, bN, (batchB === 1 ? 0 : i) * k * nn, [k, nn]);
      const p = matMul(backend, av, bv);
      const h = heap(backend);
      const po = offsetOf(backend, p);
      h.copyWithin(offsetOf(backend, result) + i * m * nn, po, po + m * nn);
      release(backend, p);
      releaseView(backend, av);
      releaseView(backend, bv);
    }
    release(backend, aN, bN);
  }
  return result;
}


/**
 * A batch-1 float32 product on the own GEMM (the recomputing modes' 1×1 convolutions, their input gradients,
 * the classifier): a is read in place in either layout (A(k, m) = a[m, k], or a[k, m] when transposed); the
 * GEMM reads B by rows along n, so a transposed b is transposed first.
 */
function ownGemm(
  backend: WasmKernelArgs<tf.BatchMatMulInputs, tf.BatchMatMulAttrs>['backend'],
  a: TensorInfo,
  b: TensorInfo,
  outShape: number[],
  { m, k, n, transposeA, transposeB }: { m: number; k: number; n: number; transposeA: boolean; transposeB: boolean },
): TensorInfo {
  let bN = b;
  if (transposeB) {
    const b2 = reshape(backend, b, [n, k]);
    bN = transpose(backend, b2, [1, 0]);
    release(backend, b2);
  }
  const out = backend.makeOutput(outShape, 'float32');
  zeroFill(backend, out, m * n);
  wasmGemm(backend.wasm, [{
    a: byteOffsetOf(backend, a), sk: transposeA ? 4 * m : 4, sm: transposeA ? 4 : 4 * k,
    b: byteOffsetOf(backend, bN), ldb: 4 * n, c: byteOffsetOf(backend, out), ldc: 4 * n, m, n, k,
  }]);
  if (transposeB) release(backend, bN);
  return out;
}

/** BatchMatMul for 'wasm' with transposed and batched products on XNNPACK (float32; others fall back). */
export const batchMatMulFastConfig = wasmKernel(tf.BatchMatMul, batchMatMulFast);
