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
import { sgdTwoKernel } from '../src/backend/sgd-kernel.js';
import { SGD_CHUNK } from '../src/backend/wasm/sgd/sgd.js';
import { SGD_WASM } from '../src/backend/wasm/sgd/sgd-wasm.js';
import { assembleSgd } from '../scripts/wasm-source.js';
import { uniformValues } from './helpers/tensors.js';

function values(n: number, seed: number, scale: number): Float32Array {
  return uniformValues(n, seed, -scale, scale);
}

// One variable larger than the wasm kernel's chunk (SGD_CHUNK), sizes that leave tails of 1–3 past a multiple of 4.
const SHAPES = [[3, 3, 4, 8], [8], [8], [3, 3, 64, 128], [1, 1, 8, 6], [6, 5], [5]];
const CLASSIFIER = new Set([5, 6]);
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

describe('the two-worker update on the wasm heap (sgd.wat)', () => {
  it('the committed module is sgd.wat assembled (npx tsx scripts/build-wasm.ts)', async () => {
    expect(Buffer.from(await assembleSgd()).toString('base64')).toBe(SGD_WASM);
  });

  /** The JavaScript loop's arithmetic, element by element. */
  function reference(p0: Float32Array, p1: Float32Array, w: Float32Array, a: Float32Array, k: { m: number; wd: number; c: number; nesterov: boolean; decay: boolean }) {
    const f = Math.fround;
    const out = new Float32Array(w.length);
    const acc = Float32Array.from(a);
    for (let j = 0; j < w.length; j++) {
      let g = f(0 + p0[j]! + p1[j]!);
      if (k.decay) g = f(g + f(w[j]! * k.wd));
      acc[j] = f(f(k.m * acc[j]!) + g);
      out[j] = k.nesterov ? f(f(k.c * f(g + f(acc[j]! * k.m))) + w[j]!) : f(f(k.c * acc[j]!) + w[j]!);
    }
    return { out, acc };
  }

  it('is chosen on wasm only, and gives the JavaScript loop\'s bits (across chunks, with tails) in every variant', async () => {
    await initBackend('cpu');
    expect(sgdTwoKernel()).toBeNull();
    await initBackend('wasm');
    const kernel = sgdTwoKernel()!;
    expect(kernel).not.toBeNull();
    const n = SGD_CHUNK + 7;
    const p0 = values(n, 1, 1e-2);
    const p1 = values(n, 2, 1e-2);
    p0[5] = -0;
    p1[5] = -0;
    const weights = tf.tensor(values(n, 3, 0.5));
    for (const nesterov of [true, false]) {
      for (const decay of [true, false]) {
        const k = { m: Math.fround(0.9), wd: Math.fround(decay ? 1e-4 : 0), c: Math.fround(-0.05), nesterov, decay };
        const a = values(n, 4, 1e-3);
        a[5] = 0; // with −0 + −0 above: the sign of a zero gradient matters here
        const w = float32Values(weights);
        const expected = reference(p0, p1, w, a, k);
        const out = new Float32Array(n);
        expect(kernel(p0, p1, w, a, out, k)).toBe(true);
        expect(Buffer.from(out.buffer).equals(Buffer.from(expected.out.buffer))).toBe(true);
        expect(Buffer.from(a.buffer).equals(Buffer.from(expected.acc.buffer))).toBe(true);
      }
    }
    // Not on the heap: nothing done, the caller's loop runs.
    const out = new Float32Array(4);
    expect(kernel(p0.subarray(0, 4), p1.subarray(0, 4), new Float32Array(4), new Float32Array(4), out, { m: 0.9, wd: 0, c: -0.1, nesterov: true, decay: false })).toBe(false);
    expect(Array.from(out)).toEqual([0, 0, 0, 0]);
    weights.dispose();
  });
});
