/**
 * Conv2DBackpropInput summed exactly: dx[b, h, w, c] = Σ over the taps and output channels that read
 * x[b, h, w, c] of dy·W, each product exact in float64, the sum in float64, rounded to float32 once.
 */
import * as tf from '@tensorflow/tfjs';
import { CPU_BACKEND, float32Values, isFloat32, nhwcConvInfo, output, stock, type CpuKernelArgs, type TensorInfo } from '../internals.js';

function conv2dBackpropInput(args: CpuKernelArgs<{ dy: TensorInfo; filter: TensorInfo }, tf.Conv2DBackpropInputAttrs>): TensorInfo {
  const { inputs: { dy, filter }, backend, attrs } = args;
  const c = isFloat32(dy, filter) ? nhwcConvInfo([...attrs.inputShape], filter.shape, attrs) : null;
  if (!c) return stock(tf.Conv2DBackpropInput, args) as TensorInfo;
  const dv = float32Values(backend, dy);
  const wv = float32Values(backend, filter);
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth, strideHeight, strideWidth } = c;
  const { top, left } = c.padInfo;
  // The filter as [tap][Cout][Cin] doubles, so the innermost loop runs over contiguous input channels.
  const taps = filterHeight * filterWidth;
  const wt = new Float64Array(taps * outChannels * inChannels);
  for (let t = 0; t < taps; t++) {
    for (let ch = 0; ch < inChannels; ch++) {
      for (let o = 0; o < outChannels; o++) wt[(t * outChannels + o) * inChannels + ch] = wv[(t * inChannels + ch) * outChannels + o]!;
    }
  }
  const dx = new Float32Array(batchSize * inHeight * inWidth * inChannels);
  const acc = new Float64Array(inChannels);
  for (let b = 0; b < batchSize; b++) {
    for (let h = 0; h < inHeight; h++) {
      for (let w = 0; w < inWidth; w++) {
        acc.fill(0);
        for (let i = 0; i < filterHeight; i++) {
          const rs = h + top - i;
          if (rs < 0 || rs % strideHeight !== 0 || rs / strideHeight >= outHeight) continue;
          const r = rs / strideHeight;
          for (let j = 0; j < filterWidth; j++) {
            const qs = w + left - j;
            if (qs < 0 || qs % strideWidth !== 0 || qs / strideWidth >= outWidth) continue;
            const q = qs / strideWidth;
            const ds = ((b * outHeight + r) * outWidth + q) * outChannels;
            const tap = (i * filterWidth + j) * outChannels;
            for (let o = 0; o < outChannels; o++) {
              const d = dv[ds + o]!;
              // Gradients behind a ReLU are mostly zeros: skipping them changes no sum.
              if (d === 0) continue;
              const row = (tap + o) * inChannels;
              for (let ch = 0; ch < inChannels; ch++) acc[ch] += d * wt[row + ch]!;
            }
          }
        }
        dx.set(acc, ((b * inHeight + h) * inWidth + w) * inChannels);
      }
    }
  }
  return output(backend, [...attrs.inputShape], dx);
}

export const conv2DBackpropInputExactConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropInput,
  backendName: CPU_BACKEND,
  kernelFunc: conv2dBackpropInput as unknown as tf.KernelFunc,
};
