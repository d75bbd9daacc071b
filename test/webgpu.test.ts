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
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { findWebGPUAdapter } from '../src/backend/webgpu/index.js';
import { resetWebGPUPoolPeak, WEBGPU_POOL_FREE_FRACTION, webgpuPoolState } from '../src/backend/webgpu/pool.js';
import { BUILDERS } from '../src/layers/densenet.js';
import { WEBGPU_PEAK_FACTOR } from '../src/backend/traits.js';
import { measureTrainingStep } from '../src/memory/measure.js';
import { softmaxCrossEntropy } from '../src/step/loss.js';
import { TrainingOptimizer, trainingStep } from '../src/step/step.js';
import type { MemoryMode } from '../src/layers/config.js';
import { MODES, perturbNorms, tinyDenseNet } from './helpers/models.js';
import { writeSyntheticImageFolder } from '../src/data/synthetic.js';
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
      // The pool's peak is followed from the backend's start: count this measurement's alone (the pool holds no
      // more than its bound of free buffers from the tests before).
      if (backend === 'webgpu') resetWebGPUPoolPeak(tf.backend());
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
    // The pool holds every live buffer (and keeps some freed ones for reuse), so its peak covers the step's.
    expect(webgpu.backendPeakBytes).toBeGreaterThanOrEqual(webgpu.peakBytes);
  });

  // The bound of src/backend/webgpu/pool.ts, on a small DenseNet-121 (32², batch 2). Not on the tiny model above:
  // there a step's tensors (80 KB in `block`) are as small as what the GPU also holds besides them — kernels'
  // internal buffers, which tfjs's engine never sees, and the buffers whose release waits for the next submit
  // (up to 15 programs' worth) — a fixed amount that a real model's activations dwarf.
  it('in every mode the GPU holds at most 1.15× the step’s tensors (baseline + step peak), free buffers ≤ 0.1× those in use', async () => {
    await initBackend('webgpu');
    const ratios: Record<string, number> = {};
    for (const mode of MODES) {
      const model = BUILDERS.densenet121({ numClasses: 4, inputShape: [32, 32, 3], memoryMode: mode, seed: 1 });
      // The pool's peak is followed from the backend's start: count this measurement's alone (the pool keeps no
      // more than its bound of free buffers from the tests before).
      resetWebGPUPoolPeak(tf.backend());
      const result = await measureTrainingStep({ model, batchSize: 2, seed: 2 });
      model.dispose();
      ratios[mode] = result.backendPeakBytes! / result.peakBytes;
      const pool = webgpuPoolState(tf.backend())!;
      expect(pool.allocatedBytes - pool.usedBytes).toBeLessThanOrEqual(WEBGPU_POOL_FREE_FRACTION * pool.usedBytes);
    }
    for (const [mode, ratio] of Object.entries(ratios)) {
      expect(ratio, mode).toBeGreaterThanOrEqual(1);
      expect(ratio, mode).toBeLessThanOrEqual(WEBGPU_PEAK_FACTOR);
    }
  }, 600_000);

  // tfjs-webgpu 4.22 reads the adapter's description from `adapter.info` (the standard's attribute) and falls back to
  // `requestAdapterInfo()`, which the standard removed and Dawn no longer has: the backend must know its vendor.
  it('the backend knows its adapter without requestAdapterInfo', async () => {
    await initBackend('webgpu');
    const info = (tf.backend() as unknown as { adapterInfo: { vendor?: string; architecture?: string } }).adapterInfo;
    expect(info.vendor).toBe(search.found ? search.adapter.vendor : undefined);
    expect(info.architecture).toBe(search.found ? search.adapter.architecture : undefined);
  });

  // Dawn keeps Node's event loop alive while its GPU object is referenced (the webgpu package's README: "node will
  // not exit"); `navigator.gpu` references it for the process's life. A command that trains on webgpu must still end.
  it('a process that trained on webgpu exits by itself', async () => {
    const cli = path.resolve('src/cli/main.ts');
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'webgpu-exit-'));
    try {
      const data = path.join(tmp, 'data');
      await writeSyntheticImageFolder(data, { numClasses: 2, imagesPerClass: 2, valImagesPerClass: 1, imageSize: 32, seed: 1, variant: 'textures' });
      const model = path.join(tmp, 'tiny.json');
      await fs.writeFile(model, JSON.stringify({ growthRate: 4, blockConfig: [1, 1], numInitFeatures: 8, bnSize: 2 }));
      const args = ['--import', 'tsx', cli, 'train', '--backend', 'webgpu', '--data', data, '--model', model, '--image-size', '32', '--batch', '2', '--epochs', '1', '--json'];
      // A process Dawn kept alive is killed at the timeout (error.killed); one that ends by itself has code 0.
      const result = await promisify(execFile)(process.execPath, args, { timeout: 240_000 }).then(
        ({ stdout }) => ({ code: 0, killed: false, stdout }),
        (error: { code: number; killed: boolean; stdout: string }) => error,
      );
      expect(result.killed).toBe(false);
      expect(result.code).toBe(0);
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  }, 300_000);
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
