import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { bottleneckOp, denseBlockOp, denseLayerOp, type DenseLayerParams } from '../src/recompute/dense-ops.js';
import { headOp, transitionOp } from '../src/recompute/stage-ops.js';
import { stemTailOp, stemTailRecomputeOp } from '../src/recompute/stem-ops.js';
import { denseBlockRecomputeOp } from '../src/recompute/block-op.js';
import type { TrainingNorm } from '../src/norm/batch-norm.js';
import { withDropoutContext } from '../src/ops/dropout.js';
import { softmaxCrossEntropy } from '../src/step/loss.js';
import { MODES, perturbNorms, tinyDenseNet } from './helpers/models.js';
import { gradientErrors, relativeError, values } from './helpers/tensors.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

interface StepResult {
  logits: Float32Array;
  loss: number;
  grads: Map<string, Float32Array>;
  running: Map<string, Float32Array>;
}

function trainingForwardBackward(model: tf.LayersModel, xs: tf.Tensor, ys: tf.Tensor): StepResult {
  let logits: Float32Array = new Float32Array();
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(() => {
    const out = model.apply(xs, { training: true }) as tf.Tensor;
    logits = values(out);
    return softmaxCrossEntropy(ys, out);
  }, vars);
  const names = new Map(model.trainableWeights.map((w) => [(w.read() as tf.Variable).name, w.originalName]));
  const result: StepResult = {
    logits,
    loss: value.dataSync()[0],
    grads: new Map(Object.entries(grads).map(([name, g]) => [names.get(name) ?? name, values(g)])),
    running: new Map(model.nonTrainableWeights.map((w) => [w.originalName, values(w.read())])),
  };
  tf.dispose([value, ...Object.values(grads)]);
  return result;
}

describe('memory modes give identical training results', () => {
  it('naive, layer, bottleneck and block agree on logits, loss, every gradient and running statistics', () => {
    const xs = tf.randomNormal([3, 32, 32, 3], 0, 1, 'float32', 11);
    const ys = tf.oneHot([0, 2, 1], 3);
    const results = MODES.map((mode) => {
      const model = perturbNorms(tinyDenseNet(mode), 3);
      const result = trainingForwardBackward(model, xs, ys);
      model.dispose();
      return result;
    });
    const [naive, ...others] = results;
    expect(naive.grads.size).toBe(tinyDenseNet('naive').trainableWeights.length);
    for (const other of others) {
      expect(relativeError(other.logits, naive.logits)).toBeLessThan(1e-5);
      expect(Math.abs(other.loss - naive.loss) / Math.abs(naive.loss)).toBeLessThan(1e-5);
      expect([...other.grads.keys()].sort()).toEqual([...naive.grads.keys()].sort());
      for (const [name, error] of gradientErrors(other.grads, naive.grads)) expect(error, name).toBeLessThan(1e-5);
      for (const [name, stat] of naive.running) {
        expect(relativeError(other.running.get(name)!, stat), name).toBeLessThan(1e-5);
      }
    }
    tf.dispose([xs, ys]);
  });

  it('running statistics follow PyTorch: momentum 0.1 and the unbiased batch variance', () => {
    const model = tinyDenseNet('layer');
    const xs = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 5);
    const stem = model.getLayer('stem');
    const kernel = stem.getWeights()[0];
    const conv = tf.conv2d(xs as tf.Tensor4D, kernel as tf.Tensor4D, 2, [[0, 0], [3, 3], [3, 3], [0, 0]]);
    const { mean, variance } = tf.moments(conv, [0, 1, 2]);
    const count = conv.size / conv.shape[3];
    const expectedMean = tf.mul(mean, 0.1);
    const expectedVar = tf.add(0.9, tf.mul(variance, (0.1 * count) / (count - 1)));
    tf.dispose(model.apply(xs, { training: true }) as tf.Tensor);
    const running = new Map(model.nonTrainableWeights.map((w) => [w.originalName, w.read()]));
    expect(relativeError(running.get('stem/norm0/moving_mean')!, expectedMean)).toBeLessThan(1e-5);
    expect(relativeError(running.get('stem/norm0/moving_variance')!, expectedVar)).toBeLessThan(1e-5);
    tf.dispose(model.apply(xs, { training: false }) as tf.Tensor);
    expect(relativeError(model.nonTrainableWeights[0].read(), running.get(model.nonTrainableWeights[0].originalName)!)).toBe(0);
    model.dispose();
  });
});

