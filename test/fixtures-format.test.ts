import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  classifyTorchvisionTensor,
  deterministicTorchvisionStateDict,
  deterministicTorchvisionTensor,
} from './helpers/deterministic-weights.js';
import { encodeSafetensors, readSafetensors, type SafetensorsFile, type SafetensorsTensor } from '../src/weights/safetensors.js';
import type { TorchvisionArchitecture } from './helpers/torchvision-step.js';

/**
 * Structural checks of the PyTorch fixtures written by scripts/make_torchvision_fixtures.py. They run
 * without Python: if a fixture is regenerated wrongly (a missing gradient, a renamed tensor, a formula
 * the TypeScript generator no longer reproduces) this fails before any parity test gets confusing.
 */

const ROOT = fileURLToPath(new URL('./fixtures/torchvision/', import.meta.url));

interface FixtureConfig {
  architecture: TorchvisionArchitecture;
  image_size: number;
  batch: number;
  input_layout: string;
  state_dict: [string, number[]][];
  versions: Record<string, string>;
  grad_names?: string[];
  check_names?: string[];
  weights_bitsum?: Record<string, number>;
}

async function loadConfig(set: string): Promise<FixtureConfig> {
  return JSON.parse(await readFile(`${ROOT}${set}/config.json`, 'utf8')) as FixtureConfig;
}

function get(file: SafetensorsFile, name: string): SafetensorsTensor {
  const tensor = file.tensors.get(name);
  if (tensor === undefined) throw new Error(`fixture lacks tensor ${name}`);
  return tensor;
}

function isRunningStat(name: string): boolean {
  return name.endsWith('.running_mean') || name.endsWith('.running_var');
}

function bnNames(config: FixtureConfig): string[] {
  return config.state_dict.filter(([name]) => name.endsWith('.running_mean')).map(([name]) => name.slice(0, -'.running_mean'.length));
}

function allFinite(data: Float32Array): boolean {
  return data.every((v) => Number.isFinite(v));
}

/** Channels entering the classifier, from torchvision's DenseNet construction rules. */
function classifierInputs(arch: FixtureConfig['architecture']): number {
  let features = arch.num_init_features;
  arch.block_config.forEach((layers, i) => {
    features += layers * arch.growth_rate;
    if (i !== arch.block_config.length - 1) features = Math.floor(features / 2);
  });
  return features;
}

/** Mean cross-entropy in float64, to check the stored loss belongs to the stored logits and labels. */
function crossEntropy(logits: SafetensorsTensor, labels: SafetensorsTensor): number {
  const [batch, classes] = logits.shape as [number, number];
  let total = 0;
  for (let b = 0; b < batch; b += 1) {
    const row = Array.from(logits.data.subarray(b * classes, (b + 1) * classes));
    const max = Math.max(...row);
    const logSum = Math.log(row.reduce((acc, v) => acc + Math.exp(v - max), 0)) + max;
    total += logSum - row[labels.data[b]!]!;
  }
  return total / batch;
}

function l2(data: Float32Array): number {
  let sum = 0;
  for (const v of data) sum += v * v;
  return Math.sqrt(sum);
}

function checkCommonReference(reference: SafetensorsFile, config: FixtureConfig): void {
  const { batch, image_size: size } = config;
  const classes = config.architecture.num_classes;
  expect(config.input_layout).toBe('NCHW');
  expect(get(reference, 'input_nchw').shape).toEqual([batch, 3, size, size]);
  expect(allFinite(get(reference, 'input_nchw').data)).toBe(true);
  const labels = get(reference, 'labels');
  expect(labels.shape).toEqual([batch]);
  for (const label of labels.data) {
    expect(Number.isInteger(label) && label >= 0 && label < classes).toBe(true);
  }
  for (const name of ['eval_logits', 'train_logits']) {
    expect(get(reference, name).shape).toEqual([batch, classes]);
    expect(allFinite(get(reference, name).data)).toBe(true);
  }
  // Train mode normalizes with batch statistics, so the two forwards must differ.
  expect(Array.from(get(reference, 'eval_logits').data)).not.toEqual(Array.from(get(reference, 'train_logits').data));
  const loss = get(reference, 'loss');
  expect(loss.shape).toEqual([1]);
  expect(loss.data[0]).toBeGreaterThan(0);
  expect(loss.data[0]).toBeCloseTo(crossEntropy(get(reference, 'train_logits'), labels), 5);

  const original = new Map(config.state_dict);
  for (const bn of bnNames(config)) {
    for (const stat of ['running_mean', 'running_var']) {
      const after = get(reference, `running_after.${bn}.${stat}`);
      expect(after.shape).toEqual(original.get(`${bn}.${stat}`));
      expect(allFinite(after.data)).toBe(true);
      if (stat === 'running_var') expect(after.data.every((v) => v > 0)).toBe(true);
    }
  }
  const runningKeys = [...reference.tensors.keys()].filter((k) => k.startsWith('running_after.'));
  expect(runningKeys.length).toBe(2 * bnNames(config).length);
  for (const tensor of reference.tensors.values()) expect(tensor.dtype).toBe('F32');
}

