/** A fast override of the wasm MaxPoolGrad. */
import * as tf from '@tensorflow/tfjs';
import { heap, offsetOf, run, wasmKernel, type Shape4, type TensorInfo, type WasmKernelArgs } from '../internals.js';

/**
 * MaxPoolGrad: the wasm kernel runs ~35x slower than MaxPool. This pass
 * re-finds each window's first maximum (strictly greater, like the cpu
 * backend) channel-vectorised over the contiguous NHWC channel axis, and
 * routes dy there.
 */
function maxPoolGradFast({ inputs, backend, attrs }: WasmKernelArgs<tf.MaxPoolGradInputs, tf.MaxPoolGradAttrs>): TensorInfo {
  const { dy, input } = inputs;
  const { filterSize, strides, pad, dimRoundingMode } = attrs;
  if (dy.dtype !== 'float32' || input.dtype !== 'float32') {
    return run(backend, tf.MaxPoolGrad, inputs, attrs);
  }
  const info = tf.backend_util.computePool2DInfo(
    input.shape as Shape4, filterSize, strides, 1, pad, dimRoundingMode);
  const { batchSize: n, inHeight: hIn, inWidth: wIn, inChannels: c, outHeight: oh, outWidth: ow,
    strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw, padInfo } = info;

  const dx = backend.makeOutput(input.shape, 'float32');
  const h = heap(backend);
  const xOff = offsetOf(backend, input);
  const dyOff = offsetOf(backend, dy);
  const dxOff = offsetOf(backend, dx);
  h.fill(0, dxOff, dxOff + n * hIn * wIn * c);
  const best = new Float32Array(c);
  const where = new Int32Array(c);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < oh; y++) {
      const r0 = y * sh - padInfo.top;
      const rLo = Math.max(0, r0);
      const rHi = Math.min(hIn, r0 + fh);
      for (let xo = 0; xo < ow; xo++) {
        const c0 = xo * sw - padInfo.left;
        const cLo = Math.max(0, c0);
        const cHi = Math.min(wIn, c0 + fw);
        best.fill(Number.NEGATIVE_INFINITY);
        where.fill(-1);
        for (let rr = rLo; rr < rHi; rr++) {
          for (let cc = cLo; cc < cHi; cc++) {
            const base = ((b * hIn + rr) * wIn + cc) * c;
            for (let d = 0; d < c; d++) {
              const v = h[xOff + base + d] as number;
              if (v > (best[d] as number)) {
                best[d] = v;
                where[d] = base + d;
              }
            }
          }
        }
        const dyBase = dyOff + ((b * oh + y) * ow + xo) * c;
        for (let d = 0; d < c; d++) {
          const w = where[d] as number;
          if (w >= 0) h[dxOff + w] = (h[dxOff + w] as number) + (h[dyBase + d] as number);
        }
      }
    }
  }
  return dx;
}


/** MaxPoolGrad for 'wasm', channel-vectorised (float32; other dtypes fall back). */
export const maxPoolGradFastConfig = wasmKernel(tf.MaxPoolGrad, maxPoolGradFast);
