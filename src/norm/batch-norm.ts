/**
 * Batch normalisation with PyTorch's semantics, written so that a recomputing backward can rebuild any
 * BN → ReLU output from the BN input and two per-channel vectors (batch mean and inverse std).
 */
import * as tf from '@tensorflow/tfjs';
import { channelGradSums, channelMoments } from './channel-sums.js';
import { customOp, release } from '../ops/custom-op.js';

/** PyTorch's default `eps`. */
export const BN_EPSILON = 1e-5;
/** PyTorch's default `momentum`: new running = 0.9·old + 0.1·batch. */
export const BN_MOMENTUM = 0.1;

/** Per-channel affine parameters of one BN (the values of its γ and β variables). */
export interface NormAffine {
  gamma: tf.Tensor1D;
  beta: tf.Tensor1D;
}

/**
 * Receives the batch mean and biased variance of a training forward, with the number of values per channel,
 * so the owner can update its running statistics exactly once per forward.
 */
export type StatsRecorder = (mean: tf.Tensor1D, variance: tf.Tensor1D, count: number) => void;

/** What a training-mode BN needs: its affine parameters and where to report batch statistics. */
export interface TrainingNorm extends NormAffine {
  record: StatsRecorder;
}

/** Batch statistics kept by a recomputing op: all it needs to rebuild the normalised tensor. */
export interface BatchStats {
  mean: tf.Tensor1D;
  invStd: tf.Tensor1D;
}

/** Computes batch statistics of `x`, reports them to `norm.record`, and returns mean and 1/sqrt(var + eps). */
export function batchStats(x: tf.Tensor, norm: TrainingNorm): BatchStats {
  return tf.tidy(() => {
    const { mean, variance, count } = channelMoments(x);
    norm.record(mean, variance, count);
    return { mean, invStd: tf.rsqrt(tf.add(variance, BN_EPSILON)) as tf.Tensor1D };
  });
}

/** relu(x·scale + shift) where BN(x) = x·scale + shift; the two full-size temporaries are freed at once. */
export function bnRelu(x: tf.Tensor, norm: NormAffine, stats: BatchStats): tf.Tensor {
  const normalized = bnAffine(x, norm, stats);
  const activated = tf.relu(normalized);
  normalized.dispose();
  return activated;
}

/** BN(x) = x·scale + shift from batch statistics; the full-size temporary is freed at once. */
function bnAffine(x: tf.Tensor, norm: NormAffine, stats: BatchStats): tf.Tensor {
  const { scale, shift } = scaleShift(norm, stats);
  const scaled = tf.mul(x, scale);
  const shifted = tf.add(scaled, shift);
  scaled.dispose();
  scale.dispose();
  shift.dispose();
  return shifted;
}

/**
 * bnRelu of a temporary the caller hands over: x is freed as soon as it has been read, so no more than two
 * full-size tensors are alive at once (bnRelu keeps x and adds two). Same values as bnRelu.
 */
export function bnReluConsuming(x: tf.Tensor, norm: NormAffine, stats: BatchStats): tf.Tensor {
  const { scale, shift } = scaleShift(norm, stats);
  const scaled = tf.mul(x, scale);
  x.dispose();
  const shifted = tf.add(scaled, shift);
  scaled.dispose();
  const activated = tf.relu(shifted);
  shifted.dispose();
  scale.dispose();
  shift.dispose();
  return activated;
}

function scaleShift(norm: NormAffine, stats: BatchStats): { scale: tf.Tensor1D; shift: tf.Tensor1D } {
  return tf.tidy(() => {
    const scale = tf.mul(norm.gamma, stats.invStd) as tf.Tensor1D;
    const shift = tf.sub(norm.beta, tf.mul(stats.mean, scale)) as tf.Tensor1D;
    return { scale, shift };
  });
}

/** dL/dY of Y = relu(X) given dL/dA and the ReLU's output A (A > 0 exactly where X > 0). */
export function reluBackward(dActivated: tf.Tensor, activated: tf.Tensor): tf.Tensor {
  const mask = tf.step(activated);
  const dx = tf.mul(dActivated, mask);
  mask.dispose();
  return dx;
}

export interface NormGradients {
  dx: tf.Tensor;
  dGamma: tf.Tensor1D;
  dBeta: tf.Tensor1D;
}