describe('small torchvision fixture', () => {
  let config: FixtureConfig;
  let weights: SafetensorsFile;
  let reference: SafetensorsFile;
  beforeAll(async () => {
    config = await loadConfig('small');
    weights = await readSafetensors(`${ROOT}small/weights.safetensors`);
    reference = await readSafetensors(`${ROOT}small/reference.safetensors`);
  });

  it('describes the architecture the parity tests expect', () => {
    expect(config.architecture).toEqual({ growth_rate: 8, block_config: [2, 3], num_init_features: 16, bn_size: 2, drop_rate: 0, num_classes: 5 });
    expect([config.image_size, config.batch]).toEqual([40, 3]);
    expect(typeof config.versions['torch']).toBe('string');
  });

  it('holds the full state_dict under PyTorch names and layouts', () => {
    const names = config.state_dict.map(([name]) => name);
    expect([...weights.tensors.keys()].sort()).toEqual(names);
    for (const [name, shape] of config.state_dict) {
      const tensor = get(weights, name);
      expect(tensor.dtype).toBe('F32');
      expect(tensor.shape).toEqual(shape);
      expect(allFinite(tensor.data)).toBe(true);
      expect(() => classifyTorchvisionTensor(name, shape)).not.toThrow();
    }
    expect(names.some((n) => n.endsWith('num_batches_tracked'))).toBe(false);
    expect(weights.metadata['generator']).toBe('scripts/make_torchvision_fixtures.py');
    expect(get(weights, 'features.conv0.weight').shape).toEqual([16, 3, 7, 7]);
    expect(get(weights, 'features.denseblock1.denselayer1.conv1.weight').shape).toEqual([2 * 8, 16, 1, 1]);
    expect(get(weights, 'features.denseblock2.denselayer3.conv2.weight').shape).toEqual([8, 16, 3, 3]);
    expect(get(weights, 'classifier.weight').shape).toEqual([5, classifierInputs(config.architecture)]);
    // The BatchNorms were perturbed away from PyTorch's (1, 0, 0, 1) defaults.
    expect(get(weights, 'features.norm5.running_var').data.every((v) => v >= 0.5 && v <= 1.5 && v !== 1)).toBe(true);
  });

  it('holds a gradient for every parameter and updated running stats for every BatchNorm', () => {
    checkCommonReference(reference, config);
    const params = config.state_dict.filter(([name]) => !isRunningStat(name));
    for (const [name, shape] of params) {
      const grad = get(reference, `grad.${name}`);
      expect(grad.shape).toEqual(shape);
      expect(allFinite(grad.data)).toBe(true);
    }
    expect([...reference.tensors.keys()].filter((k) => k.startsWith('grad.')).length).toBe(params.length);
    expect(l2(get(reference, 'grad.classifier.weight').data)).toBeGreaterThan(0);
    expect(l2(get(reference, 'grad.features.conv0.weight').data)).toBeGreaterThan(0);
    const before = get(weights, 'features.norm0.running_mean').data;
    const after = get(reference, 'running_after.features.norm0.running_mean').data;
    expect(Array.from(after)).not.toEqual(Array.from(before));
  });
});

describe('fixture files', () => {
  it('use exactly the layout encodeSafetensors writes, so the Python and TypeScript writers agree', async () => {
    for (const file of ['small/weights.safetensors', 'small/reference.safetensors', 'densenet121/reference.safetensors']) {
      const bytes = new Uint8Array(await readFile(`${ROOT}${file}`));
      const parsed = await readSafetensors(bytes);
      // Buffer.equals rather than toEqual: a deep element-wise diff of ~1 MB takes seconds.
      expect(Buffer.from(encodeSafetensors(parsed.tensors, parsed.metadata)).equals(bytes), file).toBe(true);
    }
  });
});

