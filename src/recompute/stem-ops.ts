/**
 * The stem's ops: BN0 → ReLU → 3×3/2 max-pool (pad 1) over the 7×7 convolution's output, with no BN or ReLU
 * output ever stored.
 * - `stemTailOp` (`layer` and `bottleneck` modes): keeps the convolution's output and per-channel statistics
 *   and recomputes the activation in backprop.
 * - `stemTailRecomputeOp` (`block` mode): keeps not even the convolution's output (as large as a block-1
 *   output): its backward recomputes that convolution from the network input and the kernel, and walks the
 *   64 channels in groups.
 */
import * as tf from '@tensorflow/tfjs';
import { batchStats, bnRelu, bnReluBackward, type BatchStats, type NormAffine, type NormGradients, type TrainingNorm } from '../norm/batch-norm.js';
import { channelRanges, joinGroups, sliceChannels, sliceNorm } from './channel-groups.js';
import { customOp, release } from '../ops/custom-op.js';
import { maxPoolGrad } from '../ops/kernels.js';

/** torchvision's `MaxPool2d(kernel_size=3, stride=2, padding=1)`: padding never wins the max. */
export const STEM_POOL = { size: 3, stride: 2, pad: 1 } as const;

export function stemPool(x: tf.Tensor4D): tf.Tensor4D {
  return tf.maxPool(x, STEM_POOL.size, STEM_POOL.stride, STEM_POOL.pad);
}

/** The stem's 64 channels are walked in groups of 8: its recomputed convolution is as large as a block-1 output. */
export const STEM_CHANNEL_GROUPS = 8;

/**
 * Backprop through BN → ReLU → stem max-pool from the pool's input x, recomputing the activation. Per-channel,
 * so it also runs on a channel slice of x and dy with the matching slices of the norm and the statistics.
 */
export function stemTailBackward(x: tf.Tensor4D, norm: NormAffine, stats: BatchStats, dy: tf.Tensor4D): NormGradients {
  const act = bnRelu(x, norm, stats) as tf.Tensor4D;
  const out = stemPool(act);
  const dActivated = maxPoolGrad(dy, act, out, STEM_POOL.size, STEM_POOL.stride, STEM_POOL.pad);
  out.dispose();
  return bnReluBackward(dActivated, act, x, norm.gamma, stats.mean, stats.invStd);
}

export function stemTailOp(x: tf.Tensor4D, norm: TrainingNorm): tf.Tensor4D {
  return customOp<tf.Tensor4D>((inputs, save) => {
    const [input] = inputs as tf.Tensor4D[];
    const stats = batchStats(input, norm);
    const activated = bnRelu(input, norm, stats) as tf.Tensor4D;
    const pooled = stemPool(activated);
    save([...inputs, stats.mean, stats.invStd]);
    return {
      value: pooled,
      gradFunc: (dy, saved) => {
        const [xs, gamma, beta, mean, invStd] = saved as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D];
        const grads = stemTailBackward(xs, { gamma, beta }, { mean, invStd }, dy);
        release(xs, mean, invStd);
        return [grads.dx, grads.dGamma, grads.dBeta];
      },
    };
  })([x, norm.gamma, norm.beta]);
}

/** How the stem's convolution is recomputed: from the network input and the kernel it was computed with. */
export interface StemRecompute {
  image: tf.Tensor4D;
  kernel: tf.Tensor4D;
  convolve: (image: tf.Tensor4D, kernel: tf.Tensor4D) => tf.Tensor4D;
}

/**
 * The stem's BN → ReLU → max-pool over the convolution's output `conv`, keeping the network input and the kernel
 * (which exist anyway) instead of `conv`. The gradient flows to `conv` as usual; the image and the kernel are
 * only read, so their gradients come from the convolution's own backward.
 */
export function stemTailRecomputeOp(conv: tf.Tensor4D, norm: TrainingNorm, recompute: StemRecompute): tf.Tensor4D {
  return customOp<tf.Tensor4D>((inputs, save) => {
    const [input] = inputs as tf.Tensor4D[];
    const stats = batchStats(input, norm);
    const activated = bnRelu(input, norm, stats) as tf.Tensor4D;
    const pooled = stemPool(activated);
    save([recompute.image, recompute.kernel, ...inputs.slice(1), stats.mean, stats.invStd]);
    return {
      value: pooled,
      gradFunc: (dy, saved) => {
        const [image, kernel, gamma, beta, mean, invStd] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D];
        const x = recompute.convolve(image, kernel);
        release(image, kernel);
        const parts: Array<ReturnType<typeof stemTailBackward>> = [];
        for (const range of channelRanges(x.shape[3], Math.ceil(x.shape[3] / STEM_CHANNEL_GROUPS))) {
          const slice = sliceNorm({ gamma, beta }, { mean, invStd }, range);
          const xSlice = sliceChannels(x, range);
          const dySlice = sliceChannels(dy, range);
          parts.push(stemTailBackward(xSlice, slice.norm, slice.stats, dySlice));
          release(xSlice, dySlice);
          slice.dispose();
        }
        release(x, dy, mean, invStd);
        return [joinGroups(parts.map((p) => p.dx), 3), joinGroups(parts.map((p) => p.dGamma), 0), joinGroups(parts.map((p) => p.dBeta), 0)];
      },
    };
  })([conv, norm.gamma, norm.beta]);
}
