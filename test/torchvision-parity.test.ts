import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDenseNet } from '../src/layers/index.js';
import type { MemoryMode } from '../src/layers/config.js';
import { UsageError } from '../src/util/errors.js';
import type { Logger } from '../src/util/logger.js';
import { deterministicTorchvisionStateDict } from './helpers/deterministic-weights.js';
import { readSafetensors, type SafetensorsFile } from '../src/weights/safetensors.js';
import { loadTorchvisionWeights, saveTorchvisionWeights } from '../src/weights/torchvision.js';
import { exportTorchvisionStateDict, torchvisionNames, type TorchvisionTensor } from '../src/weights/torchvision-names.js';
import { MODES, modeOptions, perturbNorms } from './helpers/models.js';
import { torchvisionStep, type TorchvisionArchitecture } from './helpers/torchvision-step.js';
import { relativeError } from './helpers/tensors.js';

/**
 * torchvision parity: our DenseNets loaded with PyTorch weights give PyTorch's logits, loss, gradients and
 * running statistics (fixtures from scripts/make_torchvision_fixtures.py), and what we save loads back
 * into torchvision.
 *
 * Cost on the cpu backend (measured on 2 shared cores): the small fixture takes 1–3 s per mode; one
 * densenet121 training step at 64² takes ~50 s in 'layer' mode, ~65 s in 'bottleneck' and ~135 s in
 * 'naive'. So densenet121 runs in 'layer' mode only (the mode with the most custom gradient code),
 * unless TORCHVISION_PARITY_ALL_MODES=1 asks for all three; the small fixture covers every mode.
 */

const ROOT = fileURLToPath(new URL('./fixtures/torchvision/', import.meta.url));
const DENSENET121_MODES: readonly MemoryMode[] = process.env['TORCHVISION_PARITY_ALL_MODES'] === '1' ? MODES : ['layer'];

type Architecture = TorchvisionArchitecture;

interface FixtureConfig {
  architecture: Architecture;
  image_size: number;
  batch: number;
  state_dict: [string, number[]][];
  grad_names?: string[];
}

interface Fixture {
  name: 'small' | 'densenet121';
  config: FixtureConfig;
  weights: Map<string, TorchvisionTensor>;
  reference: SafetensorsFile;
}

async function loadFixture(name: Fixture['name']): Promise<Fixture> {
  const config = JSON.parse(await readFile(`${ROOT}${name}/config.json`, 'utf8')) as FixtureConfig;
  const reference = await readSafetensors(`${ROOT}${name}/reference.safetensors`);
  const weights =
    name === 'small'
      ? new Map((await readSafetensors(`${ROOT}small/weights.safetensors`)).tensors)
      : deterministicTorchvisionStateDict(config.state_dict);
  return { name, config, weights, reference };
}

function ref(fixture: Fixture, key: string): Float32Array {
  const tensor = fixture.reference.tensors.get(key);
  if (!tensor) throw new Error(`fixture ${fixture.name} has no '${key}'`);
  return tensor.data;
}

function buildModel(arch: Architecture, size: number, mode: MemoryMode, numClasses = arch.num_classes): tf.LayersModel {
  return createDenseNet({
    growthRate: arch.growth_rate,
    blockConfig: arch.block_config,
    numInitFeatures: arch.num_init_features,
    bnSize: arch.bn_size,
    dropRate: arch.drop_rate,
    numClasses,
    inputShape: [size, size, 3],
    seed: 11,
    ...modeOptions(mode),
  });
}

function inputNhwc(fixture: Fixture): tf.Tensor4D {
  const input = fixture.reference.tensors.get('input_nchw')!;
  return tf.tidy(() => tf.transpose(tf.tensor4d(input.data, input.shape as [number, number, number, number]), [0, 2, 3, 1]));
}

function labelsOneHot(fixture: Fixture): tf.Tensor2D {
  const labels = Array.from(ref(fixture, 'labels'), (v) => Math.round(v));
  return tf.oneHot(tf.tensor1d(labels, 'int32'), fixture.config.architecture.num_classes) as tf.Tensor2D;
}

