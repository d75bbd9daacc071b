/** A fast override of the wasm AvgPoolGrad. */
import * as tf from '@tensorflow/tfjs';
import { heap, offsetOf, run, wasmKernel, type Shape4, type TensorInfo, type WasmKernelArgs } from '../internals.js';

/**
 * AvgPoolGrad: same semantics as the cpu backend (every window position
 * weighs 1/(fh·fw), padding included), scattered channel-vectorised.
 */
function avgPoolGradFast({ inputs, backend, attrs }: WasmKernelArgs<tf.AvgPoolGradInputs, tf.AvgPoolGradAttrs>): TensorInfo {
  const { dy, input } = inputs;
  const { filterSize, strides, pad } = attrs;
  if (dy.dtype !== 'float32' || input.dtype !== 'float32') {
    return run(backend, tf.AvgPoolGrad, inputs, attrs);
  }
  const info = tf.backend_util.computePool2DInfo(input.shape as Shape4, filterSize, strides, 1, pad);
  const { batchSize: n, inHeight: hIn, inWidth: wIn, inChannels: c, outHeight: oh, outWidth: ow,
    strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw, padInfo } = info;
  const mult = 1 / (fh * fw);

  const dx = backend.makeOutput(input.shape, 'float32');
  const h = heap(backend);
  const dyOff = offsetOf(backend, dy);
  const dxOff = offsetOf(backend, dx);
  h.fill(0, dxOff, dxOff + n * hIn * wIn * c);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < oh; y++) {
      const r0 = y * sh - padInfo.top;
      const rLo = Math.max(0, r0);
      const rHi = Math.min(hIn, r0 + fh);
      for (let xo = 0; xo < ow; xo++) {
        const c0 = xo * sw - padInfo.left;
        const cLo = Math.max(0, c0);
        const cHi = Math.min(wIn, c0 + fw);
        const dyBase = dyOff + ((b * oh + y) * ow + xo) * c;
        for (let rr = rLo; rr < rHi; rr++) {
          for (let cc = cLo; cc < cHi; cc++) {
            const base = dxOff + ((b * hIn + rr) * wIn + cc) * c;
            for (let d = 0; d < c; d++) {
              h[base + d] = (h[base + d] as number) + (h[dyBase + d] as number) * mult;
            }
          }
        }
      }
    }
  }
  return dx;
}


/** AvgPoolGrad for 'wasm', channel-vectorised (float32; other dtypes fall back). */
export const avgPoolGradFastConfig = wasmKernel(tf.AvgPoolGrad, avgPoolGradFast);
