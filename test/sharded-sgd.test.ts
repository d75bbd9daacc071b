/**
 * The sharded SGD of data-parallel workers (src/step/sharded-sgd.ts) against TrainingOptimizer, the tfjs path
 * it replaces: the same weights and momentum bit for bit, on cpu and wasm, Nesterov or plain, with weight
 * decay and a features learning-rate scale, whatever the shares; and its state in TrainingOptimizer's names,
 * so a snapshot written from workers resumes in one process and back.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { float32Values } from '../src/backend/values.js';
import { TrainingOptimizer, type OptimizerSettings } from '../src/step/optimizers.js';
import { flatLayout, ShardedSgd } from '../src/step/sharded-sgd.js';

function values(n: number, seed: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = Math.fround((s / 2 ** 31 - 1) * scale);
  }
  return out;
}

const SHAPES = [[3, 3, 4, 8], [8], [8], [1, 1, 8, 6], [6, 5], [5]];
const CLASSIFIER = new Set([4, 5]);
let runs = 0;

/** Runs `steps` updates both ways from the same weights and gradients; returns both sides' weights and states. */
async function compare(settings: OptimizerSettings & { featuresLrScale: number }, shares: number, steps: number, parts = 2) {
  const run = runs++;
  const make = (tag: string) => SHAPES.map((shape, i) => tf.variable(tf.tensor(values(shape.reduce((a, b) => a * b, 1), 10 + i, 0.5), shape), true, `${tag}${i}_${run}`));
  const reference = make('r');
  const sharded = make('s');
  const optimizer = new TrainingOptimizer(settings);
  const layout = flatLayout(sharded, CLASSIFIER);
  const share = Math.ceil(layout.total / shares);
  const sgds = Array.from({ length: shares }, (_, r) => new ShardedSgd(settings, layout, Math.min(layout.total, r * share), Math.min(layout.total, (r + 1) * share)));
  for (let step = 0; step < steps; step++) {
    const lr = settings.lr * (1 - step / (2 * steps)); // a schedule: the rate changes between steps
    const grads = SHAPES.map((shape, i) => values(shape.reduce((a, b) => a * b, 1), 100 * step + i, 1e-2));
    const named: tf.NamedTensorMap = {};
    reference.forEach((v, i) => (named[v.name] = tf.tensor(grads[i]!, v.shape)));
    optimizer.setLearningRate(lr);
    optimizer.apply(named, { features: reference.filter((_, i) => !CLASSIFIER.has(i)), classifier: reference.filter((_, i) => CLASSIFIER.has(i)) });
    // The gradient in `parts` pieces whose float64 sum is the gradient (two: the two-worker loop).
    const flat = new Float32Array(layout.total);
    grads.forEach((g, i) => flat.set(g, layout.offsets[i]));
    const pieces = Array.from({ length: parts }, (_, r) => (r === 0 ? flat : new Float32Array(layout.total)));
    const out = new Float32Array(layout.total);
    for (const sgd of sgds) {
      sgd.setLearningRate(lr);
      sgd.update(pieces, out, SHAPES.map(() => true), (i) => float32Values(sharded[i]!));
    }
    sharded.forEach((v, i) => v.assign(tf.tensor(out.slice(layout.offsets[i]!, layout.offsets[i]! + v.size), v.shape)));
  }
  const momentum = new Float32Array(layout.total);
  for (const sgd of sgds) sgd.writeMomentum(momentum);
  const state = sgds[0]!.state(momentum, sharded);
  const expected = await optimizer.getState();
  return { reference, sharded, state, expected, layout, sgds };
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`ShardedSgd on ${backend}`, () => {
    for (const [label, settings] of [
      ['Nesterov, weight decay, features at 0.1×', { name: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 1e-4, nesterov: true, featuresLrScale: 0.1 }],
      ['plain momentum, no decay', { name: 'sgd', lr: 0.1, momentum: 0.8, weightDecay: 0, nesterov: false, featuresLrScale: 1 }],
      ['plain momentum, weight decay', { name: 'sgd', lr: 0.1, momentum: 0.8, weightDecay: 5e-4, nesterov: false, featuresLrScale: 1 }],
      ['Nesterov, no decay', { name: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 0, nesterov: true, featuresLrScale: 0.5 }],
    ] as const) {
      it(`equals TrainingOptimizer bit for bit: ${label}, 3 shares, 4 steps`, async () => {
        await initBackend(backend);
        const { reference, sharded, state, expected } = await compare(settings, 3, 4);
        reference.forEach((v, i) => expect(Array.from(sharded[i]!.dataSync())).toEqual(Array.from(v.dataSync())));
        // The same names (but for the variable prefix), order and values as TrainingOptimizer.getState.
        const rename = (name: string) => name.replace(/:[rs](\d+)_\d+\//, ':$1/');
        expect(state.map((s) => rename(s.name))).toEqual(expected.map((s) => rename(s.name)));
        state.forEach((s, i) => expect(Array.from(s.tensor.dataSync())).toEqual(Array.from(expected[i]!.tensor.dataSync())));
        expect(state.find((s) => s.name === 'features:iter')!.tensor.dataSync()[0]).toBe(4);
        tf.dispose([...reference, ...sharded, ...state.map((s) => s.tensor), ...expected.map((s) => s.tensor)]);
      });
    }

    it('restores its share from TrainingOptimizer state and continues identically', async () => {
      await initBackend(backend);
      const settings = { name: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 1e-4, featuresLrScale: 1 } as const;
      const { sharded, state, layout, sgds } = await compare(settings, 2, 2, 3);
      const fresh = sgds.map((sgd) => new ShardedSgd(settings, layout, sgd.start, sgd.end));
      for (const sgd of fresh) sgd.setState(state, sharded);
      const momentum = new Float32Array(layout.total);
      for (const sgd of fresh) sgd.writeMomentum(momentum);
      const again = fresh[1]!.state(momentum, sharded);
      expect(again.map((s) => s.name)).toEqual(state.map((s) => s.name));
      again.forEach((s, i) => expect(Array.from(s.tensor.dataSync())).toEqual(Array.from(state[i]!.tensor.dataSync())));
      tf.dispose([...sharded, ...state.map((s) => s.tensor), ...again.map((s) => s.tensor)]);
    });
  });
}

it('refuses Adam and state it does not know', () => {
  const layout = flatLayout([], new Set());
  expect(() => new ShardedSgd({ name: 'adam', lr: 1e-3, momentum: 0, weightDecay: 0, featuresLrScale: 1 }, layout, 0, 0)).toThrow(/not SGD/);
  const sgd = new ShardedSgd({ name: 'sgd', lr: 1e-3, momentum: 0.9, weightDecay: 0, featuresLrScale: 1 }, layout, 0, 0);
  expect(() => sgd.setState([{ name: 'features:x/m', tensor: tf.scalar(0) }], [])).toThrow(/unexpected optimizer state 'features:x\/m'/);
  expect(() => sgd.setState([{ name: 'features:x/momentum', tensor: tf.scalar(0) }], [])).toThrow(/'features:x\/momentum' \(1 values\) does not fit the features group's variable 0 \(none\)/);
});