function l2(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

/** ‖a − b‖ / ‖b‖. */
function relativeL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff += (a[i]! - b[i]!) ** 2;
  return Math.sqrt(diff) / Math.max(l2(b), 1e-30);
}

function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function sameStateDict(a: ReadonlyMap<string, TorchvisionTensor>, b: ReadonlyMap<string, TorchvisionTensor>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, tensor] of a) {
    const other = b.get(name);
    if (!other || other.shape.join() !== tensor.shape.join() || !bitsEqual(tensor.data, other.data)) return false;
  }
  return true;
}

function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, info: () => {}, warn: (message) => warnings.push(message) };
}

interface ParityErrors {
  eval: number;
  train: number;
  loss: number;
  grad: number;
  gradWorst: string;
  /** Gradient comparisons above the 1e-3 asked for (see GradientBounds). */
  over1e3: number;
  running: number;
  compared: number;
}

/**
 * Relative gradient errors allowed. The small fixture meets 1e-3 on every gradient. densenet121 cannot:
 * at batch 2 and 64² its 121 BatchNorms normalise over as few as 8 values per channel, and the
 * backward pass amplifies float32 rounding so much that PyTorch's own float32 gradients (the fixture) are
 * off from its float64 gradients by up to 8.7e-3 relative L2 on features.conv0.weight, 2.1e-2 on other
 * parameters and 4.0e-3 on gradient norms (median 6e-4); measured with torch 1.13 on this fixture. So
 * there every gradient must be within 1e-2 of the fixture and at least 75% of them within 1e-3.
 * (It was 95% while our batch-norm sums rounded like PyTorch's; with float64-accumulated sums our cpu
 * gradients are closer to float64 than PyTorch's — all gradients 6.8e-3 relative L2 against PyTorch's
 * 8.7e-3, worst tensor 1.3e-2 against 1.7e-2, `npx tsx scripts/numerics-table.ts --size 64 --batch 2` —
 * and so further from PyTorch's float32 rounding: 67 of 368 comparisons above 1e-3. How close to exact
 * every mode is, is held by test/float64-parity.test.ts against float64 references.)
 */
interface GradientBounds {
  every: number;
  /** Fraction of the comparisons that must be within 1e-3. */
  within1e3: number;
}

const EXACT_GRADIENTS: GradientBounds = { every: 1e-3, within1e3: 1 };
const DENSENET121_GRADIENTS: GradientBounds = { every: 1e-2, within1e3: 0.75 };

const summary: string[] = [];

/**
 * A densenet121 training step blocks the event loop for a minute or more (the cpu backend is synchronous).
 * A vitest worker → runner call still in flight when the block starts (its task updates go out 100 ms
 * after a test starts) then times out after 60 s and fails the run with "Timeout calling onTaskUpdate",
 * though every test passed. Letting the event loop run first sends and settles that call.
 */
async function settleTestRunner(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 300));
}

