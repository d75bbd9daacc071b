import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { bottleneckOp, denseBlockOp, denseLayerOp, type DenseLayerParams } from '../src/checkpoint/dense-ops.js';
import { headOp, stemTailOp, transitionOp } from '../src/checkpoint/stage-ops.js';
import type { TrainingNorm } from '../src/checkpoint/batch-norm.js';
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
  it('naive, layer and bottleneck agree on logits, loss, every gradient and running statistics', () => {
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
