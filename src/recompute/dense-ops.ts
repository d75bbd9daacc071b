/**
 * The dense layer's math in three memory strategies, all with identical results:
 * - `bottleneckOp`: torchvision's `memory_efficient=True` — concat → BN → ReLU → 1×1 conv as one op that keeps
 *   only its inputs (and per-channel batch statistics) and recomputes concat → BN → ReLU in backprop.
 * - `denseLayerOp`: a whole dense layer as one op that keeps its inputs, the 1×1 output and the new features.
 * - `denseBlockOp`: a whole dense block as one op that keeps its output (which contains every feature map)
 *   and each layer's 1×1 output; its backward walks the layers in reverse with one shrinking gradient buffer,
 *   freeing each temporary as soon as it is dead, so the block's memory is linear in its depth.
 * Gradients are analytic; the 1×1 convolution's forward is never recomputed (its gradients do not need it).
 */
import * as tf from '@tensorflow/tfjs';
import { batchNormBackward, batchStats, bnRelu, reluBackward, type BatchStats, type NormAffine, type TrainingNorm } from '../norm/batch-norm.js';
import { replicaGroup } from '../norm/replicas.js';
import { customOp, release } from '../ops/custom-op.js';
import { conv2dBackpropFilter, conv2dBackpropInput } from '../ops/kernels.js';
import { dropoutMask, perLayerDropout, type BlockDropout, type DropoutSpec } from '../ops/dropout.js';
import { matMulTransposeA, matMulTransposeB } from '../ops/matmul.js';


/** The values of one dense layer's weights. */
export interface DenseLayerParams {
  norm1: TrainingNorm;
  /** 1×1 bottleneck kernel [1, 1, C_in, bnSize·k]. */
  kernel1: tf.Tensor4D;
  norm2: TrainingNorm;
  /** 3×3 kernel [3, 3, bnSize·k, k]. */
  kernel2: tf.Tensor4D;
}

/** The 1×1 convolution as a matrix product over the flattened spatial positions. */
export function conv1x1(x: tf.Tensor4D, kernel: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w, c] = x.shape;
    const out = kernel.shape[3];
    return tf.reshape(tf.matMul(tf.reshape(x, [n * h * w, c]), tf.reshape(kernel, [c, out])), [n, h, w, out]);
  });
}

/** Gradients of `conv1x1(x, kernel)`: dL/dx and dL/dkernel. */
/** The input's gradient of a 1×1 convolution of an input of `shape`. */
function conv1x1BackwardInput(shape: [number, number, number, number], kernel: tf.Tensor4D, dy: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w, c] = shape;
    const out = kernel.shape[3];
    const dyFlat = tf.reshape(dy, [n * h * w, out]) as tf.Tensor2D;
    return tf.reshape(matMulTransposeB(dyFlat, tf.reshape(kernel, [c, out]) as tf.Tensor2D), shape) as tf.Tensor4D;
  });
}

/** The kernel's gradient of a 1×1 convolution of x. */
function conv1x1BackwardFilter(x: tf.Tensor4D, kernel: tf.Tensor4D, dy: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w, c] = x.shape;
    const dyFlat = tf.reshape(dy, [n * h * w, kernel.shape[3]]) as tf.Tensor2D;
    return tf.reshape(matMulTransposeA(tf.reshape(x, [n * h * w, c]) as tf.Tensor2D, dyFlat), kernel.shape) as tf.Tensor4D;
  });
}

/** Forward of the bottleneck: relu(BN1(x)) · W1, recording norm1's batch statistics. */
function bottleneckForward(x: tf.Tensor4D, norm1: TrainingNorm, kernel1: tf.Tensor4D): { z: tf.Tensor4D; stats: BatchStats } {
  const stats = batchStats(x, norm1);
  const activated = bnRelu(x, norm1, stats) as tf.Tensor4D;
  const z = conv1x1(activated, kernel1);
  activated.dispose();
  return { z, stats };
}

/** Forward of the new features from the bottleneck output: conv3×3(relu(BN2(z))), then dropout. */
function newFeaturesForward(z: tf.Tensor4D, norm2: TrainingNorm, kernel2: tf.Tensor4D, mask?: tf.Tensor): { features: tf.Tensor4D; stats: BatchStats } {
  const stats = batchStats(z, norm2);
  const activated = bnRelu(z, norm2, stats) as tf.Tensor4D;
  let features = tf.conv2d(activated, kernel2, 1, 'same');
  activated.dispose();
  if (mask) {
    const dropped = tf.mul(features, mask) as tf.Tensor4D;
    features.dispose();
    features = dropped;
  }
  return { features, stats };
}