/** Eval forward, then one training forward + backward from the same state, against the PyTorch reference. */
function checkParity(fixture: Fixture, model: tf.LayersModel, bounds: GradientBounds): ParityErrors {
  const x = inputNhwc(fixture);
  const y = labelsOneHot(fixture);
  const { evalLogits, trainLogits, loss, grads } = torchvisionStep(model, x, y);

  const errors: ParityErrors = { eval: 0, train: 0, loss: 0, grad: 0, gradWorst: '', over1e3: 0, running: 0, compared: 0 };
  errors.eval = relativeError(evalLogits, ref(fixture, 'eval_logits'));
  errors.train = relativeError(trainLogits, ref(fixture, 'train_logits'));
  errors.loss = Math.abs(loss - ref(fixture, 'loss')[0]!);
  expect(errors.eval, 'eval logits').toBeLessThan(1e-4);
  expect(errors.train, 'train logits').toBeLessThan(1e-4);
  expect(errors.loss, 'loss').toBeLessThan(1e-5);

  expect(grads.size).toBe(model.trainableWeights.length);
  for (const [name, torch] of grads) {
    const full = fixture.reference.tensors.get(`grad.${name}`);
    const norm = fixture.reference.tensors.get(`gradnorm.${name}`);
    const errs: number[] = [];
    if (full) {
      expect(torch.shape, name).toEqual(full.shape);
      errs.push(relativeL2(torch.data, full.data));
    }
    if (norm) errs.push(Math.abs(l2(torch.data) - norm.data[0]!) / norm.data[0]!);
    if (errs.length === 0) throw new Error(`fixture ${fixture.name} has neither grad.${name} nor gradnorm.${name}`);
    for (const err of errs) {
      expect(err, `gradient of ${name}`).toBeLessThan(bounds.every);
      if (err >= 1e-3) errors.over1e3 += 1;
      if (err > errors.grad) {
        errors.grad = err;
        errors.gradWorst = name;
      }
      errors.compared += 1;
    }
  }
  expect(errors.over1e3, 'gradients off by 1e-3 or more').toBeLessThanOrEqual(Math.floor((1 - bounds.within1e3) * errors.compared));

  const after = exportTorchvisionStateDict(model);
  let runningCount = 0;
  for (const [key, tensor] of fixture.reference.tensors) {
    if (!key.startsWith('running_after.')) continue;
    const name = key.slice('running_after.'.length);
    const ours = after.get(name);
    if (!ours) throw new Error(`model has no ${name}`);
    const err = relativeError(ours.data, tensor.data);
    expect(err, name).toBeLessThan(1e-5);
    errors.running = Math.max(errors.running, err);
    runningCount += 1;
  }
  expect(runningCount).toBe(fixture.config.state_dict.filter(([n]) => n.endsWith('.running_mean')).length * 2);
  tf.dispose([x, y]);
  return errors;
}

function record(fixture: Fixture, mode: MemoryMode, e: ParityErrors, ms: number): void {
  summary.push(
    `${fixture.name}/${mode}: eval ${e.eval.toExponential(2)}, train ${e.train.toExponential(2)}, loss ${e.loss.toExponential(2)}, ` +
      `grad ${e.grad.toExponential(2)} (${e.gradWorst}; ${e.over1e3} of ${e.compared} ≥ 1e-3), running ${e.running.toExponential(2)}, ${(ms / 1000).toFixed(1)} s`,
  );
}

// ---------------------------------------------------------------- PyTorch side

const PYTHON_LOADER = String.raw`
import json, struct, sys
import numpy as np
import torch, torchvision
from torchvision.models.densenet import DenseNet
torch.set_num_threads(2)

def read(path):
    with open(path, 'rb') as handle:
        data = handle.read()
    n = struct.unpack('<Q', data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, entry in header.items():
        if name == '__metadata__':
            continue
        assert entry['dtype'] == 'F32', (name, entry['dtype'])
        begin, end = entry['data_offsets']
        array = np.frombuffer(data[8 + n + begin:8 + n + end], dtype='<f4').reshape(entry['shape'])
        out[name] = torch.from_numpy(array.copy())
    return out

results = []
for job in json.loads(sys.argv[1]):
    arch = job['arch']
    if job['variant'] == 'densenet121':
        model = torchvision.models.densenet121(num_classes=arch['num_classes'])
    else:
        model = DenseNet(growth_rate=arch['growth_rate'], block_config=tuple(arch['block_config']),
                         num_init_features=arch['num_init_features'], bn_size=arch['bn_size'],
                         drop_rate=arch['drop_rate'], num_classes=arch['num_classes'])
    keys = model.load_state_dict(read(job['weights']), strict=True)
    model.eval()
    with torch.no_grad():
        logits = model(read(job['reference'])['input_nchw'])
    results.append({'missing': list(keys.missing_keys), 'unexpected': list(keys.unexpected_keys),
                    'logits': logits.flatten().tolist()})
print(json.dumps(results))
`;

/** The first interpreter that imports torch and torchvision, or why none does. */
function findTorchPython(): { python?: string; why: string } {
  const candidates = [process.env['TORCH_PYTHON'], '/usr/bin/python3', 'python3'].filter((c): c is string => !!c);
  const tried: string[] = [];
  for (const python of candidates) {
    const probe = spawnSync(python, ['-c', 'import torch, torchvision'], { encoding: 'utf8', timeout: 60_000 });
    if (probe.status === 0) return { python, why: '' };
    tried.push(`${python}: ${probe.error?.message ?? probe.stderr.trim().split('\n').pop()}`);
  }
  return { why: tried.join('; ') };
}

