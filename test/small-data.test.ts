/**
 * The small-data recipe, seeded dropout (repeats and resumes exactly, the same in every memory mode),
 * fine-tuning with frozen-then-unfrozen features from a checkpoint the project makes itself, and the
 * evaluation's confusion matrix. Tiny models on 32² images, cpu backend.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { fileSystemHandler } from '../src/io/file-system.js';
import { dropoutMask, withDropoutContext, type DropoutContext } from '../src/ops/dropout.js';
import { createDenseNet, type CreateDenseNetOptions } from '../src/layers/densenet.js';
import { imageFolderDataset } from '../src/data/dataset.js';
import { evaluateImageFolder } from '../src/train/evaluate-folder.js';
import { scanImageFolder } from '../src/data/image-folder.js';
import { trainDenseNet, type TrainDenseNetOptions } from '../src/train/index.js';
import { writeSyntheticImageFolder } from '../src/data/synthetic.js';
import { saveTorchvisionWeights } from '../src/weights/torchvision.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TINY: CreateDenseNetOptions = { growthRate: 4, blockConfig: [2, 2], numInitFeatures: 8, bnSize: 2 };
const DROPOUT: CreateDenseNetOptions = { ...TINY, dropRate: 0.2 };

let tmp: string;
let shapes: string;
let textures: string;

beforeAll(async () => {
  await initBackend('cpu');
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'small-data-test-'));
  shapes = path.join(tmp, 'shapes');
  textures = path.join(tmp, 'textures');
  await writeSyntheticImageFolder(shapes, { numClasses: 3, imagesPerClass: 8, valImagesPerClass: 2, imageSize: 32, seed: 3, valFormat: 'jpeg' });
  await writeSyntheticImageFolder(textures, { variant: 'textures', classes: ['hstripes', 'vstripes'], imagesPerClass: 8, valImagesPerClass: 3, imageSize: 32, seed: 4 });
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

function run(overrides: Partial<TrainDenseNetOptions> = {}): TrainDenseNetOptions {
  return { model: { ...DROPOUT }, data: shapes, imageSize: 32, batchSize: 8, epochs: 3, seed: 5, ...overrides };
}

async function snapshotFiles(outDir: string): Promise<{ epoch: number; weights: Buffer; optimizer: Buffer }> {
  const pointer = JSON.parse(await fs.readFile(path.join(outDir, 'snapshot.json'), 'utf8')) as { epoch: number; dir: string };
  const dir = path.join(outDir, pointer.dir);
  return { epoch: pointer.epoch, weights: await fs.readFile(path.join(dir, 'weights.bin')), optimizer: await fs.readFile(path.join(dir, 'optimizer.bin')) };
}

function childRun(args: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; killedAt: unknown; stderr: string }> {
  const parsed = JSON.parse(args) as { killAt?: { epoch: number; batch: number } };
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/train-child.ts', args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let killedAt: unknown = null;
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let buffered = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      const event = JSON.parse(line) as { epoch?: number; batch?: number };
      if (parsed.killAt && event.epoch === parsed.killAt.epoch && event.batch === parsed.killAt.batch && killedAt === null) {
        killedAt = event;
        child.kill('SIGKILL');
      }
    }
  });
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, killedAt, stderr })));
}

describe('seeded dropout', () => {
  let uninterrupted: string;

  it('derives each sample\'s mask from (seed, step, layer, global sample index)', () => {
    const mask = (context: DropoutContext, key: string, n = 4) =>
      withDropoutContext(context, () => {
        const t = dropoutMask([n, 8, 8, 16], { rate: 0.25, key });
        const values = t.dataSync().slice();
        t.dispose();
        return values;
      });
    const whole = mask({ seed: 1, step: [0, 3] }, 'denseblock1/denselayer1');
    // Elements are 0 or 1/(1 − rate), about a quarter of them 0.
    const keep = Math.fround(1 / 0.75);
    expect(whole.every((v) => v === 0 || v === keep)).toBe(true);
    const dropped = whole.filter((v) => v === 0).length / whole.length;
    expect(dropped).toBeGreaterThan(0.2);
    expect(dropped).toBeLessThan(0.3);
    // The same context repeats; the second half of the batch, as a data-parallel worker with sampleOffset 2 sees it, matches.
    expect(mask({ seed: 1, step: [0, 3] }, 'denseblock1/denselayer1')).toEqual(whole);
    const half = 8 * 8 * 16 * 2;
    expect(mask({ seed: 1, step: [0, 3], sampleOffset: 2 }, 'denseblock1/denselayer1', 2)).toEqual(whole.slice(half));
    // Another seed, step or layer: another mask.
    for (const [context, key] of [
      [{ seed: 2, step: [0, 3] }, 'denseblock1/denselayer1'],
      [{ seed: 1, step: [0, 4] }, 'denseblock1/denselayer1'],
      [{ seed: 1, step: [0, 3] }, 'denseblock1/denselayer2'],
    ] as const) {
      expect(mask(context, key)).not.toEqual(whole);
    }
  });

  it('repeats exactly with the same seed, and differs with another', async () => {
    uninterrupted = path.join(tmp, 'dropout-a');
    (await trainDenseNet(run({ outDir: uninterrupted }))).model.dispose();
    const again = path.join(tmp, 'dropout-b');
    (await trainDenseNet(run({ outDir: again }))).model.dispose();
    const other = path.join(tmp, 'dropout-c');
    (await trainDenseNet(run({ outDir: other, seed: 6 }))).model.dispose();
    const [a, b, c] = await Promise.all([uninterrupted, again, other].map(snapshotFiles));
    expect(b.weights.equals(a.weights)).toBe(true);
    expect(b.optimizer.equals(a.optimizer)).toBe(true);
    expect(c.weights.equals(a.weights)).toBe(false);
  });

  it('SIGKILLed during training with dropRate > 0 and resumed: weights and optimizer state byte-identical', async () => {
    const outDir = path.join(tmp, 'dropout-killed');
    const train = run({ outDir });
    const first = await childRun(JSON.stringify({ backend: 'cpu', batchDelayMs: 150, train, killAt: { epoch: 2, batch: 2 } }));
    expect(first.killedAt, first.stderr).toEqual({ epoch: 2, batch: 2 });
    expect(first.signal).toBe('SIGKILL');
    expect((await snapshotFiles(outDir)).epoch).toBe(1);
    const second = await childRun(JSON.stringify({ backend: 'cpu', train: { ...train, resume: true } }));
    expect(second.code, second.stderr).toBe(0);
    const a = await snapshotFiles(uninterrupted);
    const b = await snapshotFiles(outDir);
    expect(b.epoch).toBe(3);
    expect(b.weights.equals(a.weights)).toBe(true);
    expect(b.optimizer.equals(a.optimizer)).toBe(true);
  });

  it('draws the same masks in every memory mode (the losses agree to rounding)', async () => {
    const curve = async (memoryEfficient: boolean, recompute?: 'layer' | 'bottleneck') => {
      const losses: number[] = [];
      const result = await trainDenseNet(
        run({ epochs: 1, memoryEfficient, recompute, augment: 'none', optimizer: 'sgd', lr: 0.05, callbacks: { onBatchEnd: (m) => void losses.push(m.loss) } }),
      );
      result.model.dispose();
      return losses;
    };
    const naive = await curve(false);
    for (const mode of ['layer', 'bottleneck'] as const) {
      const other = await curve(true, mode);
      other.forEach((loss, i) => expect(loss, `${mode} batch ${i}`).toBeCloseTo(naive[i]!, 4));
    }
  });
});

describe('small-data recipe', () => {
  it('is applied to a small folder, logged once, recorded in history.json, and yields the same images for the same seed', async () => {
    const outDir = path.join(tmp, 'recipe');
    const lines: string[] = [];
    const result = await trainDenseNet(
      run({ model: { ...TINY }, epochs: 1, outDir, logger: { info: (m) => lines.push(m), warn: (m) => lines.push(m) } }),
    );
    result.model.dispose();
    const settingsLines = lines.filter((l) => l.startsWith('settings'));
    expect(settingsLines).toHaveLength(1);
    expect(settingsLines[0]).toContain('small-data recipe: 24 training images');
    expect(settingsLines[0]).toContain('augment crop*');
    const history = JSON.parse(await fs.readFile(path.join(outDir, 'history.json'), 'utf8'));
    expect(history.recipe).toBe('small-data');
    expect(history.settings).toMatchObject({ augment: 'crop', cropPadding: 4, flip: true, photometric: 0, jpegQuality: [40, 95], labelSmoothing: 0, weightDecay: 0 });
    expect(history.defaults).toEqual(expect.arrayContaining(['augment', 'photometric', 'jpegQuality', 'labelSmoothing', 'weightDecay']));
    expect(history.defaults).not.toContain('seed');
    expect(history.defaults).not.toContain('epochs');
    // Given settings win over the recipe.
    const plain = await trainDenseNet(run({ model: { ...TINY }, epochs: 1, augment: 'none', labelSmoothing: 0.05, outDir: path.join(tmp, 'recipe-given') }));
    plain.model.dispose();
    const given = JSON.parse(await fs.readFile(path.join(tmp, 'recipe-given', 'history.json'), 'utf8'));
    expect(given.settings).toMatchObject({ augment: 'none', labelSmoothing: 0.05, jpegQuality: [40, 95] });

    const folder = await scanImageFolder(shapes, { seed: 5 });
    const recipe = { augment: 'crop', cropPadding: 4, flip: true, photometric: 0.2, jpegQuality: [40, 95], imageSize: 32, batchSize: 24, numClasses: 3, shuffle: true } as const;
    const images = async (seed: number) => {
      const [batch] = await imageFolderDataset(folder.train, { ...recipe, seed }).toArray();
      const values = batch!.xs.dataSync().slice();
      tf.dispose([batch!.xs, batch!.ys]);
      return values;
    };
    const [a, b, c] = [await images(1), await images(1), await images(2)];
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    expect(Buffer.from(a.buffer).equals(Buffer.from(c.buffer))).toBe(false);
  });
});

describe('fine-tuning from a checkpoint the project makes', () => {
  it('exports a model trained on shapes, fine-tunes it on textures: frozen features first, then all move; resume is bit-exact across the unfreeze', async () => {
    const base = await trainDenseNet(run({ model: { ...TINY }, epochs: 1, augment: 'none' }));
    const checkpoint = path.join(tmp, 'shapes.safetensors');
    await saveTorchvisionWeights(base.model, checkpoint);
    const pretrained = new Map(base.model.weights.map((w, i) => [w.originalName, base.model.getWeights()[i]!.dataSync().slice() as Float32Array]));
    base.model.dispose();

    const weightsOf = async (outDir: string): Promise<Map<string, Float32Array>> => {
      const pointer = JSON.parse(await fs.readFile(path.join(outDir, 'snapshot.json'), 'utf8')) as { dir: string };
      const saved = await tf.loadLayersModel(fileSystemHandler(path.join(outDir, pointer.dir)));
      const values = saved.getWeights().map((w) => w.dataSync().slice() as Float32Array);
      const map = new Map(saved.weights.map((w, i) => [w.originalName, values[i]!]));
      saved.dispose();
      return map;
    };
    const same = (a: Float32Array, b: Float32Array) => a.length === b.length && a.every((v, i) => Object.is(v, b[i]));
    const fineTune = (outDir: string, extra: Partial<TrainDenseNetOptions> = {}): TrainDenseNetOptions => ({
      model: { ...TINY },
      data: textures,
      imageSize: 32,
      batchSize: 8,
      epochs: 3,
      seed: 7,
      pretrained: checkpoint,
      unfreezeAfter: 1,
      outDir,
      ...extra,
    });

    const outDir = path.join(tmp, 'finetune');
    const perEpoch: Map<string, Float32Array>[] = [];
    const result = await trainDenseNet({ ...fineTune(outDir), callbacks: { onEpochEnd: async () => void perEpoch.push(await weightsOf(outDir)) } });
    result.model.dispose();
    expect(perEpoch).toHaveLength(3);
    const [epoch1, epoch2] = perEpoch as [Map<string, Float32Array>, Map<string, Float32Array>];
    for (const [name, value] of epoch1) {
      if (name.startsWith('classifier/')) {
        expect(same(value, epoch2.get(name)!), name).toBe(false);
      } else {
        // Frozen: the features (running statistics included) are still the checkpoint's.
        expect(same(value, pretrained.get(name)!), name).toBe(true);
        // Unfrozen in epoch 2: every feature weight moves (BatchNorm statistics too, in training mode).
        expect(same(value, epoch2.get(name)!), name).toBe(false);
      }
    }
    const history = JSON.parse(await fs.readFile(path.join(outDir, 'history.json'), 'utf8'));
    expect(history.settings).toMatchObject({ freezeFeatures: true, unfreezeAfter: 1, featuresLrScale: 0.1 });

    // Crash in epoch 2 (just after the unfreeze), resume: the same weights and optimizer state.
    const crashed = path.join(tmp, 'finetune-crashed');
    const crash = trainDenseNet({
      ...fineTune(crashed),
      callbacks: {
        onBatchEnd: ({ epoch, batch }) => {
          if (epoch === 2 && batch === 1) throw new Error('simulated crash');
        },
      },
    });
    await expect(crash).rejects.toThrow('simulated crash');
    (await trainDenseNet({ outDir: crashed, resume: true })).model.dispose();
    const [a, b] = [await snapshotFiles(outDir), await snapshotFiles(crashed)];
    expect(b.epoch).toBe(3);
    expect(b.weights.equals(a.weights)).toBe(true);
    expect(b.optimizer.equals(a.optimizer)).toBe(true);
  });
});

describe('evaluation', () => {
  it("evaluateImageFolder's confusion matrix equals a count by hand; the CLI prints it and writes the SVG", async () => {
    const model = createDenseNet({ ...TINY, numClasses: 3, inputShape: [32, 32, 3], seed: 11 });
    const classNames = ['circle', 'square', 'triangle'];
    const result = await evaluateImageFolder(model, shapes, { classNames, imageSize: 32, batchSize: 4 });
    expect(result.folder).toBe(path.join(shapes, 'val'));
    // By hand: each image on its own, argmax of the logits.
    const expected = classNames.map(() => [0, 0, 0]);
    for (const [label, name] of classNames.entries()) {
      const dir = path.join(shapes, 'val', name);
      for (const file of (await fs.readdir(dir)).sort()) {
        const [batch] = await imageFolderDataset([{ path: path.join(dir, file), label }], { imageSize: 32, batchSize: 1, numClasses: 3 }).toArray();
        const predicted = tf.tidy(() => (model.predict(batch!.xs) as tf.Tensor).argMax(-1).dataSync()[0]!);
        tf.dispose([batch!.xs, batch!.ys]);
        expected[label]![predicted]!++;
      }
    }
    expect(result.confusion).toEqual(expected);
    expect(result.images).toBe(6);
    const hits = expected.reduce((sum, row, i) => sum + row[i]!, 0);
    expect(result.accuracy).toBe(hits / 6);
    for (const [k, report] of result.perClass.entries()) {
      const predictedAs = expected.reduce((sum, row) => sum + row[k]!, 0);
      expect(report.recall).toBe(expected[k]![k]! / 2);
      expect(report.precision).toBe(predictedAs > 0 ? expected[k]![k]! / predictedAs : null);
    }

    // The CLI on the same model, saved as train --out would.
    const modelDir = path.join(tmp, 'eval-model');
    await model.save(fileSystemHandler(modelDir));
    await fs.writeFile(path.join(modelDir, 'classes.json'), JSON.stringify(classNames));
    model.dispose();
    const svg = path.join(tmp, 'confusion.svg');
    const cli = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'evaluate', '--model', modelDir, '--data', shapes, '--confusion', svg, '--backend', 'cpu', '--json'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    cli.stdout.on('data', (c: Buffer) => (out += c.toString()));
    cli.stderr.on('data', (c: Buffer) => (err += c.toString()));
    expect(await new Promise((resolve) => cli.on('exit', resolve)), err).toBe(0);
    expect(JSON.parse(out).confusion).toEqual(expected);
    const text = await fs.readFile(svg, 'utf8');
    expect(text).toContain('<svg');
    expect(text).toContain('triangle');
  });
});