/** Directional finite difference of a scalar function against its gradient, in float32. */
function checkDirectional(f: (inputs: tf.Tensor[]) => tf.Scalar, inputs: tf.Tensor[], seed: number): { numeric: number; analytic: number } {
  const grads = tf.grads((...xs: tf.Tensor[]) => f(xs))(inputs);
  const directions = inputs.map((x, i) => tf.randomNormal(x.shape, 0, 1, 'float32', seed + i));
  const analytic = grads.reduce((sum, g, i) => sum + tf.sum(tf.mul(g, directions[i])).dataSync()[0], 0);
  // Small enough that no ReLU kink is crossed, large enough for float32 round-off (measured: ~4e-5 relative).
  const eps = 3e-4;
  const shifted = (sign: number) => f(inputs.map((x, i) => tf.add(x, tf.mul(directions[i], sign * eps)))).dataSync()[0];
  const numeric = (shifted(1) - shifted(-1)) / (2 * eps);
  return { numeric, analytic };
}

describe('custom ops pass finite-difference gradient checks', () => {
  const noRecord: TrainingNorm['record'] = () => {};
  const norm = (c: number, seed: number): TrainingNorm => ({
    gamma: tf.randomUniform([c], 0.5, 1.5, 'float32', seed) as tf.Tensor1D,
    beta: tf.randomNormal([c], 0, 0.2, 'float32', seed + 1) as tf.Tensor1D,
    record: noRecord,
  });
  const weights = (shape: [number, number, number, number], seed: number) => tf.randomNormal(shape, 0, 0.5, 'float32', seed) as tf.Tensor4D;
  const projection = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);
  const scalarOf = (out: tf.Tensor, r: tf.Tensor) => tf.sum(tf.mul(out, r)) as tf.Scalar;

  function expectClose({ numeric, analytic }: { numeric: number; analytic: number }) {
    expect(Math.abs(numeric - analytic) / Math.max(Math.abs(analytic), 1e-3)).toBeLessThan(1e-3);
  }

  it('bottleneckOp', () => {
    const f1 = tf.randomNormal([2, 4, 4, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const f2 = tf.randomNormal([2, 4, 4, 2], 0, 1, 'float32', 2) as tf.Tensor4D;
    const n = norm(5, 3);
    const w = weights([1, 1, 5, 4], 4);
    const r = projection([2, 4, 4, 4], 5);
    expectClose(checkDirectional(([a, b, g, be, k]) =>
      scalarOf(bottleneckOp([a, b] as tf.Tensor4D[], { gamma: g as tf.Tensor1D, beta: be as tf.Tensor1D, record: noRecord }, k as tf.Tensor4D), r),
    [f1, f2, n.gamma, n.beta, w], 10));
  });

  function layerParams(inputs: tf.Tensor[], offset: number): DenseLayerParams {
    const [g1, b1, k1, g2, b2, k2] = inputs.slice(offset, offset + 6);
    return {
      norm1: { gamma: g1 as tf.Tensor1D, beta: b1 as tf.Tensor1D, record: noRecord },
      kernel1: k1 as tf.Tensor4D,
      norm2: { gamma: g2 as tf.Tensor1D, beta: b2 as tf.Tensor1D, record: noRecord },
      kernel2: k2 as tf.Tensor4D,
    };
  }
  function randomLayer(cin: number, width: number, growth: number, seed: number): tf.Tensor[] {
    const n1 = norm(cin, seed);
    const n2 = norm(width, seed + 2);
    return [n1.gamma, n1.beta, weights([1, 1, cin, width], seed + 4), n2.gamma, n2.beta, weights([3, 3, width, growth], seed + 5)];
  }

  it('denseLayerOp', () => {
    const f1 = tf.randomNormal([2, 5, 5, 3], 0, 1, 'float32', 21) as tf.Tensor4D;
    const f2 = tf.randomNormal([2, 5, 5, 2], 0, 1, 'float32', 22) as tf.Tensor4D;
    const params = randomLayer(5, 4, 2, 23);
    const r = projection([2, 5, 5, 2], 29);
    expectClose(checkDirectional((xs) => scalarOf(denseLayerOp([xs[0], xs[1]] as tf.Tensor4D[], layerParams(xs, 2)), r), [f1, f2, ...params], 30));
  });

  it('denseBlockOp', () => {
    const x = tf.randomNormal([2, 4, 4, 3], 0, 1, 'float32', 41) as tf.Tensor4D;
    const l1 = randomLayer(3, 4, 2, 42);
    const l2 = randomLayer(5, 4, 2, 50);
    const r = projection([2, 4, 4, 7], 59);
    expectClose(checkDirectional((xs) => scalarOf(denseBlockOp(xs[0] as tf.Tensor4D, [layerParams(xs, 1), layerParams(xs, 7)]), r), [x, ...l1, ...l2], 60));
  });

  it('denseBlockRecomputeOp (block mode): channel groups, input cut into chunks, chunks merged into groups', () => {
    // Output width 3 + 3·1 = 6 → groups of ⌈6/4⌉ = 2 channels: the input is cut into chunks of 2 + 1, and
    // single-channel features merge two by two into one group.
    const x = tf.randomNormal([2, 4, 4, 3], 0, 1, 'float32', 141) as tf.Tensor4D;
    const layers = [randomLayer(3, 4, 1, 142), randomLayer(4, 4, 1, 150), randomLayer(5, 4, 1, 158)];
    const r = projection([2, 4, 4, 6], 159);
    const f = (xs: tf.Tensor[]) => scalarOf(denseBlockRecomputeOp(xs[0] as tf.Tensor4D, [layerParams(xs, 1), layerParams(xs, 7), layerParams(xs, 13)]), r);
    expectClose(checkDirectional(f, [x, ...layers.flat()], 160));
  });

  it('denseBlockRecomputeOp equals denseBlockOp: dropout, a wide input cut into chunks', () => {
    // Output width 5 + 1 + 1 + 2 = 9 → groups of 3 channels: input chunks of 3 + 2, the 1-channel features merged.
    const x = tf.randomNormal([2, 4, 4, 5], 0, 1, 'float32', 241) as tf.Tensor4D;
    const layers = [randomLayer(5, 4, 1, 242), randomLayer(6, 4, 1, 250), randomLayer(7, 4, 2, 258)];
    const r = projection([2, 4, 4, 9], 259);
    // Both ops draw their masks in the same step of the same run: the same masks.
    const run = (op: typeof denseBlockOp) =>
      withDropoutContext({ seed: 5, step: [0] }, () =>
        tf.grads((...xs: tf.Tensor[]) => scalarOf(op(xs[0] as tf.Tensor4D, [layerParams(xs, 1), layerParams(xs, 7), layerParams(xs, 13)], { rate: 0.3 }), r))([x, ...layers.flat()]),
      );
    const reference = run(denseBlockOp);
    const block = run(denseBlockRecomputeOp);
    reference.forEach((g, i) => expect(relativeError(block[i], g), `input ${i}`).toBeLessThan(1e-5));
  });

  it('stemTailRecomputeOp and transitionOp in channel groups', () => {
    const image = tf.randomNormal([2, 12, 12, 3], 0, 1, 'float32', 191) as tf.Tensor4D;
    const kernel = weights([3, 3, 3, 16], 192);
    const n16 = norm(16, 193);
    const convolve = (img: tf.Tensor4D, k: tf.Tensor4D) => tf.conv2d(img, k, 2, 'same');
    const stem = ([k, g, b]: tf.Tensor[]) =>
      scalarOf(stemTailRecomputeOp(convolve(image, k as tf.Tensor4D), { gamma: g as tf.Tensor1D, beta: b as tf.Tensor1D, record: noRecord }, { image, kernel: k as tf.Tensor4D, convolve }), projection([2, 3, 3, 16], 194));
    expectClose(checkDirectional(stem, [kernel, n16.gamma, n16.beta], 195));
    const x = tf.randomNormal([2, 6, 6, 6], 0, 1, 'float32', 196) as tf.Tensor4D;
    const n6 = norm(6, 197);
    const k6 = weights([1, 1, 6, 3], 198);
    const transition = ([a, g, b, w]: tf.Tensor[]) =>
      scalarOf(transitionOp(a as tf.Tensor4D, { gamma: g as tf.Tensor1D, beta: b as tf.Tensor1D, record: noRecord }, w as tf.Tensor4D, { channelGroups: 4 }), projection([2, 3, 3, 3], 199));
    expectClose(checkDirectional(transition, [x, n6.gamma, n6.beta, k6], 200));
  });

  it('stemTailOp, transitionOp and headOp', () => {
    const x = tf.randomNormal([2, 6, 6, 3], 0, 1, 'float32', 71) as tf.Tensor4D;
    const n = norm(3, 72);
    const k = weights([1, 1, 3, 2], 74);
    const asNorm = (g: tf.Tensor, b: tf.Tensor): TrainingNorm => ({ gamma: g as tf.Tensor1D, beta: b as tf.Tensor1D, record: noRecord });
    expectClose(checkDirectional(([a, g, b]) => scalarOf(stemTailOp(a as tf.Tensor4D, asNorm(g, b)), projection([2, 3, 3, 3], 75)), [x, n.gamma, n.beta], 80));
    expectClose(checkDirectional(([a, g, b, w]) => scalarOf(transitionOp(a as tf.Tensor4D, asNorm(g, b), w as tf.Tensor4D), projection([2, 3, 3, 2], 76)), [x, n.gamma, n.beta, k], 81));
    expectClose(checkDirectional(([a, g, b]) => scalarOf(headOp(a as tf.Tensor4D, asNorm(g, b)), projection([2, 3], 77)), [x, n.gamma, n.beta], 82));
  });
});
