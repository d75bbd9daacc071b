/**
 * The webgpu backend (tfjs-backend-webgpu on Dawn): every memory mode trains as on cpu, and the meta backend
 * predicts its training step to the byte. These need a WebGPU adapter: a GPU, or Mesa ≥ 23's software one
 * (scripts/install-webgpu-adapter.sh, run by .ci/run); without one they are skipped and the suite's title
 * says why. The message a user gets without an adapter is checked everywhere, with the Vulkan drivers hidden
 * from the loader (VK_DRIVER_FILES), which is a real machine without a driver.
 * Reads are asynchronous: tfjs-webgpu's synchronous read needs the browser's OffscreenCanvas.
 */
import * as tf from '@tensorflow/tfjs';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { findWebGPUAdapter } from '../src/backend/webgpu/index.js';
import { measureTrainingStep } from '../src/memory/measure.js';
import { softmaxCrossEntropy } from '../src/step/loss.js';
import { TrainingOptimizer, trainingStep } from '../src/step/step.js';
import type { MemoryMode } from '../src/layers/config.js';
import { MODES, perturbNorms, tinyDenseNet } from './helpers/models.js';
import { gradientErrors, relativeError } from './helpers/tensors.js';

const search = await findWebGPUAdapter();
const SUITE = search.found
  ? `webgpu on adapter "${search.adapter.name}"${search.adapter.software ? ' (software)' : ''}`
  : `webgpu: SKIPPED, no adapter here — ${search.missing}`;

// The default reporter lists no skipped test names: say it where CI logs show it.
if (!search.found) process.stderr.write(`webgpu.test.ts: the webgpu training tests are SKIPPED: ${search.missing}\n`);

afterAll(async () => {
  await initBackend('cpu');
});

async function read(t: tf.Tensor): Promise<Float32Array> {
  return Float32Array.from(await t.data());
}

/** Every weight gradient (by weight name) and the loss of one training step on the current backend. */
async function gradients(mode: MemoryMode): Promise<Map<string, Float32Array>> {
  const model = perturbNorms(tinyDenseNet(mode), 5);
  const xs = tf.randomNormal([3, 32, 32, 3], 0, 1, 'float32', 21);
  const ys = tf.oneHot([2, 0, 1], 3);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(() => softmaxCrossEntropy(ys, model.apply(xs, { training: true }) as tf.Tensor), vars);
  const out = new Map<string, Float32Array>([['loss', await read(value)]]);
  for (const [i, w] of model.trainableWeights.entries()) out.set(w.originalName, await read(grads[vars[i].name]));
  tf.dispose([xs, ys, value, ...Object.values(grads)]);
  model.dispose();
  return out;
}

/**
 * Two SGD-momentum steps: how far each weight moved (BN running statistics included) and the losses. The
 * second step uses the momentum state the first one made.
 */
async function trainingSteps(mode: MemoryMode): Promise<{ moves: Map<string, Float32Array>; losses: number[] }> {
  const model = perturbNorms(tinyDenseNet(mode), 3);
  const before = new Map<string, Float32Array>();
  for (const w of model.weights) before.set(w.originalName, await read(w.read()));
  const optimizer = new TrainingOptimizer({ name: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 0, nesterov: false });
  const xs = tf.randomNormal([4, 32, 32, 3], 0, 1, 'float32', 8);
  const ys = tf.oneHot([0, 1, 2, 1], 3);
  const losses: number[] = [];
  for (let step = 0; step < 2; step++) {
    const { loss, correct } = trainingStep(model, optimizer, xs, ys);
    losses.push((await loss.data())[0]);
    tf.dispose([loss, correct]);
  }
  const moves = new Map<string, Float32Array>();
  for (const w of model.weights) {
    const after = await read(w.read());
    const start = before.get(w.originalName)!;
    moves.set(w.originalName, after.map((v, i) => v - start[i]));
  }
  tf.dispose([xs, ys]);
  optimizer.dispose();
  model.dispose();
  return { moves, losses };
}

