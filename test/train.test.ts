import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { fileSystemHandler } from '../src/io/file-system.js';
import { createDenseNet, type CreateDenseNetOptions } from '../src/layers/densenet.js';
import { memoryModeOfModel } from '../src/layers/model-modes.js';
import { writeSyntheticImageFolder } from '../src/data/synthetic.js';
import { learningRateAt } from '../src/train/schedule.js';
import { TrainingOptimizer } from '../src/step/optimizers.js';
import { trainDenseNet, TrainingDivergedError, type BatchMetrics, type TrainDenseNetOptions } from '../src/train/index.js';
import { UsageError } from '../src/util/errors.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Small enough for the cpu backend: a step of 8 images at 32² takes tens of milliseconds. */
const TINY: CreateDenseNetOptions = { growthRate: 4, blockConfig: [2, 2], numInitFeatures: 8, bnSize: 2 };

let tmp: string;
let data: string;

beforeAll(async () => {
  await initBackend('cpu');
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'train-test-'));
  data = path.join(tmp, 'shapes');
  // 3 classes × 8 training images: 3 batches of 8 per epoch.
  await writeSyntheticImageFolder(data, { numClasses: 3, imagesPerClass: 8, valImagesPerClass: 2, imageSize: 32, seed: 3 });
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

function tinyRun(overrides: Partial<TrainDenseNetOptions> = {}): TrainDenseNetOptions {
  return { model: { ...TINY }, data, imageSize: 32, batchSize: 8, epochs: 3, seed: 5, ...overrides };
}

