import * as tf from '@tensorflow/tfjs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDenseNet, densenet121, initBackend, memoryModeOfModel, setMemoryMode, DenseLayer } from '../src/index.js';
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
    const layer = new DenseLayer({ growthRate: 6, bnSize: 3, dropRate: 0.1, memoryMode: 'bottleneck' });
    const config = layer.getConfig();
    const copy = tf.serialization.SerializationMap.getMap().classNameMap.DenseLayer[1](DenseLayer, config) as DenseLayer;
    expect(copy.getConfig()).toEqual(config);
    expect(copy.memoryMode).toBe('bottleneck');
  });
});

describe('setMemoryMode', () => {
  it('switches every layer in place and leaves weights untouched', () => {
    const model = tinyDenseNet('naive');
    const weights = model.getWeights().map((w) => Array.from(w.dataSync()));
    // stem, two dense blocks, one transition, the final norm
    expect(setMemoryMode(model, 'layer')).toBe(5);
    expect(memoryModeOfModel(model)).toBe('layer');
    setMemoryMode(model, 'bottleneck');
    expect(memoryModeOfModel(model)).toBe('bottleneck');
    setMemoryMode(model, 'block');
    expect(memoryModeOfModel(model)).toBe('block');
    setMemoryMode(model, 'naive');
    expect(memoryModeOfModel(model)).toBe('naive');
    expect(model.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(weights);
    expect(() => setMemoryMode(model, 'everything' as 'layer')).toThrow(/setMemoryMode: mode must be one of naive, bottleneck, layer, block \(or efficient\), got "everything"/);
    model.dispose();
  });

  it('one mode per dense block: the stem follows block 1, each transition its block, the final norm the last block', () => {
    const model = tinyDenseNet('naive');
    expect(setMemoryMode(model, ['block', 'bottleneck'])).toBe(5);
    const modes = Object.fromEntries(model.layers.filter((l) => 'memoryMode' in l).map((l) => [l.name, (l as unknown as { memoryMode: string }).memoryMode]));
    expect(modes).toEqual({ stem: 'block', denseblock1: 'block', transition1: 'block', denseblock2: 'bottleneck', norm5: 'bottleneck' });
    expect(memoryModeOfModel(model)).toBe('block+bottleneck');
    expect(() => setMemoryMode(model, ['naive'])).toThrow(/one per dense block \(2\)/);
    model.dispose();
  });

  it("the aliases: memoryEfficient (with recompute) and 'efficient' name the same modes", () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ memoryEfficient: true }, 'layer'],
      [{ memoryEfficient: true, recompute: 'bottleneck' }, 'bottleneck'],
      [{ memoryEfficient: false }, 'naive'],
      [{ memoryMode: 'efficient' }, 'layer'],
      [{ memoryMode: 'block', memoryEfficient: true, recompute: 'block' }, 'block'],
      [{}, 'naive'],
    ];
    for (const [options, mode] of cases) {
      const model = createDenseNet({ growthRate: 4, blockConfig: [1], numInitFeatures: 4, bnSize: 2, numClasses: 2, inputShape: [32, 32, 3], ...options });
      expect(memoryModeOfModel(model), JSON.stringify(options)).toBe(mode);
      model.dispose();
    }
    const model = tinyDenseNet('naive');
    setMemoryMode(model, 'efficient' as 'layer');
    expect(memoryModeOfModel(model)).toBe('layer');
    model.dispose();
  });

  it('a layer saved by an earlier version (memoryEfficient + recompute in its config) loads in the same mode', () => {
    const config = { name: 'old', growthRate: 4, bnSize: 2, dropRate: 0, memoryEfficient: true, recompute: 'bottleneck', nested: false };
    const layer = tf.serialization.SerializationMap.getMap().classNameMap.DenseLayer[1](DenseLayer, config) as DenseLayer;
    expect(layer.memoryMode).toBe('bottleneck');
    expect(layer.getConfig()).toMatchObject({ memoryMode: 'bottleneck' });
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
    ['unknown recompute', { memoryEfficient: true, recompute: 'all' }, /recompute must be one of naive, bottleneck, layer, block \(or efficient\), got "all"/],
    ['unknown memoryMode', { memoryMode: 'lean' }, /memoryMode must be one of naive, bottleneck, layer, block \(or efficient\), got "lean"/],
    ['memoryMode against its alias', { memoryMode: 'naive', memoryEfficient: true }, /memoryMode 'naive' contradicts memoryEfficient\/recompute \(layer\)/],
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
