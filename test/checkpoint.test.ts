import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkpoint } from '../src/recompute/checkpoint.js';
import { relativeError } from './helpers/tensors.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** A small two-layer MLP block: relu(x·w1)·w2, with a BN-free nonlinearity to make the recomputation matter. */
const block = (x: tf.Tensor, w1: tf.Tensor, w2: tf.Tensor) => tf.matMul(tf.tanh(tf.matMul(x, w1)), w2);

describe('checkpoint(fn)', () => {
  const x = tf.randomNormal([4, 5], 0, 1, 'float32', 1);
  const w1 = tf.variable(tf.randomNormal([5, 6], 0, 0.5, 'float32', 2));
  const w2 = tf.variable(tf.randomNormal([6, 3], 0, 0.5, 'float32', 3));
  const checkpointed = checkpoint(block);
  const lossOf = (f: typeof block) => (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.square(f(a, b, c))) as tf.Scalar;

  it('gives the plain function’s gradients inside tf.grads', () => {
    const plain = tf.grads(lossOf(block))([x, w1, w2]);
    const wrapped = tf.grads(lossOf(checkpointed))([x, w1, w2]);
    plain.forEach((g, i) => expect(relativeError(wrapped[i], g)).toBeLessThan(1e-6));
  });

  it('gives the plain function’s gradients inside tf.variableGrads, and the outer backward survives', () => {
    const plain = tf.variableGrads(() => lossOf(block)(x, w1, w2), [w1, w2]);
    const wrapped = tf.variableGrads(() => tf.add(lossOf(checkpointed)(x, w1, w2), tf.sum(tf.mul(w1, 0.5))) as tf.Scalar, [w1, w2]);
    expect(relativeError(wrapped.grads[w2.name], plain.grads[w2.name])).toBeLessThan(1e-6);
    expect(relativeError(tf.sub(wrapped.grads[w1.name], 0.5), plain.grads[w1.name])).toBeLessThan(1e-5);
  });

  it('keeps no intermediates: the tape saves only the inputs, and nothing leaks', () => {
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      const { value, grads } = tf.variableGrads(() => lossOf(checkpointed)(x, w1, w2), [w1, w2]);
      tf.dispose([value, ...Object.values(grads)]);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('works nested twice (a checkpoint inside a checkpoint)', () => {
    const inner = checkpoint((a: tf.Tensor, b: tf.Tensor) => tf.tanh(tf.matMul(a, b)));
    const outer = checkpoint((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.matMul(inner(a, b), c));
    const plain = tf.grads(lossOf(block))([x, w1, w2]);
    const nested = tf.grads(lossOf(outer))([x, w1, w2]);
    plain.forEach((g, i) => expect(relativeError(nested[i], g)).toBeLessThan(1e-6));
  });

  it('trains inside model.fit like the plain layer', async () => {
    class Mlp extends tf.layers.Layer {
      static className = 'CheckpointTestMlp';
      private w1!: tf.LayerVariable;
      private w2!: tf.LayerVariable;
      constructor(private readonly useCheckpoint: boolean) {
        super({});
      }
      override build(): void {
        this.w1 = this.addWeight('w1', [5, 6], 'float32', tf.initializers.randomNormal({ stddev: 0.5, seed: 4 }));
        this.w2 = this.addWeight('w2', [6, 3], 'float32', tf.initializers.randomNormal({ stddev: 0.5, seed: 5 }));
        this.built = true;
      }
      override computeOutputShape(shape: tf.Shape | tf.Shape[]): tf.Shape {
        return [(shape as tf.Shape)[0], 3];
      }
      override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
        const input = Array.isArray(inputs) ? inputs[0] : inputs;
        const f = this.useCheckpoint ? checkpointed : block;
        return f(input, this.w1.read(), this.w2.read());
      }
    }
    const fit = async (useCheckpoint: boolean) => {
      const model = tf.sequential({ layers: [tf.layers.inputLayer({ inputShape: [5] }), new Mlp(useCheckpoint)] });
      model.compile({ optimizer: tf.train.sgd(0.1), loss: 'meanSquaredError' });
      const history = await model.fit(x, tf.ones([4, 3]), { epochs: 3, batchSize: 4, verbose: 0, shuffle: false });
      const weights = model.getWeights().map((w) => Float32Array.from(w.dataSync()));
      model.dispose();
      return { loss: history.history.loss as number[], weights };
    };
    const plain = await fit(false);
    const wrapped = await fit(true);
    expect(wrapped.loss[2]).toBeLessThan(wrapped.loss[0]);
    wrapped.loss.forEach((l, i) => expect(Math.abs(l - plain.loss[i])).toBeLessThan(1e-6 * Math.abs(plain.loss[i]) + 1e-7));
    wrapped.weights.forEach((w, i) => expect(relativeError(w, plain.weights[i])).toBeLessThan(1e-5));
  });

  it('rejects what is not a function or not a tensor, naming it', () => {
    expect(() => checkpoint(42 as unknown as typeof block)).toThrow(/fn must be a function/);
    expect(() => checkpointed(x, [1, 2] as unknown as tf.Tensor, w2)).toThrow(/argument 1 .* must be a tf.Tensor/);
  });
});