/**
 * Training-mode BN backward from the BN input `x` (no normalised tensor is materialised):
 *   dβ = Σ dy,  dγ = r·Σ dy·(x − μ),  dx = a·dy + b·x + c
 * with a = γr, b = −a·r·dγ/M, c = a·(r·dγ·μ − dβ)/M, r = 1/sqrt(var + eps), M values per channel.
 * Both sums are accumulated in float64 (see channel-sums.ts); Σdy·(x − μ) does not cancel as Σdy·x − μ·Σdy does.
 * `meanwhile`: work independent of the sums (a weight gradient), run while data-parallel replicas exchange
 * them; it runs inside a tidy, so what it makes for later must be tf.keep'd.
 */
export function batchNormBackward(dy: tf.Tensor, x: tf.Tensor, gamma: tf.Tensor1D, stats: BatchStats, meanwhile?: () => void): NormGradients {
  const { dGamma, dBeta, a, b, c } = tf.tidy(() => {
    const { sumDy: dBeta, sumDyCentered, total } = channelGradSums(dy, x, stats.mean, meanwhile);
    // γ's and β's gradients are this replica's share; dx needs the whole batch's sums (replicas.ts).
    const dGamma = tf.mul(stats.invStd, sumDyCentered) as tf.Tensor1D;
    const dGammaTotal = total.sumDyCentered === sumDyCentered ? dGamma : tf.mul(stats.invStd, total.sumDyCentered);
    const a = tf.mul(gamma, stats.invStd);
    const rdGamma = tf.mul(stats.invStd, dGammaTotal);
    const b = tf.div(tf.neg(tf.mul(a, rdGamma)), total.count);
    const c = tf.div(tf.mul(a, tf.sub(tf.mul(rdGamma, stats.mean), total.sumDy)), total.count);
    return { dGamma, dBeta, a, b, c };
  });
  const ady = tf.mul(dy, a);
  const bx = tf.mul(x, b);
  const sum = tf.add(ady, bx);
  ady.dispose();
  bx.dispose();
  const dx = tf.add(sum, c);
  sum.dispose();
  tf.dispose([a, b, c]);
  return { dx, dGamma, dBeta };
}

/** Inference-mode BN → ReLU from running statistics (differentiable by tfjs's own gradients). */
export function inferenceBnRelu(x: tf.Tensor, norm: NormAffine, runningMean: tf.Tensor1D, runningVar: tf.Tensor1D): tf.Tensor {
  return tf.tidy(() => tf.relu(tf.batchNorm(x, runningMean, runningVar, norm.beta, norm.gamma, BN_EPSILON)));
}

/**
 * Training-mode BN as one op whose backward is `batchNormBackward`: it keeps its input and the per-channel
 * statistics, as PyTorch's BatchNorm does (tfjs's own batchNorm gradient reduces in float32 and tiles its
 * per-channel vectors to full size).
 */
export function trainingBatchNorm(x: tf.Tensor, norm: TrainingNorm): tf.Tensor {
  return customOp<tf.Tensor>((inputs, save) => {
    const [input] = inputs as [tf.Tensor];
    const stats = batchStats(input, norm);
    const value = bnAffine(input, norm, stats);
    save([...inputs, stats.mean, stats.invStd]);
    return {
      value,
      gradFunc: (dy, saved) => {
        const [xs, gamma, , mean, invStd] = saved as [tf.Tensor, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D];
        const { dx, dGamma, dBeta } = batchNormBackward(dy, xs, gamma, { mean, invStd });
        return [dx, dGamma, dBeta];
      },
    };
  })([x, norm.gamma, norm.beta]);
}

/**
 * Training-mode BN → ReLU, the naive path: the BN op above, then tfjs's own ReLU, each output kept by the tape.
 */
export function naiveBnRelu(x: tf.Tensor, norm: TrainingNorm): tf.Tensor {
  return tf.tidy(() => tf.relu(trainingBatchNorm(x, norm)));
}

/** Applies the BN backward to dL/dA of relu(BN(x)), given the recomputed activation. */
export function bnReluBackward(dActivated: tf.Tensor, activated: tf.Tensor, x: tf.Tensor, gamma: tf.Tensor1D, mean: tf.Tensor1D, invStd: tf.Tensor1D): NormGradients {
  const dy = reluBackward(dActivated, activated);
  release(dActivated, activated);
  const grads = batchNormBackward(dy, x, gamma, { mean, invStd });
  dy.dispose();
  return grads;
}