describe('densenet121 torchvision fixture', () => {
  let config: FixtureConfig;
  let reference: SafetensorsFile;
  beforeAll(async () => {
    config = await loadConfig('densenet121');
    reference = await readSafetensors(`${ROOT}densenet121/reference.safetensors`);
  });

  it('lists densenet121 state_dict names and shapes', () => {
    expect(config.architecture).toEqual({ growth_rate: 32, block_config: [6, 12, 24, 16], num_init_features: 64, bn_size: 4, drop_rate: 0, num_classes: 4 });
    expect([config.image_size, config.batch]).toEqual([64, 2]);
    const shapes = new Map(config.state_dict);
    expect(shapes.get('features.conv0.weight')).toEqual([64, 3, 7, 7]);
    expect(shapes.get('features.denseblock4.denselayer16.conv2.weight')).toEqual([32, 128, 3, 3]);
    expect(shapes.get('features.transition3.conv.weight')).toEqual([512, 1024, 1, 1]);
    expect(shapes.get('classifier.weight')).toEqual([4, classifierInputs(config.architecture)]);
    // 120 convolutions + classifier, 121 BatchNorms with 4 entries each, classifier bias.
    expect(config.state_dict.filter(([, s]) => s.length === 4).length).toBe(120);
    expect(bnNames(config).length).toBe(121);
    expect(config.state_dict.length).toBe(120 + 121 * 4 + 2);
  });

  it('regenerates the weights bit-exactly from the deterministic formula', () => {
    const generated = deterministicTorchvisionStateDict(config.state_dict);
    expect([...generated.keys()]).toEqual(config.state_dict.map(([name]) => name));
    let parameters = 0;
    for (const [name, tensor] of generated) {
      const bits = new Uint32Array(tensor.data.buffer);
      let sum = 0;
      for (const b of bits) sum = (sum + b) % 2 ** 32;
      if (sum !== config.weights_bitsum![name]) throw new Error(`${name}: bitsum ${sum} != ${config.weights_bitsum![name]}`);
      if (!isRunningStat(name)) parameters += tensor.data.length;
    }
    expect(parameters).toBe(6_957_956);
    expect(config.check_names).toHaveLength(4);
    for (const name of config.check_names!) {
      const index = config.state_dict.findIndex(([n]) => n === name);
      const expected = get(reference, `check.${name}`);
      expect(expected.shape).toEqual([16]);
      const values = deterministicTorchvisionTensor(name, index, config.state_dict[index]![1]).subarray(0, 16);
      expect(Array.from(new Uint32Array(values.slice().buffer))).toEqual(Array.from(new Uint32Array(expected.data.buffer)));
    }
  });

  it('holds the reference outputs, the chosen gradients and every gradient norm', () => {
    checkCommonReference(reference, config);
    const shapes = new Map(config.state_dict);
    expect(config.grad_names).toEqual(['features.conv0.weight', 'features.denseblock4.denselayer16.conv2.weight', 'classifier.weight', 'classifier.bias']);
    for (const name of config.grad_names!) {
      const grad = get(reference, `grad.${name}`);
      expect(grad.shape).toEqual(shapes.get(name));
      const norm = get(reference, `gradnorm.${name}`).data[0]!;
      expect(norm).toBeGreaterThan(0);
      expect(l2(grad.data)).toBeCloseTo(norm, 5);
    }
    expect([...reference.tensors.keys()].filter((k) => k.startsWith('grad.')).length).toBe(4);
    const params = config.state_dict.filter(([name]) => !isRunningStat(name));
    for (const [name] of params) {
      const norm = get(reference, `gradnorm.${name}`);
      expect(norm.shape).toEqual([1]);
      expect(Number.isFinite(norm.data[0]) && norm.data[0]! >= 0).toBe(true);
    }
    expect([...reference.tensors.keys()].filter((k) => k.startsWith('gradnorm.')).length).toBe(params.length);
  });
});

describe('deterministic generator input checks', () => {
  it('classifies torchvision DenseNet names and rejects what it cannot classify', () => {
    expect(classifyTorchvisionTensor('features.transition1.norm.bias', [8])).toBe('bn_bias');
    expect(classifyTorchvisionTensor('features.norm5.weight', [8])).toBe('bn_weight');
    expect(classifyTorchvisionTensor('features.denseblock1.denselayer2.conv1.weight', [8, 8, 1, 1])).toBe('conv');
    expect(classifyTorchvisionTensor('classifier.bias', [4])).toBe('linear_bias');
    expect(() => classifyTorchvisionTensor('features.conv0.alpha', [3])).toThrow(/"features\.conv0\.alpha"/);
  });

  it('rejects a bad index or a shape that does not fit the kind', () => {
    expect(() => deterministicTorchvisionTensor('w', -1, [1, 1, 1, 1], 'conv')).toThrow(/index of "w"/);
    expect(() => deterministicTorchvisionTensor('w', 0, [4, 4], 'conv')).toThrow(/"w" of kind conv must have rank 4/);
    expect(() => deterministicTorchvisionTensor('w', 0, [2.5], 'bn_bias')).toThrow(/shape of "w"/);
    expect(() => deterministicTorchvisionStateDict([['a.norm.weight', [2]], ['a.norm.weight', [2]]])).toThrow(/duplicate name "a.norm.weight"/);
  });

  it('gives each tensor index its own stream and keeps values in their documented ranges', () => {
    const a = deterministicTorchvisionTensor('x.norm.running_var', 0, [1000]);
    const b = deterministicTorchvisionTensor('x.norm.running_var', 1, [1000]);
    expect(Array.from(a)).not.toEqual(Array.from(b));
    expect(a.every((v) => v >= 0.5 && v <= 1.5)).toBe(true);
    const conv = deterministicTorchvisionTensor('c.conv.weight', 2, [8, 4, 3, 3]);
    const bound = Math.sqrt(3 / 36);
    expect(conv.every((v) => Math.abs(v) <= bound + 1e-7)).toBe(true);
    const mean = conv.reduce((s, v) => s + v, 0) / conv.length;
    expect(Math.abs(mean)).toBeLessThan(0.05);
  });
});
