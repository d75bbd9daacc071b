import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { softmaxCrossEntropy } from '../src/step/loss.js';
import { MODES, perturbNorms, tinyDenseNet } from './helpers/models.js';
import { gradientErrors, values } from './helpers/tensors.js';
import type { MemoryMode } from '../src/layers/config.js';

afterAll(async () => {
  await initBackend('cpu');
});

/** Every weight gradient (by weight name) and the loss of one training step on the current backend. */
function gradients(mode: MemoryMode): Map<string, Float32Array> {
  const model = perturbNorms(tinyDenseNet(mode), 5);
  const xs = tf.randomNormal([3, 32, 32, 3], 0, 1, 'float32', 21);
  const ys = tf.oneHot([2, 0, 1], 3);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(() => softmaxCrossEntropy(ys, model.apply(xs, { training: true }) as tf.Tensor), vars);
  const out = new Map<string, Float32Array>([['loss', values(value)]]);
  model.trainableWeights.forEach((w, i) => out.set(w.originalName, values(grads[vars[i].name])));
  tf.dispose([xs, ys, value, ...Object.values(grads)]);
  model.dispose();
  return out;
}

describe('wasm trains DenseNets: its gradients equal cpu’s', () => {
  it.each(MODES)('%s: every weight gradient within 1e-4 relative', async (mode) => {
    await initBackend('cpu');
    const reference = gradients(mode);
    await initBackend('wasm');
    const onWasm = gradients(mode);
    expect([...onWasm.keys()]).toEqual([...reference.keys()]);
    for (const [name, error] of gradientErrors(onWasm, reference)) expect(error, name).toBeLessThan(1e-4);
  });
});