interface PythonJob {
  variant: 'densenet121' | 'custom';
  arch: Architecture;
  weights: string;
  reference: string;
}

function runPython(python: string, jobs: PythonJob[]): { missing: string[]; unexpected: string[]; logits: number[] }[] {
  const result = spawnSync(python, ['-c', PYTHON_LOADER, JSON.stringify(jobs)], { encoding: 'utf8', timeout: 120_000, maxBuffer: 1 << 24 });
  if (result.status !== 0) throw new Error(`PyTorch loader failed (${result.status}): ${result.error?.message ?? result.stderr}`);
  return JSON.parse(result.stdout.trim().split('\n').pop()!) as { missing: string[]; unexpected: string[]; logits: number[] }[];
}

// ---------------------------------------------------------------- tests

let small: Fixture;
let dn121: Fixture;
let dir: string;
const saved: { job: PythonJob; tfjsLogits: Float32Array }[] = [];

beforeAll(async () => {
  await tf.setBackend('cpu');
  [small, dn121] = await Promise.all([loadFixture('small'), loadFixture('densenet121')]);
  dir = await mkdtemp(join(tmpdir(), 'torchvision-parity-'));
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  // The max errors of every run, for whoever reads the test log.
  if (summary.length > 0) console.log(`torchvision parity (relative errors; loss absolute):\n  ${summary.join('\n  ')}`);
});

describe('torchvisionNames', () => {
  it('maps every torchvision state_dict entry to a model variable of the matching shape', () => {
    const model = buildModel(small.config.architecture, small.config.image_size, 'naive');
    const names = torchvisionNames(model);
    expect([...names.keys()].sort()).toEqual(small.config.state_dict.map(([n]) => n));
    expect(new Set(names.values()).size).toBe(model.weights.length);
    expect(names.get('features.conv0.weight')!.originalName).toBe('stem/conv0/kernel');
    expect(names.get('features.denseblock2.denselayer3.norm2.running_var')!.originalName).toBe('denseblock2/denselayer3/norm2/moving_variance');
    expect(names.get('features.transition1.conv.weight')!.shape).toEqual([1, 1, 32, 16]);
    expect(names.get('classifier.weight')!.shape).toEqual([40, 5]);
    const exported = exportTorchvisionStateDict(model);
    for (const [name, shape] of small.config.state_dict) expect(exported.get(name)!.shape, name).toEqual(shape);
    // torchvision's own order: stem first, classifier last.
    expect([...names.keys()][0]).toBe('features.conv0.weight');
    expect([...names.keys()].at(-1)).toBe('classifier.bias');
    model.dispose();
  });

  it('rejects a model that is not one of our DenseNets', () => {
    const input = tf.input({ shape: [8] });
    const plain = tf.model({ inputs: input, outputs: tf.layers.dense({ units: 2, name: 'classifier' }).apply(input) as tf.SymbolicTensor, name: 'mlp' });
    expect(() => torchvisionNames(plain)).toThrow(UsageError);
    expect(() => torchvisionNames(plain)).toThrow(/model 'mlp' is not a DenseNet.*stem.*found: .*classifier:Dense/);
    expect(() => torchvisionNames({} as tf.LayersModel)).toThrow(/must be a tf.LayersModel/);
    plain.dispose();
  });
});

describe.each(MODES)('small torchvision fixture, %s mode', (mode) => {
  it('matches PyTorch: eval/train logits, loss, every gradient, running statistics', async () => {
    const start = Date.now();
    const model = buildModel(small.config.architecture, small.config.image_size, mode);
    const report = await loadTorchvisionWeights(model, `${ROOT}small/weights.safetensors`);
    expect(report.loaded.length).toBe(small.config.state_dict.length);
    expect([report.missing, report.unexpected, report.renamedLegacy]).toEqual([[], [], 0]);
    const errors = checkParity(small, model, EXACT_GRADIENTS);
    expect(errors.compared).toBe(model.trainableWeights.length);
    record(small, mode, errors, Date.now() - start);
    model.dispose();
  });
});