export interface NormGrads {
  dGamma: tf.Tensor1D;
  dBeta: tf.Tensor1D;
}

/**
 * Backprop through BN1 → ReLU → 1×1 conv, recomputing the activation from x. Frees everything it makes.
 * Per-channel but for the convolution, so it also runs on a channel slice of x with the matching slices of
 * norm1, kernel1's input rows and the statistics (the `block` mode does, to keep its temporaries small).
 */
export function bottleneckBackward(x: tf.Tensor4D, norm1: NormAffine, kernel1: tf.Tensor4D, stats: BatchStats, dz: tf.Tensor4D): { dx: tf.Tensor4D; dKernel: tf.Tensor4D } & NormGrads {
  const activated = bnRelu(x, norm1, stats) as tf.Tensor4D;
  // The kernel's gradient needs no batch-norm sum: with data-parallel replicas it is computed while they
  // exchange those sums; in one process first, the order whose memory the meta backend predicts to the byte.
  const overlap = replicaGroup() !== null;
  let dKernel = overlap ? undefined : conv1x1BackwardFilter(activated, kernel1, dz);
  const dActivated = conv1x1BackwardInput(activated.shape, kernel1, dz);
  const dy = reluBackward(dActivated, activated);
  dActivated.dispose();
  if (!overlap) release(activated);
  const { dx, dGamma, dBeta } = batchNormBackward(dy, x, norm1.gamma, stats, overlap ? () => {
    dKernel = tf.keep(conv1x1BackwardFilter(activated, kernel1, dz));
    release(activated);
  } : undefined);
  dy.dispose();
  return { dx: dx as tf.Tensor4D, dKernel: dKernel!, dGamma, dBeta };
}

/** Backprop through BN2 → ReLU → 3×3 conv (→ dropout), recomputing the activation from z. */
export function newFeaturesBackward(z: tf.Tensor4D, norm2: NormAffine, kernel2: tf.Tensor4D, stats: BatchStats, dFeatures: tf.Tensor4D, mask?: tf.Tensor): { dz: tf.Tensor4D; dKernel: tf.Tensor4D } & NormGrads {
  const dConv = mask ? (tf.mul(dFeatures, mask) as tf.Tensor4D) : dFeatures;
  const activated = bnRelu(z, norm2, stats) as tf.Tensor4D;
  // As in bottleneckBackward: the kernel's gradient overlaps the replicas' exchange, or comes first.
  const overlap = replicaGroup() !== null;
  let dKernel = overlap ? undefined : conv2dBackpropFilter(activated, dConv, kernel2.shape, 1, 'same');
  const dActivated = conv2dBackpropInput(dConv, kernel2, activated.shape, 1, 'same');
  if (mask && !overlap) dConv.dispose();
  const dy = reluBackward(dActivated, activated);
  release(dActivated);
  if (!overlap) release(activated);
  const { dx, dGamma, dBeta } = batchNormBackward(dy, z, norm2.gamma, stats, overlap ? () => {
    dKernel = tf.keep(conv2dBackpropFilter(activated, dConv, kernel2.shape, 1, 'same'));
    release(activated);
    if (mask) dConv.dispose();
  } : undefined);
  dy.dispose();
  return { dz: dx as tf.Tensor4D, dKernel: dKernel!, dGamma, dBeta };
}

function concatFeatures(features: tf.Tensor4D[]): tf.Tensor4D {
  return features.length === 1 ? tf.clone(features[0]) : tf.concat(features, 3);
}

function splitChannels(x: tf.Tensor4D, features: tf.Tensor4D[]): tf.Tensor4D[] {
  if (features.length === 1) return [x];
  const parts = tf.split(x, features.map((f) => f.shape[3]), 3) as tf.Tensor4D[];
  x.dispose();
  return parts;
}

export function statsTensors(stats: BatchStats): tf.Tensor1D[] {
  return [stats.mean, stats.invStd];
}

/**
 * torchvision's memory-efficient bottleneck: concat(features) → BN1 → ReLU → 1×1 conv.
 * Keeps only its inputs and norm1's per-channel statistics.
 */
