/**
 * The non-dense stages with the same treatment as `denseBlockOp`: no BN or ReLU output is ever stored.
 * - `stemTailOp`: BN0 → ReLU → 3×3/2 max-pool (pad 1) over the stem convolution's output.
 * - `transitionOp`: BN → ReLU → 2×2/2 avg-pool → 1×1 conv. Pooling before the 1×1 conv is exact (both are
 *   linear and act on different axes) and makes the convolution 4× cheaper.
 * - `headOp`: BN → ReLU → global average pool.
 * Each keeps only its input and per-channel statistics and recomputes the rest in backprop.
 */
import * as tf from '@tensorflow/tfjs';
import { batchNormBackward, batchStats, bnRelu, reluBackward, type TrainingNorm } from './batch-norm.js';
import { customOp, release } from './custom-op.js';
import { avgPoolGrad, maxPoolGrad } from './kernels.js';
import { conv1x1 } from './dense-ops.js';
import { matMulTransposeA, matMulTransposeB } from './matmul.js';

/** torchvision's `MaxPool2d(kernel_size=3, stride=2, padding=1)`: padding never wins the max. */
export const STEM_POOL = { size: 3, stride: 2, pad: 1 } as const;

export function stemPool(x: tf.Tensor4D): tf.Tensor4D {
  return tf.maxPool(x, STEM_POOL.size, STEM_POOL.stride, STEM_POOL.pad);
}

/** torchvision's `AvgPool2d(kernel_size=2, stride=2)`. */
export function transitionPool(x: tf.Tensor4D): tf.Tensor4D {
  return tf.avgPool(x, 2, 2, 'valid');
}

/** Applies the BN backward to dL/dA of relu(BN(x)), given the recomputed activation. */
function normReluBackward(dActivated: tf.Tensor, activated: tf.Tensor, x: tf.Tensor, gamma: tf.Tensor1D, mean: tf.Tensor1D, invStd: tf.Tensor1D) {
  const dy = reluBackward(dActivated, activated);
  release(dActivated, activated);
  const grads = batchNormBackward(dy, x, gamma, { mean, invStd });
  dy.dispose();
  return grads;
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
        const act = bnRelu(xs, { gamma, beta }, { mean, invStd }) as tf.Tensor4D;
        const out = stemPool(act);
        const dActivated = maxPoolGrad(dy, act, out, STEM_POOL.size, STEM_POOL.stride, STEM_POOL.pad);
        out.dispose();
        const grads = normReluBackward(dActivated, act, xs, gamma, mean, invStd);
        release(xs, mean, invStd);
        return [grads.dx, grads.dGamma, grads.dBeta];
      },
    };
  })([x, norm.gamma, norm.beta]);
}

export function transitionOp(x: tf.Tensor4D, norm: TrainingNorm, kernel: tf.Tensor4D): tf.Tensor4D {
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
        const act = bnRelu(xs, { gamma, beta }, { mean, invStd }) as tf.Tensor4D;
        const pool = transitionPool(act);
        const [n, h, wd, c] = pool.shape;
        const out = w.shape[3];
        const { dKernel, dPooled } = tf.tidy(() => {
          const dyFlat = tf.reshape(dy, [n * h * wd, out]) as tf.Tensor2D;
          return {
            dKernel: tf.reshape(matMulTransposeA(tf.reshape(pool, [n * h * wd, c]) as tf.Tensor2D, dyFlat), w.shape) as tf.Tensor4D,
            dPooled: tf.reshape(matMulTransposeB(dyFlat, tf.reshape(w, [c, out]) as tf.Tensor2D), pool.shape) as tf.Tensor4D,
          };
        });
        pool.dispose();
        const dActivated = avgPoolGrad(dPooled, act, 2, 2, 'valid');
        dPooled.dispose();
        const grads = normReluBackward(dActivated, act, xs, gamma, mean, invStd);
        release(xs, mean, invStd);
        return [grads.dx, grads.dGamma, grads.dBeta, dKernel];
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
        const grads = normReluBackward(dActivated, act, xs, gamma, mean, invStd);
        release(xs, mean, invStd);
        return [grads.dx, grads.dGamma, grads.dBeta];
      },
    };
  })([x, norm.gamma, norm.beta]);
}
