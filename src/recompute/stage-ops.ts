/**
 * The transition and the head with the same treatment as `denseBlockOp`: no BN or ReLU output is ever stored.
 * - `transitionOp`: BN → ReLU → 2×2/2 avg-pool → 1×1 conv. Pooling before the 1×1 conv is exact (both are
 *   linear and act on different axes) and makes the convolution 4× cheaper.
 * - `headOp`: BN → ReLU → global average pool.
 * Each keeps only its input and per-channel statistics and recomputes the rest in backprop. (The stem's ops
 * are in stem-ops.ts.)
 */
import * as tf from '@tensorflow/tfjs';
import { batchStats, bnRelu, bnReluBackward, type BatchStats, type NormAffine, type NormGradients, type TrainingNorm } from '../norm/batch-norm.js';
import { channelRanges, joinGroups, sliceChannels, sliceKernelRows, sliceNorm } from './channel-groups.js';
import { customOp, release } from '../ops/custom-op.js';
import { avgPoolGrad } from '../ops/kernels.js';
import { conv1x1 } from './dense-ops.js';
import { matMulTransposeA, matMulTransposeB } from '../ops/matmul.js';

/** torchvision's `AvgPool2d(kernel_size=2, stride=2)`. */
export function transitionPool(x: tf.Tensor4D): tf.Tensor4D {
  return tf.avgPool(x, 2, 2, 'valid');
}

/**
 * Backprop through BN → ReLU → 2×2 avg-pool → 1×1 conv from the input x, recomputing the activation.
 * Per-channel but for the convolution, so it also runs on a channel slice of x with the matching slices of
 * the norm, the statistics and the kernel's input rows (dy stays whole).
 */
export function transitionBackward(x: tf.Tensor4D, norm: NormAffine, kernel: tf.Tensor4D, stats: BatchStats, dy: tf.Tensor4D): NormGradients & { dKernel: tf.Tensor4D } {
  const act = bnRelu(x, norm, stats) as tf.Tensor4D;
  const pool = transitionPool(act);
  const [n, h, wd, c] = pool.shape;
  const out = kernel.shape[3];
  const { dKernel, dPooled } = tf.tidy(() => {
    const dyFlat = tf.reshape(dy, [n * h * wd, out]) as tf.Tensor2D;
    return {
      dKernel: tf.reshape(matMulTransposeA(tf.reshape(pool, [n * h * wd, c]) as tf.Tensor2D, dyFlat), kernel.shape) as tf.Tensor4D,
      dPooled: tf.reshape(matMulTransposeB(dyFlat, tf.reshape(kernel, [c, out]) as tf.Tensor2D), pool.shape) as tf.Tensor4D,
    };
  });
  pool.dispose();
  const dActivated = avgPoolGrad(dPooled, act, 2, 2, 'valid');
  dPooled.dispose();
  return { ...bnReluBackward(dActivated, act, x, norm.gamma, stats.mean, stats.invStd), dKernel };
}

/**
 * The transition as one op. `channelGroups` > 1 runs the backward on that many slices of the input's channels
 * (the `block` mode's choice: its temporaries then stay a fraction of the input, which the dense block keeps).
 */
export function transitionOp(x: tf.Tensor4D, norm: TrainingNorm, kernel: tf.Tensor4D, { channelGroups = 1 }: { channelGroups?: number } = {}): tf.Tensor4D {
  return customOp<tf.Tensor4D>((inputs, save) => {
    const [input] = inputs as tf.Tensor4D[];
    const stats = batchStats(input, norm);
    const activated = bnRelu(input, norm, stats) as tf.Tensor4D;
    const pooled = transitionPool(activated);
    activated.dispose();
    const out = conv1x1(pooled, kernel);
    save([...inputs, stats.mean, stats.invStd]);
    return {
      value: out,
      gradFunc: (dy, saved) => {
        const [xs, gamma, beta, w, mean, invStd] = saved as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.Tensor4D, tf.Tensor1D, tf.Tensor1D];
        if (channelGroups <= 1) {
          const grads = transitionBackward(xs, { gamma, beta }, w, { mean, invStd }, dy);
          release(xs, mean, invStd);
          return [grads.dx, grads.dGamma, grads.dBeta, grads.dKernel];
        }
        const parts: Array<ReturnType<typeof transitionBackward>> = [];
        for (const range of channelRanges(xs.shape[3], Math.ceil(xs.shape[3] / channelGroups))) {
          const slice = sliceNorm({ gamma, beta }, { mean, invStd }, range);
          const xSlice = sliceChannels(xs, range);
          const rows = sliceKernelRows(w, range);
          parts.push(transitionBackward(xSlice, slice.norm, rows, slice.stats, dy));
          release(xSlice, rows);
          slice.dispose();
        }
        release(xs, mean, invStd);
        return [
          joinGroups(parts.map((p) => p.dx), 3),
          joinGroups(parts.map((p) => p.dGamma), 0),
          joinGroups(parts.map((p) => p.dBeta), 0),
          joinGroups(parts.map((p) => p.dKernel), 2),
        ];
      },
    };
  })([x, norm.gamma, norm.beta, kernel]);
}

export function headOp(x: tf.Tensor4D, norm: TrainingNorm): tf.Tensor2D {
  return customOp<tf.Tensor2D>((inputs, save) => {
    const [input] = inputs as tf.Tensor4D[];
    const stats = batchStats(input, norm);
    const activated = bnRelu(input, norm, stats);
    const pooled = tf.mean(activated, [1, 2]) as tf.Tensor2D;
    save([...inputs, stats.mean, stats.invStd]);
    return {
      value: pooled,
      gradFunc: (dy, saved) => {
        const [xs, gamma, beta, mean, invStd] = saved as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D];
        const act = bnRelu(xs, { gamma, beta }, { mean, invStd });
        const [n, h, w, c] = xs.shape;
        const dActivated = tf.tidy(() => tf.broadcastTo(tf.reshape(tf.div(dy, h * w), [n, 1, 1, c]), xs.shape));
        const grads = bnReluBackward(dActivated, act, xs, gamma, mean, invStd);
        release(xs, mean, invStd);
        return [grads.dx, grads.dGamma, grads.dBeta];
      },
    };
  })([x, norm.gamma, norm.beta]);
}
