/**
 * Conv2DBackpropFilter summed exactly: dW[i, j, c, o] = Σ over batch and output positions of x·dy, each
 * product exact in float64, the sum in float64, rounded to float32 once.
 */
import * as tf from '@tensorflow/tfjs';
import { CPU_BACKEND, float32Values, isFloat32, nhwcConvInfo, output, stock, type CpuKernelArgs, type TensorInfo } from '../internals.js';

function conv2dBackpropFilter(args: CpuKernelArgs<{ x: TensorInfo; dy: TensorInfo }, tf.Conv2DBackpropFilterAttrs>): TensorInfo {
  const { inputs: { x, dy }, backend, attrs } = args;
  const c = isFloat32(x, dy) ? nhwcConvInfo(x.shape, attrs.filterShape, attrs) : null;
  if (!c) return stock(tf.Conv2DBackpropFilter, args) as TensorInfo;
  const xv = float32Values(backend, x);
  const dv = float32Values(backend, dy);
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth, strideHeight, strideWidth } = c;
  const { top, left } = c.padInfo;
  const dw = new Float32Array(filterHeight * filterWidth * inChannels * outChannels);
  // One tap's [Cin, Cout] sums at a time: the accumulator stays small enough for the cache.
  const acc = new Float64Array(inChannels * outChannels);
  for (let i = 0; i < filterHeight; i++) {
    for (let j = 0; j < filterWidth; j++) {
      acc.fill(0);
      for (let b = 0; b < batchSize; b++) {
        for (let r = 0; r < outHeight; r++) {
          const hi = r * strideHeight + i - top;
          if (hi < 0 || hi >= inHeight) continue;
          for (let q = 0; q < outWidth; q++) {
            const wi = q * strideWidth + j - left;
            if (wi < 0 || wi >= inWidth) continue;
            const xs = ((b * inHeight + hi) * inWidth + wi) * inChannels;
            const ds = ((b * outHeight + r) * outWidth + q) * outChannels;
            for (let ch = 0; ch < inChannels; ch++) {
              const xval = xv[xs + ch]!;
              // Post-ReLU inputs are mostly zeros: skipping them changes no sum.
              if (xval === 0) continue;
              const row = ch * outChannels;
              for (let o = 0; o < outChannels; o++) acc[row + o] += xval * dv[ds + o]!;
            }
          }
        }
      }
      dw.set(acc, (i * filterWidth + j) * inChannels * outChannels);
    }
  }
  return output(backend, [...attrs.filterShape], dw);
}

export const conv2DBackpropFilterExactConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: CPU_BACKEND,
  kernelFunc: conv2dBackpropFilter as unknown as tf.KernelFunc,
};