/** Every file under a folder, with its content hash. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string): Promise<void> => {
    for (const entry of await fs.readdir(d, { withFileTypes: true })) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) await walk(full);
      else out[path.relative(dir, full)] = createHash('sha256').update(await fs.readFile(full)).digest('hex');
    }
  };
  await walk(dir);
  return out;
}

async function snapshotFiles(outDir: string): Promise<{ epoch: number; weights: Buffer; optimizer: Buffer }> {
  const pointer = JSON.parse(await fs.readFile(path.join(outDir, 'snapshot.json'), 'utf8')) as { epoch: number; dir: string };
  const dir = path.join(outDir, pointer.dir);
  return { epoch: pointer.epoch, weights: await fs.readFile(path.join(dir, 'weights.bin')), optimizer: await fs.readFile(path.join(dir, 'optimizer.bin')) };
}

async function expectUsageError(promise: Promise<unknown>, ...words: string[]): Promise<string> {
  const error = await promise.then(
    () => {
      throw new Error('expected a UsageError, but training started and finished');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UsageError);
  const message = (error as Error).message;
  expect(message.split('\n')).toHaveLength(1);
  for (const word of words) expect(message).toContain(word);
  return message;
}

describe('trainDenseNet', () => {
  let uninterrupted: string;

  it('trains, writes the outputs, and a resumed in-process run equals the uninterrupted one', async () => {
    uninterrupted = path.join(tmp, 'uninterrupted');
    const batches: BatchMetrics[] = [];
    const before = tf.memory().numTensors;
    const result = await trainDenseNet(tinyRun({ outDir: uninterrupted, callbacks: { onBatchEnd: (m) => void batches.push(m) } }));
    expect(result.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
    expect(batches).toHaveLength(9);
    expect(batches[0]).toMatchObject({ epoch: 1, batch: 1, batches: 3 });
    expect(result.classNames).toEqual(['circle', 'square', 'triangle']);
    expect(result.seed).toBe(5);
    for (const h of result.history) {
      expect(Number.isFinite(h.trainLoss)).toBe(true);
      expect(h.valAccuracy).not.toBeNull();
      expect(h.trainImages).toBe(24);
    }
    // Adam + cosine by default: the rate falls within the run.
    expect(result.history[2]!.lr).toBeLessThan(result.history[0]!.lr);
    const files = await fs.readdir(uninterrupted);
    for (const f of ['snapshot.json', 'snapshots', 'model.json', 'weights.bin', 'classes.json', 'history.json', 'metrics.csv', 'loss.svg', 'accuracy.svg']) {
      expect(files).toContain(f);
    }
    expect(JSON.parse(await fs.readFile(path.join(uninterrupted, 'classes.json'), 'utf8'))).toEqual(['circle', 'square', 'triangle']);
    const csv = (await fs.readFile(path.join(uninterrupted, 'metrics.csv'), 'utf8')).trim().split('\n');
    expect(csv[0]).toBe('epoch,lr,train_loss,train_accuracy,val_loss,val_accuracy,train_images,seconds,images_per_second');
    expect(csv).toHaveLength(4);
    expect(await fs.readFile(path.join(uninterrupted, 'loss.svg'), 'utf8')).toContain('<svg');
    expect(await fs.readdir(path.join(uninterrupted, 'snapshots'))).toEqual(['epoch-0003']);
    const best = await tf.loadLayersModel(fileSystemHandler(uninterrupted));
    expect(best.outputs[0]!.shape).toEqual([null, 3]);
    best.dispose();
    result.model.dispose();
    expect(tf.memory().numTensors).toBe(before);

    // Crash in epoch 2 (a throwing callback), then resume: same weights and optimizer state, bit for bit.
    const crashed = path.join(tmp, 'crashed');
    const crash = trainDenseNet(
      tinyRun({
        outDir: crashed,
        callbacks: {
          onBatchEnd: ({ epoch, batch }) => {
            if (epoch === 2 && batch === 2) throw new Error('simulated crash');
          },
        },
      }),
    );
    await expect(crash).rejects.toThrow('simulated crash');
    expect((await snapshotFiles(crashed)).epoch).toBe(1);
    const resumed = await trainDenseNet({ outDir: crashed, resume: true, data });
    expect(resumed.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
    expect(resumed.seed).toBe(5);
    resumed.model.dispose();
    const a = await snapshotFiles(uninterrupted);
    const b = await snapshotFiles(crashed);
    expect(b.epoch).toBe(3);
    expect(b.weights.equals(a.weights)).toBe(true);
    expect(b.optimizer.equals(a.optimizer)).toBe(true);
    expect(resumed.history.map((h) => h.trainLoss)).toEqual(result.history.map((h) => h.trainLoss));
    expect(tf.memory().numTensors).toBe(before);
  });

  it('resumes a run SIGKILLed in a child process to the same weights as an uninterrupted run', async () => {
    const outDir = path.join(tmp, 'killed');
    const child = (resume: boolean) =>
      JSON.stringify({
        backend: 'cpu',
        batchDelayMs: resume ? 0 : 150,
        train: { ...tinyRun({ outDir }), ...(resume ? { resume: true } : {}) },
      });
    // Killed on its 2nd batch of epoch 2: the snapshot of epoch 1 exists, epoch 2 is half done.
    const first = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/train-child.ts', child(false)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    first.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const killedAt = await new Promise<{ epoch: number; batch: number } | null>((resolve) => {
      let buffered = '';
      first.stdout.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop()!;
        for (const line of lines) {
          const event = JSON.parse(line) as { epoch?: number; batch?: number };
          if (event.epoch === 2 && event.batch === 2) {
            first.kill('SIGKILL');
            resolve({ epoch: 2, batch: 2 });
          }
        }
      });
      first.on('exit', () => resolve(null));
    });
    const signal = await new Promise<NodeJS.Signals | null>((resolve) => {
      if (first.exitCode !== null || first.signalCode !== null) resolve(first.signalCode);
      else first.on('exit', (_code, sig) => resolve(sig));
    });
    expect(killedAt, stderr).toEqual({ epoch: 2, batch: 2 });
    expect(signal).toBe('SIGKILL');
    expect((await snapshotFiles(outDir)).epoch).toBe(1);

    const second = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/train-child.ts', child(true)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    second.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    second.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => second.on('exit', resolve));
    expect(code, err).toBe(0);
    const events = out.trim().split('\n').map((l) => JSON.parse(l) as { epoch?: number; done?: boolean });
    // The resumed run starts at epoch 2 and trains epochs 2 and 3 only.
    expect(events[0]).toMatchObject({ epoch: 2, batch: 1 });
    expect(events[events.length - 1]).toMatchObject({ done: true, epochs: 3 });

    const a = await snapshotFiles(uninterrupted);
    const b = await snapshotFiles(outDir);
    expect(b.epoch).toBe(3);
    expect(b.weights.equals(a.weights)).toBe(true);
    expect(b.optimizer.equals(a.optimizer)).toBe(true);
  });

  it('gives the same loss curve in every memory mode, named by memoryMode or by its alias', async () => {
    const curve = async (mode: Partial<TrainDenseNetOptions>) => {
      const losses: number[] = [];
      const result = await trainDenseNet(
        tinyRun({ epochs: 1, batchSize: 4, ...mode, optimizer: 'sgd', lr: 0.05, callbacks: { onBatchEnd: (m) => void losses.push(m.loss) } }),
      );
      expect(memoryModeOfModel(result.model), JSON.stringify(mode)).toBe(mode.memoryMode ?? (mode.memoryEfficient ? (mode.recompute ?? 'layer') : 'naive'));
      result.model.dispose();
      return losses;
    };
    const naive = await curve({ memoryMode: 'naive' });
    expect(naive).toHaveLength(6);
    // Learning happens (the comparison would be vacuous on a flat curve).
    expect(new Set(naive.map((l) => l.toFixed(6))).size).toBe(6);
    const others: Array<Partial<TrainDenseNetOptions>> = [{ memoryMode: 'layer' }, { memoryMode: 'block' }, { memoryEfficient: true, recompute: 'bottleneck' }, { memoryEfficient: false }];
    for (const mode of others) {
      const losses = await curve(mode);
      losses.forEach((loss, i) => expect(Math.abs(loss - naive[i]!) / Math.abs(naive[i]!)).toBeLessThan(1e-4));
    }
  });

  it('rejects bad input with one-line UsageErrors before allocating anything', async () => {
    const empty = path.join(tmp, 'empty');
    await fs.mkdir(empty, { recursive: true });
    const textOnly = path.join(tmp, 'text-only');
    for (const c of ['a', 'b']) {
      await fs.mkdir(path.join(textOnly, c), { recursive: true });
      await fs.writeFile(path.join(textOnly, c, 'notes.txt'), 'not an image');
    }
    const before = tf.memory().numTensors;
    await expectUsageError(trainDenseNet(tinyRun({ data: path.join(tmp, 'missing') })), 'does not exist', 'missing');
    await expectUsageError(trainDenseNet(tinyRun({ data: empty })), 'no class subfolders');
    await expectUsageError(trainDenseNet(tinyRun({ numClasses: 5 })), 'numClasses is 5', '3 class folders');
    await expectUsageError(trainDenseNet(tinyRun({ data: textOnly })), 'holds no images', 'other file');
    await expectUsageError(trainDenseNet(tinyRun({ imageSize: 16 })), 'imageSize', '≥ 32', '16');
    await expectUsageError(trainDenseNet(tinyRun({ batchSize: 0 })), 'batchSize', 'positive integer');
    await expectUsageError(trainDenseNet(tinyRun({ epochs: 0 })), 'epochs', 'positive integer');
    await expectUsageError(trainDenseNet(tinyRun({ optimizer: 'rmsprop' as 'adam' })), 'optimizer must be one of sgd, adam', 'rmsprop');
    await expectUsageError(trainDenseNet(tinyRun({ model: 'densenet99' as 'densenet121' })), 'model must be one of', 'densenet99');
    await expectUsageError(trainDenseNet(tinyRun({ model: { ...TINY, growthRate: 0 } })), 'growthRate');
    await expectUsageError(trainDenseNet(tinyRun({ pretrained: path.join(tmp, 'nope.safetensors') })), 'pretrained', 'does not exist');
    await expectUsageError(trainDenseNet(tinyRun({ resume: true })), 'resume needs outDir');
    await expectUsageError(trainDenseNet({ model: 'densenet121' }), 'data is required');
    expect(tf.memory().numTensors).toBe(before);
  });

  it('overwrites nothing in outDir when a start fails', async () => {
    const outDir = path.join(tmp, 'guarded');
    const first = await trainDenseNet(tinyRun({ outDir, epochs: 1 }));
    first.model.dispose();
    await fs.writeFile(path.join(outDir, 'sentinel.txt'), 'keep me');
    const before = await snapshot(outDir);
    expect(Object.keys(before)).toContain('sentinel.txt');
    expect(Object.keys(before)).toContain('snapshot.json');

    await expectUsageError(trainDenseNet(tinyRun({ outDir })), 'already holds training output', 'resume', 'overwrite');
    await expectUsageError(trainDenseNet(tinyRun({ outDir, batchSize: 0 })), 'batchSize');
    await expectUsageError(trainDenseNet(tinyRun({ outDir, resume: true, lr: 0.5 })), 'cannot resume', 'lr');
    await expectUsageError(trainDenseNet(tinyRun({ outDir, resume: true, data: path.join(tmp, 'missing') })), 'cannot resume', 'data');
    await expectUsageError(trainDenseNet(tinyRun({ outDir, overwrite: true, data: path.join(tmp, 'missing') })), 'does not exist');
    await expectUsageError(trainDenseNet(tinyRun({ outDir, resume: true, overwrite: true })), 'contradict');
    expect(await snapshot(outDir)).toEqual(before);
  });

  it('stops on a non-finite loss with a clear message and keeps the last good snapshot', async () => {
    // lr 1e10: the weights blow up within a few steps, before any snapshot.
    const exploded = path.join(tmp, 'exploded');
    const diverged = await trainDenseNet(tinyRun({ outDir: exploded, optimizer: 'sgd', lr: 1e10, epochs: 3 })).catch((e: unknown) => e);
    expect(diverged).toBeInstanceOf(TrainingDivergedError);
    expect((diverged as Error).message).toMatch(/training diverged: the loss became (NaN|Infinity|-Infinity) at epoch \d, batch \d/);
    expect((diverged as Error).message).toContain('learning rate 10000000000');

    // A NaN written into the model after epoch 1's snapshot: epoch 2 diverges, epoch 1's snapshot stays.
    const outDir = path.join(tmp, 'poisoned');
    const model = createDenseNet({ ...TINY, numClasses: 3, inputShape: [32, 32, 3], seed: 5 });
    const error = await trainDenseNet(
      tinyRun({
        model,
        outDir,
        callbacks: {
          onEpochEnd: ({ epoch }) => {
            if (epoch === 1) {
              const kernel = model.getLayer('classifier').getWeights()[0]!;
              model.getLayer('classifier').setWeights([tf.fill(kernel.shape, NaN), model.getLayer('classifier').getWeights()[1]!]);
            }
          },
        },
      }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrainingDivergedError);
    expect((error as Error).message).toContain('at epoch 2, batch 1');
    expect((error as Error).message).toContain(`the last good snapshot (epoch 1) is kept in ${outDir}`);
    const kept = await snapshotFiles(outDir);
    expect(kept.epoch).toBe(1);
    const weights = new Float32Array(kept.weights.buffer, kept.weights.byteOffset, kept.weights.byteLength / 4);
    expect(weights.every(Number.isFinite)).toBe(true);
    model.dispose();
  });

  it("refuses to resume an earlier version's run (checkpoint.json) rather than starting over in its folder", async () => {
    const outDir = path.join(tmp, 'legacy-run');
    await fs.mkdir(outDir, { recursive: true });
    await fs.writeFile(path.join(outDir, 'checkpoint.json'), JSON.stringify({ format: 'efficient-densenet-checkpoint', version: 1, epoch: 1, dir: 'checkpoints/epoch-0001' }));
    await expectUsageError(trainDenseNet(tinyRun({ outDir, resume: true })), 'earlier version', 'checkpoint.json', 'new outDir');
  });

  it('memoryBudget plans a memory mode per dense block, logs the plan, and refuses a budget nothing fits', async () => {
    const lines: string[] = [];
    const logger = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) };
    const result = await trainDenseNet(tinyRun({ epochs: 1, memoryBudget: '1GiB', logger }));
    expect(lines.find((l) => l.startsWith('memory plan:'))).toMatch(/denseblock1 \w+, denseblock2 \w+; whole step .* of 1 GiB/);
    expect(memoryModeOfModel(result.model)).not.toBe('');
    result.model.dispose();
    await expectUsageError(trainDenseNet(tinyRun({ epochs: 1, memoryBudget: '1KiB' })), 'memory budget 1 KiB is too small', 'the smallest whole step');
    await expectUsageError(trainDenseNet(tinyRun({ memoryBudget: '1GiB', memoryEfficient: true })), 'memoryBudget', 'drop memoryMode');
  });

  it('freezes the features: only the classifier changes', async () => {
    const model = createDenseNet({ ...TINY, numClasses: 3, inputShape: [32, 32, 3], seed: 9 });
    const before = model.getWeights().map((w) => w.dataSync().slice());
    const result = await trainDenseNet(tinyRun({ model, epochs: 1, freezeFeatures: true }));
    const after = result.model.getWeights().map((w) => w.dataSync());
    const names = result.model.weights.map((w) => w.originalName);
    names.forEach((name, i) => {
      const changed = after[i]!.some((v, j) => v !== before[i]![j]);
      expect(changed, name).toBe(name.startsWith('classifier/'));
    });
  });
});

describe('schedules and optimizers', () => {
  it("'step' divides by 10 at 50% and 75%; 'cosine' falls from the base rate towards 0", () => {
    const at = (epoch: number) => learningRateAt('step', 0.1, 8, { epoch, batch: 0, batchesPerEpoch: 10 });
    expect([0, 3, 4, 5, 6, 7].map(at).map((v) => Number(v.toPrecision(6)))).toEqual([0.1, 0.1, 0.01, 0.01, 0.001, 0.001]);
    const cos = (epoch: number, batch: number) => learningRateAt('cosine', 1, 4, { epoch, batch, batchesPerEpoch: 10 });
    expect(cos(0, 0)).toBe(1);
    expect(cos(2, 0)).toBeCloseTo(0.5, 12);
    expect(cos(3, 9)).toBeGreaterThan(0);
    expect(cos(3, 9)).toBeLessThan(0.01);
  });

  it('applies weight decay as PyTorch SGD does: grad += wd·w before the Nesterov momentum update', async () => {
    const w = tf.variable(tf.tensor2d([[1, -2]]), true, 'wd_test_w');
    const x = tf.tensor2d([[3], [0.5]]);
    const y = tf.tensor2d([[1]]);
    const opt = new TrainingOptimizer({ name: 'sgd', lr: 0.1, weightDecay: 0.01, momentum: 0.9 });
    // logits = w · x (one example, one class): the loss is 0, so the gradient is weight decay alone.
    const step = () => {
      const out = opt.step(() => tf.matMul(w, x), y, [w]);
      tf.dispose([out.loss, out.correct]);
    };
    step();
    // buf = g = wd·w; w -= lr·(g + m·buf) = lr·wd·w·(1 + m)
    const expected1 = [1, -2].map((v) => v - 0.1 * 0.01 * v * 1.9);
    const got1 = Array.from(w.dataSync());
    got1.forEach((v, i) => expect(v).toBeCloseTo(expected1[i]!, 6));
    step();
    const g2 = expected1.map((v) => 0.01 * v);
    const buf2 = g2.map((g, i) => 0.9 * 0.01 * [1, -2][i]! + g);
    const expected2 = expected1.map((v, i) => v - 0.1 * (g2[i]! + 0.9 * buf2[i]!));
    Array.from(w.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(expected2[i]!, 6));
    opt.dispose();
    tf.dispose([w, x, y]);
  });
});