describe.each(DENSENET121_MODES)('densenet121 torchvision fixture (64², batch 2), %s mode', (mode) => {
  it(
    'matches PyTorch: eval/train logits, loss, stored gradients and every gradient norm, running statistics',
    async () => {
      const start = Date.now();
      const model = buildModel(dn121.config.architecture, dn121.config.image_size, mode);
      await loadTorchvisionWeights(model, dn121.weights);
      if (saved.every((s) => s.job.variant !== 'densenet121')) {
        // Saved before training changes the running statistics, so PyTorch's eval logits are the fixture's.
        const path = join(dir, 'densenet121.safetensors');
        await saveTorchvisionWeights(model, path);
        saved.push({
          job: { variant: 'densenet121', arch: dn121.config.architecture, weights: path, reference: `${ROOT}densenet121/reference.safetensors` },
          tfjsLogits: ref(dn121, 'eval_logits'),
        });
      }
      await settleTestRunner();
      const errors = checkParity(dn121, model, DENSENET121_GRADIENTS);
      // Four full gradients plus a norm for every parameter.
      expect(errors.compared).toBe(model.trainableWeights.length + 4);
      record(dn121, mode, errors, Date.now() - start);
      model.dispose();
    },
    400_000,
  );
});

describe('save and load', () => {
  it('round-trips bit-exactly through saveTorchvisionWeights and loadTorchvisionWeights', async () => {
    const model = buildModel(small.config.architecture, small.config.image_size, 'layer');
    await loadTorchvisionWeights(model, small.weights);
    const path = join(dir, 'small-roundtrip.safetensors');
    await saveTorchvisionWeights(model, path);
    const file = await readSafetensors(path);
    expect(file.metadata).toEqual({ format: 'pt' });
    expect([...file.tensors.values()].every((t) => t.dtype === 'F32')).toBe(true);
    expect(sameStateDict(file.tensors, small.weights)).toBe(true);

    const other = buildModel(small.config.architecture, small.config.image_size, 'naive');
    expect(sameStateDict(exportTorchvisionStateDict(other), small.weights)).toBe(false);
    await loadTorchvisionWeights(other, path);
    expect(sameStateDict(exportTorchvisionStateDict(other), small.weights)).toBe(true);
    const bytes = new Uint8Array(await readFile(path));
    await loadTorchvisionWeights(other, bytes);
    expect(sameStateDict(exportTorchvisionStateDict(other), small.weights)).toBe(true);
    model.dispose();
    other.dispose();
  });

  it('writes a file torchvision loads with load_state_dict(strict=True) and the same eval logits', async () => {
    // A model with its own (non-PyTorch) weights, so this checks the export independently of the import.
    const model = perturbNorms(buildModel(small.config.architecture, small.config.image_size, 'bottleneck'), 5);
    const path = join(dir, 'small-own.safetensors');
    await saveTorchvisionWeights(model, path);
    const x = inputNhwc(small);
    const logits = tf.tidy(() => Float32Array.from((model.predict(x) as tf.Tensor).dataSync()));
    x.dispose();
    model.dispose();
    const jobs = [
      { job: { variant: 'custom' as const, arch: small.config.architecture, weights: path, reference: `${ROOT}small/reference.safetensors` }, tfjsLogits: logits },
      ...saved,
    ];
    expect(jobs.some((j) => j.job.variant === 'densenet121')).toBe(DENSENET121_MODES.length > 0);

    const { python, why } = findTorchPython();
    if (!python) {
      console.log(`SKIPPED the PyTorch load check (no python3 with torch and torchvision: ${why}); the files were written and round-trip in TypeScript`);
      return;
    }
    const results = runPython(python, jobs.map((j) => j.job));
    results.forEach((result, i) => {
      const { job, tfjsLogits } = jobs[i]!;
      expect(result.missing, job.weights).toEqual([]);
      expect(result.unexpected, job.weights).toEqual([]);
      const err = relativeError(Float32Array.from(result.logits), tfjsLogits);
      expect(err, job.weights).toBeLessThan(1e-4);
      summary.push(`PyTorch load_state_dict(strict=True) of saved ${job.variant}: eval logits ${err.toExponential(2)}`);
    });
  }, 120_000);
});

