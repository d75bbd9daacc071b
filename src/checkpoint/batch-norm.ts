/**
 * Batch normalisation with PyTorch's semantics, written so that a recomputing backward can rebuild any
 * BN → ReLU output from the BN input and two per-channel vectors (batch mean and inverse std).
 */
import * as tf from '@tensorflow/tfjs';

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

/** Values per channel in an NHWC (or NC) tensor. */
export function valuesPerChannel(x: tf.Tensor): number {
  return x.size / x.shape[x.shape.length - 1];
}

function channelAxes(x: tf.Tensor): number[] {
  return x.shape.slice(0, -1).map((_, axis) => axis);
}

/** Computes batch statistics of `x`, reports them to `norm.record`, and returns mean and 1/sqrt(var + eps). */
export function batchStats(x: tf.Tensor, norm: TrainingNorm): BatchStats {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, channelAxes(x));
    norm.record(mean as tf.Tensor1D, variance as tf.Tensor1D, valuesPerChannel(x));
    return { mean: mean as tf.Tensor1D, invStd: tf.rsqrt(tf.add(variance, BN_EPSILON)) as tf.Tensor1D };
  });
}

/** relu(x·scale + shift) where BN(x) = x·scale + shift; the two full-size temporaries are freed at once. */
export function bnRelu(x: tf.Tensor, norm: NormAffine, stats: BatchStats): tf.Tensor {
  const { scale, shift } = scaleShift(norm, stats);
  const scaled = tf.mul(x, scale);
  const shifted = tf.add(scaled, shift);
  scaled.dispose();
  const activated = tf.relu(shifted);
  shifted.dispose();
  scale.dispose();
  shift.dispose();
  return activated;
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
 *   dβ = Σ dy,  dγ = r·(Σ dy·x − μ·dβ),  dx = a·dy + b·x + c
 * with a = γr, b = −a·r·dγ/M, c = a·(r·dγ·μ − dβ)/M, r = 1/sqrt(var + eps), M values per channel.
 */
export function batchNormBackward(dy: tf.Tensor, x: tf.Tensor, gamma: tf.Tensor1D, stats: BatchStats): NormGradients {
  const axes = channelAxes(x);
  const count = valuesPerChannel(x);
  const { dGamma, dBeta, a, b, c } = tf.tidy(() => {
    const dBeta = tf.sum(dy, axes) as tf.Tensor1D;
    const dyx = tf.mul(dy, x);
    const sumDyX = tf.sum(dyx, axes);
    dyx.dispose();
    const dGamma = tf.mul(stats.invStd, tf.sub(sumDyX, tf.mul(stats.mean, dBeta))) as tf.Tensor1D;
    const a = tf.mul(gamma, stats.invStd);
    const rdGamma = tf.mul(stats.invStd, dGamma);
    const b = tf.div(tf.neg(tf.mul(a, rdGamma)), count);
    const c = tf.div(tf.mul(a, tf.sub(tf.mul(rdGamma, stats.mean), dBeta)), count);
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
 * Training-mode BN → ReLU through tfjs's differentiable ops, every intermediate kept by the tape: the naive path.
 */
export function naiveBnRelu(x: tf.Tensor, norm: TrainingNorm): tf.Tensor {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, channelAxes(x));
    norm.record(mean as tf.Tensor1D, variance as tf.Tensor1D, valuesPerChannel(x));
    return tf.relu(tf.batchNorm(x, mean, variance, norm.beta, norm.gamma, BN_EPSILON));
  });
}