describe.skipIf(!search.found)(SUITE, () => {
  it.each(MODES)('%s: every weight gradient equals cpu’s within 1e-4 relative', async (mode) => {
    await initBackend('cpu');
    const reference = await gradients(mode);
    await initBackend('webgpu');
    const onWebGPU = await gradients(mode);
    expect([...onWebGPU.keys()]).toEqual([...reference.keys()]);
    for (const [name, error] of gradientErrors(onWebGPU, reference)) expect(error, name).toBeLessThan(1e-4);
  });

  it.each(MODES)('%s: two training steps move every weight and running statistic as on cpu', async (mode) => {
    await initBackend('cpu');
    const reference = await trainingSteps(mode);
    await initBackend('webgpu');
    const onWebGPU = await trainingSteps(mode);
    expect(onWebGPU.losses[1]).toBeLessThan(onWebGPU.losses[0]);
    expect(relativeError(onWebGPU.losses, reference.losses)).toBeLessThan(1e-5);
    expect([...onWebGPU.moves.keys()]).toEqual([...reference.moves.keys()]);
    // The stem BN's γ and β against the largest move, as their gradients (gradientErrors says why): their
    // moves are a few ulps of γ ≈ 1, so a one-ulp difference in summation order is 2e-3 of their own size.
    for (const [name, error] of gradientErrors(onWebGPU.moves, reference.moves)) expect(error, name).toBeLessThan(1e-4);
  });

  // meta mirrors cpu's buffer sharing; webgpu shares buffers the same way in every kernel a DenseNet step
  // uses, so no meta-webgpu flavour is needed (the bench check of DenseNet-121 is in docs/gpu.md).
  it.each(MODES)('%s: the meta backend predicts webgpu’s training step to the byte; the GPU pool peak is reported', async (mode) => {
    const measure = async (backend: 'webgpu' | 'meta') => {
      await initBackend(backend);
      const model = tinyDenseNet(mode);
      const result = await measureTrainingStep({ model, batchSize: 3, seed: 2 });
      model.dispose();
      return result;
    };
    const webgpu = await measure('webgpu');
    const meta = await measure('meta');
    expect(meta.stepPeakBytes).toBe(webgpu.stepPeakBytes);
    expect(meta.baselineBytes).toBe(webgpu.baselineBytes);
    expect(meta.engine.stepPeakBytes).toBe(webgpu.engine.stepPeakBytes);
    expect(webgpu.leakedTensors).toBe(0);
    expect(webgpu.backend).toBe('webgpu');
    expect(meta.backendPeakBytes).toBeNull();
    // The pool holds every live buffer (and keeps freed ones for reuse), so its peak covers the step's.
    expect(webgpu.backendPeakBytes).toBeGreaterThanOrEqual(webgpu.peakBytes);
  });
});

it.runIf(!search.found)('no adapter here: the reason given names what is missing and how to get it', () => {
  expect(search.found ? '' : search.missing).toMatch(/^(no Vulkan driver|no Vulkan loader|package \S+ is not installed|no WebGPU adapter|Dawn).*(apt-get install|npm install|driver)/);
});

describe('webgpu without an adapter (the Vulkan drivers hidden from the loader)', () => {
  const noDriver = { VK_DRIVER_FILES: '/nonexistent/no-driver.json', VK_ICD_FILENAMES: '/nonexistent/no-driver.json' };

  it('--backend webgpu exits 1 with one line saying what is missing and how to get it', async () => {
    const cli = path.resolve('src/cli/main.ts');
    const args = ['--import', 'tsx', cli, 'bench', '--backend', 'webgpu', '--model', 'densenet121', '--image-size', '32', '--batch', '1', '--mode', 'naive'];
    const result = await promisify(execFile)(process.execPath, args, { env: { ...process.env, ...noDriver }, timeout: 120_000 }).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => error,
    );
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^efficient-densenet: error: backend 'webgpu': (no Vulkan driver|no Vulkan loader|package \S+ is not installed|no WebGPU adapter).*(apt-get install|npm install)/,
    );
  });

  it('auto picks wasm and says why not webgpu', async () => {
    const saved = { VK_DRIVER_FILES: process.env.VK_DRIVER_FILES, VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES };
    Object.assign(process.env, noDriver);
    const lines: string[] = [];
    try {
      expect(await initBackend('auto', { logger: { info: (m) => lines.push(m), warn: (m) => lines.push(m) } })).toBe('wasm');
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^backend: wasm \(.*webgpu: (no Vulkan driver|no Vulkan loader|\S+ not installed|no adapter)/);
  });
});