describe('loadTorchvisionWeights input checks', () => {
  let model: tf.LayersModel;
  beforeAll(() => {
    model = buildModel(small.config.architecture, small.config.image_size, 'naive');
  });
  afterAll(() => model.dispose());

  async function expectRejected(source: Map<string, TorchvisionTensor>, ...patterns: RegExp[]): Promise<void> {
    const before = exportTorchvisionStateDict(model);
    const error = await loadTorchvisionWeights(model, source).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    for (const pattern of patterns) expect((error as Error).message).toMatch(pattern);
    // Validation precedes every write: the model is untouched.
    expect(sameStateDict(exportTorchvisionStateDict(model), before)).toBe(true);
  }

  it('names a missing tensor (strict) and reports it in a non-strict load', async () => {
    const source = new Map(small.weights);
    source.delete('features.denseblock2.denselayer3.norm2.running_var');
    await expectRejected(source, /missing 1 tensor\(s\).*features\.denseblock2\.denselayer3\.norm2\.running_var/);
    const logger = recordingLogger();
    const report = await loadTorchvisionWeights(model, source, { strict: false, logger });
    expect(report.missing).toEqual(['features.denseblock2.denselayer3.norm2.running_var']);
    expect(logger.warnings.join('\n')).toMatch(/left 1 model tensor\(s\) unchanged/);
    const exported = exportTorchvisionStateDict(model);
    expect(bitsEqual(exported.get('features.conv0.weight')!.data, small.weights.get('features.conv0.weight')!.data)).toBe(true);
  });

  it('names unexpected tensors, a few of them and how many more', async () => {
    const source = new Map(small.weights);
    source.set('features.extra.weight', { shape: [1], data: new Float32Array(1) });
    await expectRejected(source, /unexpected 1 tensor\(s\).*'?features\.extra\.weight/);
    for (let i = 0; i < 7; i++) source.set(`features.extra${i}.weight`, { shape: [1], data: new Float32Array(1) });
    await expectRejected(source, /unexpected 8 tensor\(s\).* and 3 more/);
    // A leading 'module.' (DataParallel, timm) is dropped rather than refused: test/pth.test.ts loads such names.
  });

  it('names a tensor of the wrong shape with both shapes in PyTorch layout', async () => {
    const source = new Map(small.weights);
    source.set('features.conv0.weight', { shape: [16, 3, 5, 5], data: new Float32Array(16 * 3 * 25) });
    await expectRejected(source, /'features\.conv0\.weight' is \[16, 3, 5, 5\] in the source, the model needs \[16, 3, 7, 7\]/);
    const bad = new Map(small.weights);
    bad.set('features.norm0.bias', { shape: [16], data: new Float32Array(15) });
    await expectRejected(bad, /'features\.norm0\.bias' has shape \[16\] \(16 values\) but 15 values/);
  });

  it('accepts the legacy norm.1 / conv.1 names of old checkpoints, and rejects a tensor under both names', async () => {
    const legacy = new Map<string, TorchvisionTensor>();
    for (const [name, tensor] of small.weights) legacy.set(name.replace(/(denselayer\d+\.(?:norm|conv))([12])\./, '$1.$2.'), tensor);
    expect(legacy.has('features.denseblock1.denselayer1.norm.1.running_mean')).toBe(true);
    expect(legacy.has('features.denseblock1.denselayer1.conv.2.weight')).toBe(true);
    const fresh = buildModel(small.config.architecture, small.config.image_size, 'naive');
    const report = await loadTorchvisionWeights(fresh, legacy);
    expect(report.renamedLegacy).toBe(5 * 10);
    expect(sameStateDict(exportTorchvisionStateDict(fresh), small.weights)).toBe(true);
    fresh.dispose();
    legacy.set('features.denseblock1.denselayer1.norm1.weight', small.weights.get('features.denseblock1.denselayer1.norm1.weight')!);
    await expectRejected(legacy, /'features\.denseblock1\.denselayer1\.norm\.1\.weight' and 'features\.denseblock1\.denselayer1\.norm1\.weight' both give/);
  });

  it('ignores num_batches_tracked, including the I64 scalars PyTorch exports', async () => {
    const entries: { name: string; dtype: string; shape: number[]; bytes: Uint8Array }[] = [];
    for (const [name, t] of small.weights) {
      entries.push({ name, dtype: 'F32', shape: [...t.shape], bytes: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) });
      if (name.endsWith('.running_var')) {
        entries.push({ name: name.replace(/running_var$/, 'num_batches_tracked'), dtype: 'I64', shape: [], bytes: new Uint8Array(new BigInt64Array([7n]).buffer) });
      }
    }
    let offset = 0;
    const header: Record<string, unknown> = {};
    for (const e of entries) {
      header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + e.bytes.length] };
      offset += e.bytes.length;
    }
    const text = new TextEncoder().encode(JSON.stringify(header));
    const file = new Uint8Array(8 + text.length + offset);
    new DataView(file.buffer).setBigUint64(0, BigInt(text.length), true);
    file.set(text, 8);
    let cursor = 8 + text.length;
    for (const e of entries) {
      file.set(e.bytes, cursor);
      cursor += e.bytes.length;
    }
    const path = join(dir, 'with-batches-tracked.safetensors');
    await writeFile(path, file);
    const fresh = buildModel(small.config.architecture, small.config.image_size, 'naive');
    const report = await loadTorchvisionWeights(fresh, path);
    expect(report.unexpected).toEqual([]);
    expect(sameStateDict(exportTorchvisionStateDict(fresh), small.weights)).toBe(true);
    const withMap = new Map(small.weights);
    withMap.set('features.norm0.num_batches_tracked', { shape: [], data: new Float32Array([3]) });
    await loadTorchvisionWeights(fresh, withMap);
    fresh.dispose();
  });

  it('skipClassifier keeps the model\'s own classifier of another class count and warns', async () => {
    const three = buildModel(small.config.architecture, small.config.image_size, 'naive', 3);
    const before = exportTorchvisionStateDict(three);
    const error = await loadTorchvisionWeights(three, small.weights).then(() => undefined, (e: unknown) => e);
    expect((error as Error).message).toMatch(/'classifier\.weight' is \[5, 40\] in the source, the model needs \[3, 40\]/);
    expect((error as Error).message).toMatch(/skipClassifier: true/);

    const logger = recordingLogger();
    const report = await loadTorchvisionWeights(three, small.weights, { skipClassifier: true, logger });
    expect(report.loaded).not.toContain('classifier.weight');
    expect(report.loaded.length).toBe(small.weights.size - 2);
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]).toMatch(/kept the model's own classifier \(3 classes\); ignored the source's classifier\.bias, classifier\.weight \(5 classes\)/);
    const after = exportTorchvisionStateDict(three);
    for (const [name, tensor] of after) {
      const expected = name.startsWith('classifier.') ? before.get(name)! : small.weights.get(name)!;
      expect(bitsEqual(tensor.data, expected.data), name).toBe(true);
    }
    // A source without a classifier at all (a feature extractor's state_dict) loads the same way.
    const features = new Map([...small.weights].filter(([name]) => !name.startsWith('classifier.')));
    await loadTorchvisionWeights(three, features, { skipClassifier: true });
    three.dispose();
  });

  it('rejects bad sources and options by name', async () => {
    await expect(loadTorchvisionWeights(model, 42 as unknown as Uint8Array)).rejects.toThrow(/source must be a weights file path.*number 42/);
    await expect(loadTorchvisionWeights(model, join(dir, 'nope.safetensors'))).rejects.toThrow(/weights file '.*nope\.safetensors': cannot be read/);
    await expect(loadTorchvisionWeights(model, small.weights, { strict: 'yes' as unknown as boolean })).rejects.toThrow(/strict must be true or false/);
    await expect(loadTorchvisionWeights(model, small.weights, { skipClasifier: true } as never)).rejects.toThrow(/unknown loadTorchvisionWeights option 'skipClasifier'/);
    await expect(saveTorchvisionWeights(model, '')).rejects.toThrow(/path must be a non-empty string/);
  });
});
