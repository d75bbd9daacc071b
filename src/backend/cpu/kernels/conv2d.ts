/**
 * Conv2D with each output a correctly summed dot product: every float32 product is exact in float64, the
 * sum over taps and input channels runs in float64, and the result is rounded to float32 once. tfjs's own
 * kernel adds each product into the float32 output, so its error grows with kh·kw·Cin (2.6× PyTorch's on a
 * DenseNet 3×3 convolution; see the README's parity paragraph).
 */
import * as tf from '@tensorflow/tfjs';
import { CPU_BACKEND, float32Values, isFloat32, nhwcConvInfo, output, stock, type CpuKernelArgs, type TensorInfo } from '../internals.js';

function conv2d(args: CpuKernelArgs<{ x: TensorInfo; filter: TensorInfo }, tf.Conv2DAttrs>): TensorInfo {
  const { inputs: { x, filter }, backend, attrs } = args;
  const c = isFloat32(x, filter) ? nhwcConvInfo(x.shape, filter.shape, attrs) : null;
  if (!c) return stock(tf.Conv2D, args) as TensorInfo;
  const xv = float32Values(backend, x);
  const wv = float32Values(backend, filter);
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth, strideHeight, strideWidth } = c;
  const { top, left } = c.padInfo;
  const k = filterHeight * filterWidth * inChannels;
  // The filter as [Cout][K] doubles, so each output's dot product reads both operands contiguously.
  const wt = new Float64Array(outChannels * k);
  for (let i = 0; i < k; i++) for (let o = 0; o < outChannels; o++) wt[o * k + i] = wv[i * outChannels + o]!;
  const patch = new Float64Array(k);
  const y = new Float32Array(batchSize * outHeight * outWidth * outChannels);
  for (let b = 0; b < batchSize; b++) {
    for (let r = 0; r < outHeight; r++) {
      for (let q = 0; q < outWidth; q++) {
        patch.fill(0);
        for (let i = 0; i < filterHeight; i++) {
          const hi = r * strideHeight + i - top;
          if (hi < 0 || hi >= inHeight) continue;
          for (let j = 0; j < filterWidth; j++) {
            const wi = q * strideWidth + j - left;
            if (wi < 0 || wi >= inWidth) continue;
            const src = ((b * inHeight + hi) * inWidth + wi) * inChannels;
            const dst = (i * filterWidth + j) * inChannels;
            for (let ch = 0; ch < inChannels; ch++) patch[dst + ch] = xv[src + ch]!;
          }
        }
        const yo = ((b * outHeight + r) * outWidth + q) * outChannels;
        for (let o = 0; o < outChannels; o++) {
          let sum = 0;
          const base = o * k;
          for (let i = 0; i < k; i++) sum += patch[i]! * wt[base + i]!;
          y[yo + o] = sum;
        }
      }
    }
  }
  return output(backend, [batchSize, outHeight, outWidth, outChannels], y);
}

export const conv2DExactConfig: tf.KernelConfig = {
  kernelName: tf.Conv2D,
  backendName: CPU_BACKEND,
  kernelFunc: conv2d as unknown as tf.KernelFunc,
};
