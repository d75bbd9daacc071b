import * as tf from '@tensorflow/tfjs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDenseNet, densenet121, initBackend, memoryModeOfModel, setMemoryEfficient, DenseLayer } from '../src/index.js';
import { quickstart } from '../examples/quickstart.js';
import { MODES, modeOptions, perturbNorms, tinyDenseNet } from './helpers/models.js';

let dir: string;
beforeAll(async () => {
  await initBackend('cpu');
  dir = await mkdtemp(path.join(tmpdir(), 'densenet-model-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('save and load (tfjs format)', () => {
  it.each(MODES)('%s: predictions are preserved exactly, and so is the mode', async (mode) => {
    const model = perturbNorms(tinyDenseNet(mode, { inputShape: [null, null, 3] }), 9);
    const xs = tf.randomNormal([2, 40, 36, 3], 0, 1, 'float32', 4);
    const before = (model.predict(xs) as tf.Tensor).dataSync();
    const target = path.join(dir, mode);
    await model.save(`file://${target}`);
    const loaded = await tf.loadLayersModel(`file://${path.join(target, 'model.json')}`);
    expect(memoryModeOfModel(loaded)).toBe(mode);
    const after = (loaded.predict(xs) as tf.Tensor).dataSync();
    expect(Array.from(after)).toEqual(Array.from(before));
    expect(loaded.weights.map((w) => w.originalName)).toEqual(model.weights.map((w) => w.originalName));
    model.dispose();
    loaded.dispose();
  });

  it('a standalone DenseLayer round-trips through its config', () => {
    const layer = new DenseLayer({ growthRate: 6, bnSize: 3, dropRate: 0.1, memoryEfficient: true, recompute: 'bottleneck' });
    const config = layer.getConfig();
    const copy = tf.serialization.SerializationMap.getMap().classNameMap.DenseLayer[1](DenseLayer, config) as DenseLayer;
    expect(copy.getConfig()).toEqual(config);
    expect(copy.memoryMode).toBe('bottleneck');
  });
});

describe('setMemoryEfficient', () => {
  it('switches every layer in place and leaves weights untouched', () => {
    const model = tinyDenseNet('naive');
    const weights = model.getWeights().map((w) => Array.from(w.dataSync()));
    // stem, two dense blocks, one transition, the final norm
    expect(setMemoryEfficient(model, true)).toBe(5);
    expect(memoryModeOfModel(model)).toBe('layer');
    setMemoryEfficient(model, true, 'bottleneck');
    expect(memoryModeOfModel(model)).toBe('bottleneck');
    setMemoryEfficient(model, true, 'block');
    expect(memoryModeOfModel(model)).toBe('block');
    setMemoryEfficient(model, false);
    expect(memoryModeOfModel(model)).toBe('naive');
    expect(model.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(weights);
    expect(() => setMemoryEfficient(model, true, 'everything' as 'layer')).toThrow(/recompute must be 'layer', 'bottleneck' or 'block'/);
    model.dispose();
  });
});

describe('architecture', () => {
  it('the reference demo: densenet121({ numClasses: 4 }) on [2, 224, 224, 3] ones → [2, 4] (wasm)', async () => {
    await initBackend('wasm');
    try {
      expect(await quickstart()).toEqual([2, 4]);
    } finally {
      await initBackend('cpu');
    }
  });

  it('variable input size: one model takes 32×32 and 45×61 images', () => {
    const model = tinyDenseNet('layer', { inputShape: [null, null, 3] });
    for (const [h, w] of [[32, 32], [45, 61]]) {
      const out = model.predict(tf.zeros([1, h, w, 3])) as tf.Tensor;
      expect(out.shape).toEqual([1, 3]);
    }
    model.dispose();
  });

  it.each(MODES)('%s: the same seed gives the same weights', (mode) => {
    const a = tinyDenseNet(mode);
    const b = createDenseNet({ growthRate: 4, blockConfig: [2, 3], numInitFeatures: 8, bnSize: 2, numClasses: 3, inputShape: [32, 32, 3], seed: 7, ...modeOptions('naive') });
    expect(a.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(b.getWeights().map((w) => Array.from(w.dataSync())));
    a.dispose();
    b.dispose();
  });
});

describe('bad configuration is refused before any tensor is allocated', () => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['empty blockConfig', { blockConfig: [] }, /blockConfig must be a non-empty array of positive integers/],
    ['non-integer blockConfig', { blockConfig: [2, 1.5] }, /blockConfig must be a non-empty array of positive integers.*1\.5/],
    ['growthRate 0', { growthRate: 0 }, /growthRate must be a positive integer, got 0/],
    ['growthRate negative', { growthRate: -4 }, /growthRate must be a positive integer/],
    ['too small an image', { inputShape: [31, 64, 3] }, /inputShape height must be an integer ≥ 32/],
    ['4 channels', { inputShape: [64, 64, 4] }, /inputShape must have 3 channels/],
    ['numClasses 0', { numClasses: 0 }, /numClasses must be a positive integer/],
    ['unknown recompute', { memoryEfficient: true, recompute: 'all' }, /recompute must be 'layer', 'bottleneck' or 'block', got "all"/],
    ['dropRate 1', { dropRate: 1 }, /dropRate must be a number in \[0, 1\)/],
    ['unknown option', { depth: 121 }, /unknown DenseNet option 'depth'/],
  ];
  it.each(cases)('%s', (_, options, message) => {
    const before = tf.memory().numTensors;
    expect(() => createDenseNet(options)).toThrow(message);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('the named builders keep their architecture', () => {
    expect(() => densenet121({ growthRate: 12 } as never)).toThrow(/growthRate is fixed by the architecture/);
  });
});