export function bottleneckOp(features: tf.Tensor4D[], norm1: TrainingNorm, kernel1: tf.Tensor4D): tf.Tensor4D {
  const count = features.length;
  return customOp<tf.Tensor4D>((inputs, save) => {
    const x = concatFeatures(inputs.slice(0, count) as tf.Tensor4D[]);
    const { z, stats } = bottleneckForward(x, norm1, kernel1);
    save([...inputs, ...statsTensors(stats)]);
    return {
      value: z,
      gradFunc: (dz, saved) => {
        const inputsSaved = saved.slice(0, count) as tf.Tensor4D[];
        const [gamma, beta, kernel] = saved.slice(count, count + 3) as [tf.Tensor1D, tf.Tensor1D, tf.Tensor4D];
        const [mean, invStd] = saved.slice(count + 3) as tf.Tensor1D[];
        const xRe = concatFeatures(inputsSaved);
        const grads = bottleneckBackward(xRe, { gamma, beta }, kernel, { mean, invStd }, dz);
        xRe.dispose();
        release(mean, invStd);
        return [...splitChannels(grads.dx, inputsSaved), grads.dGamma, grads.dBeta, grads.dKernel];
      },
    };
  })([...features, norm1.gamma, norm1.beta, kernel1]);
}

export function layerParamTensors(params: DenseLayerParams): tf.Tensor[] {
  return [params.norm1.gamma, params.norm1.beta, params.kernel1, params.norm2.gamma, params.norm2.beta, params.kernel2];
}

export const PARAMS_PER_LAYER = 6;

/** Rebuilds a layer's parameters from the op's saved clones, keeping the layer's stat recorders. */
export function paramsFromSaved(saved: tf.Tensor[], like: DenseLayerParams): DenseLayerParams {
  const [gamma1, beta1, kernel1, gamma2, beta2, kernel2] = saved;
  return {
    norm1: { gamma: gamma1 as tf.Tensor1D, beta: beta1 as tf.Tensor1D, record: like.norm1.record },
    kernel1: kernel1 as tf.Tensor4D,
    norm2: { gamma: gamma2 as tf.Tensor1D, beta: beta2 as tf.Tensor1D, record: like.norm2.record },
    kernel2: kernel2 as tf.Tensor4D,
  };
}

/** What one dense layer's recomputing backward needs besides its input. */
export interface LayerTape {
  z: tf.Tensor4D;
  stats1: BatchStats;
  stats2: BatchStats;
  mask?: tf.Tensor;
}

function layerTapeTensors(tape: LayerTape): tf.Tensor[] {
  return [tape.z, ...statsTensors(tape.stats1), ...statsTensors(tape.stats2), ...(tape.mask ? [tape.mask] : [])];
}

function layerTapeFromSaved(saved: tf.Tensor[], hasMask: boolean): LayerTape {
  const [z, mean1, invStd1, mean2, invStd2, mask] = saved;
  return {
    z: z as tf.Tensor4D,
    stats1: { mean: mean1 as tf.Tensor1D, invStd: invStd1 as tf.Tensor1D },
    stats2: { mean: mean2 as tf.Tensor1D, invStd: invStd2 as tf.Tensor1D },
    mask: hasMask ? mask : undefined,
  };
}

const TAPE_TENSORS = 5;

/** One dense layer's training forward from its concatenated input; returns the new features and its tape. */
export function denseLayerForward(x: tf.Tensor4D, params: DenseLayerParams, dropout?: DropoutSpec): { features: tf.Tensor4D; tape: LayerTape } {
  const { z, stats: stats1 } = bottleneckForward(x, params.norm1, params.kernel1);
  const growth = params.kernel2.shape[3];
  const mask = dropout && dropout.rate > 0 ? dropoutMask([...z.shape.slice(0, 3), growth], dropout) : undefined;
  const { features, stats: stats2 } = newFeaturesForward(z, params.norm2, params.kernel2, mask);
  return { features, tape: { z, stats1, stats2, mask } };
}

/** One dense layer's backward from its concatenated input x; frees its tape. Returns dL/dx and the weight grads. */
function denseLayerBackward(x: tf.Tensor4D, params: DenseLayerParams, tape: LayerTape, dFeatures: tf.Tensor4D): { dx: tf.Tensor4D; grads: tf.Tensor[] } {
  const second = newFeaturesBackward(tape.z, params.norm2, params.kernel2, tape.stats2, dFeatures, tape.mask);
  release(tape.z, tape.mask, tape.stats2.mean, tape.stats2.invStd);
  const first = bottleneckBackward(x, params.norm1, params.kernel1, tape.stats1, second.dz);
  release(second.dz, tape.stats1.mean, tape.stats1.invStd);
  return {
    dx: first.dx,
    grads: [first.dGamma, first.dBeta, first.dKernel, second.dGamma, second.dBeta, second.dKernel],
  };
}

/**
 * A whole dense layer as one op over (earlier feature maps, its six weights): keeps its inputs, the 1×1 output
 * and per-channel statistics; recomputes both BN → ReLU pairs in backprop.
 */
export function denseLayerOp(features: tf.Tensor4D[], params: DenseLayerParams, dropout?: DropoutSpec): tf.Tensor4D {
  const count = features.length;
  const hasMask = !!dropout && dropout.rate > 0;
  return customOp<tf.Tensor4D>((inputs, save) => {
    const x = concatFeatures(inputs.slice(0, count) as tf.Tensor4D[]);
    const { features: out, tape } = denseLayerForward(x, params, dropout);
    x.dispose();
    save([...inputs, ...layerTapeTensors(tape)]);
    return {
      value: out,
      gradFunc: (dy, saved) => {
        const inputsSaved = saved.slice(0, count) as tf.Tensor4D[];
        const savedParams = paramsFromSaved(saved.slice(count, count + PARAMS_PER_LAYER), params);
        const layerTape = layerTapeFromSaved(saved.slice(count + PARAMS_PER_LAYER), hasMask);
        const xRe = concatFeatures(inputsSaved);
        const { dx, grads } = denseLayerBackward(xRe, savedParams, layerTape, dy);
        xRe.dispose();
        return [...splitChannels(dx, inputsSaved), ...grads];
      },
    };
  })([...features, ...layerParamTensors(params)]);
}

/**
 * A whole dense block as one op over (block input, every layer's six weights). Output: the concatenation of the
 * input and all new features. Keeps that output (every layer's input is a channel prefix of it), each layer's
 * 1×1 output and statistics; the backward walks the layers in reverse with one gradient buffer for the prefix.
 */
export function denseBlockOp(input: tf.Tensor4D, layers: DenseLayerParams[], dropout?: BlockDropout): tf.Tensor4D {
  const specs = perLayerDropout(layers.length, dropout);
  const hasMask = !!specs[0] && specs[0].rate > 0;
  const tapeSize = TAPE_TENSORS + (hasMask ? 1 : 0);
  const inputChannels = input.shape[3];
  return customOp<tf.Tensor4D>((inputs, save) => {
    const [x0] = inputs as tf.Tensor4D[];
    const newFeatures: tf.Tensor4D[] = [];
    const tapes: LayerTape[] = [];
    let current = x0;
    for (const [l, params] of layers.entries()) {
      const { features, tape } = denseLayerForward(current, params, specs[l]);
      newFeatures.push(features);
      tapes.push(tape);
      const next = tf.concat([current, features], 3);
      if (current !== x0) current.dispose();
      current = next;
    }
    tf.dispose(newFeatures);
    const output = current;
    save([output, ...inputs.slice(1), ...tapes.flatMap(layerTapeTensors)]);
    return {
      value: output,
      gradFunc: (dOutput, saved) => {
        const [outputSaved] = saved as tf.Tensor4D[];
        const paramsSaved = layers.map((like, l) => paramsFromSaved(saved.slice(1 + l * PARAMS_PER_LAYER, 1 + (l + 1) * PARAMS_PER_LAYER), like));
        const tapeStart = 1 + layers.length * PARAMS_PER_LAYER;
        const grads: tf.Tensor[][] = new Array(layers.length);
        let dPrefix = dOutput;
        for (let l = layers.length - 1; l >= 0; l--) {
          const growth = paramsSaved[l].kernel2.shape[3];
          const width = dPrefix.shape[3] - growth;
          const [n, h, w] = dPrefix.shape;
          const dFeatures = tf.slice(dPrefix, [0, 0, 0, width], [n, h, w, growth]);
          const layerTape = layerTapeFromSaved(saved.slice(tapeStart + l * tapeSize, tapeStart + (l + 1) * tapeSize), hasMask);
          const x = tf.slice(outputSaved, [0, 0, 0, 0], [n, h, w, width]);
          const step = denseLayerBackward(x, paramsSaved[l], layerTape, dFeatures);
          release(x, dFeatures);
          grads[l] = step.grads;
          const dRest = tf.slice(dPrefix, [0, 0, 0, 0], [n, h, w, width]);
          if (dPrefix !== dOutput) dPrefix.dispose();
          dPrefix = tf.add(dRest, step.dx);
          release(dRest, step.dx);
        }
        release(outputSaved);
        if (dPrefix.shape[3] !== inputChannels) throw new Error('denseBlockOp: gradient width does not match the block input');
        return [dPrefix, ...grads.flat()];
      },
    };
  })([input, ...layers.flatMap(layerParamTensors)]);
}
