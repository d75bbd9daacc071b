/**
 * Data-parallel training (trainDenseNet's `workers`): N workers compute the same function as one process —
 * batch norm synchronized, dropout drawn per global sample, gradients summed in a fixed order — in every
 * memory mode; a worker that dies ends the run with a clear error, and resume continues as if nothing had
 * happened.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import type { CreateDenseNetOptions } from '../src/layers/densenet.js';
import { shardSizes, workerThreadsStarted } from '../src/parallel/pool.js';
import { resolveWorkers } from '../src/parallel/workers.js';
import { writeSyntheticImageFolder } from '../src/data/synthetic.js';
import { trainDenseNet, type TrainDenseNetOptions } from '../src/train/index.js';
import { UsageError } from '../src/util/errors.js';
import { MODES } from './helpers/models.js';

/** Two blocks with batch norm everywhere and dropout after every dense layer. */
const SMALL: CreateDenseNetOptions = { growthRate: 4, blockConfig: [2, 2], numInitFeatures: 8, bnSize: 2, dropRate: 0.2 };

let tmp: string;
let data: string;

beforeAll(async () => {
  await initBackend('wasm');
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'workers-test-'));
  data = path.join(tmp, 'shapes');
  // 3 classes × 10 training images at batch 8: 4 steps per epoch, the last one of 6 images.
  await writeSyntheticImageFolder(data, { numClasses: 3, imagesPerClass: 10, valImagesPerClass: 2, imageSize: 32, seed: 4 });
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

const modeOptions = (mode: string): Partial<TrainDenseNetOptions> =>
  ({ memoryMode: mode as TrainDenseNetOptions['memoryMode'] });

interface Run {
  losses: number[];
  weights: Float32Array[];
}

async function run(options: Partial<TrainDenseNetOptions>): Promise<Run> {
  const losses: number[] = [];
  const result = await trainDenseNet({
    model: { ...SMALL },
    data,
    imageSize: 32,
    batchSize: 8,
    epochs: 1,
    seed: 11,
    // No augmentation, so the batches are the same whatever decides the recipe.
    augment: 'none',
    jpegQuality: null,
    callbacks: { onBatchEnd: (m) => void losses.push(m.loss) },
    ...options,
  });
  const weights = result.model.getWeights().map((w) => w.dataSync() as Float32Array);
  result.model.dispose();
  return { losses, weights };
}

/** The largest ‖a − b‖ / ‖a‖ over the weight tensors (running statistics included). */
function maxRelativeDifference(a: Float32Array[], b: Float32Array[]): number {
  let worst = 0;
  a.forEach((wa, i) => {
    const wb = b[i]!;
    let diff = 0;
    let norm = 0;
    for (let j = 0; j < wa.length; j++) {
      diff += (wa[j]! - wb[j]!) ** 2;
      norm += wa[j]! ** 2;
    }
    worst = Math.max(worst, Math.sqrt(diff / Math.max(norm, 1e-30)));
  });
  return worst;
}

async function snapshotWeights(outDir: string): Promise<string> {
  const pointer = JSON.parse(await fs.readFile(path.join(outDir, 'snapshot.json'), 'utf8')) as { dir: string };
  const dir = path.join(outDir, pointer.dir);
  const hash = createHash('sha256');
  for (const file of ['weights.bin', 'optimizer.bin']) hash.update(await fs.readFile(path.join(dir, file)));
  return hash.digest('hex');
}

describe('data-parallel training', () => {
  it('splits a batch into shards as even as possible, larger first', () => {
    expect(shardSizes(8, 2)).toEqual([4, 4]);
    expect(shardSizes(8, 3)).toEqual([3, 3, 2]);
    expect(shardSizes(2, 3)).toEqual([1, 1, 0]);
  });

  it('resolves workers per backend and refuses more than one where tfjs parallelises itself', () => {
    expect(resolveWorkers(undefined, 'wasm')).toBe(1);
    expect(resolveWorkers('auto', 'wasm')).toBe(os.availableParallelism());
    expect(resolveWorkers('auto', 'tensorflow')).toBe(1);
    expect(() => resolveWorkers(2, 'webgpu')).toThrow(UsageError);
    expect(() => resolveWorkers(2, 'webgpu')).toThrow(/workers 2 needs the wasm or cpu backend/);
  });

  it('rejects a bad workers option before anything starts', async () => {
    await expect(trainDenseNet({ data, workers: 0 })).rejects.toThrow(/workers must be an integer from 1 to 256 or 'auto', got 0/);
    await expect(trainDenseNet({ data, workers: 'all' as unknown as number })).rejects.toThrow(UsageError);
    await expect(trainDenseNet({ data, workers: 2, syncBatchNorm: 'no' as unknown as boolean })).rejects.toThrow(/syncBatchNorm must be true or false, got 'no'/);
  });

  for (const mode of MODES) {
    it(`1 and 2 workers train the same function in the ${mode} mode (batch norm and dropout included)`, async () => {
      const one = await run({ ...modeOptions(mode), workers: 1 });
      const two = await run({ ...modeOptions(mode), workers: 2 });
      expect(one.losses).toHaveLength(4);
      expect(two.losses).toHaveLength(4);
      for (let i = 0; i < 4; i++) expect(Math.abs(two.losses[i]! - one.losses[i]!)).toBeLessThanOrEqual(1e-5);
      expect(maxRelativeDifference(one.weights, two.weights)).toBeLessThanOrEqual(1e-5);
      // Not trivially equal: the steps really changed the weights.
      const untrained = await run({ ...modeOptions(mode), epochs: 1, lr: 1e-12 });
      expect(maxRelativeDifference(one.weights, untrained.weights)).toBeGreaterThan(1e-3);
    }, 120_000);
  }

  it("syncBatchNorm false trains PyTorch DDP's function (per-worker statistics), not one process's, and the log says so", async () => {
    const lines: string[] = [];
    const logger = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) };
    const one = await run({ workers: 1 });
    const ddp = await run({ workers: 2, syncBatchNorm: false, logger });
    expect(lines).toContain("data-parallel: 2 workers on wasm, batch 8 split into shards of 4 or fewer, batch norm per worker, gradients averaged, rank 0's running statistics (PyTorch DDP's default)");
    // The first forward already differs: each half is normalised with its own statistics.
    expect(Math.abs(ddp.losses[0]! - one.losses[0]!)).toBeGreaterThan(1e-4);
    expect(maxRelativeDifference(one.weights, ddp.weights)).toBeGreaterThan(1e-3);
  }, 120_000);

  it('3 workers with uneven shards (3, 3, 2 and a last batch of 6) agree too, and a run repeats bit for bit', async () => {
    const one = await run({ workers: 1 });
    // More workers than a 2-core machine has: allowed only when asked for (src/parallel/admission.ts).
    const started = workerThreadsStarted();
    const three = await run({ workers: 3, allowOversubscribe: true });
    expect(workerThreadsStarted() - started).toBe(3);
    const again = await run({ workers: 3, allowOversubscribe: true });
    for (let i = 0; i < 4; i++) expect(Math.abs(three.losses[i]! - one.losses[i]!)).toBeLessThanOrEqual(1e-5);
    expect(maxRelativeDifference(one.weights, three.weights)).toBeLessThanOrEqual(1e-5);
    expect(again.losses).toEqual(three.losses);
    expect(maxRelativeDifference(three.weights, again.weights)).toBe(0);
  }, 120_000);

  it('SGD sharded over the workers (each updates its share): 1, 2 and 3 workers agree, and a resume from the shares is bit for bit', async () => {
    // Nesterov momentum with weight decay, the features frozen for an epoch and then at 0.1× the rate: both
    // parameter groups, a group that starts late, the schedule.
    const sgd: Partial<TrainDenseNetOptions> = { optimizer: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 1e-4, freezeFeatures: true, unfreezeAfter: 1, featuresLrScale: 0.1, epochs: 3 };
    const one = await run({ ...sgd, workers: 1 });
    const two = await run({ ...sgd, workers: 2, outDir: path.join(tmp, 'sgd-uninterrupted') });
    const three = await run({ ...sgd, workers: 3, allowOversubscribe: true });
    expect(one.losses).toHaveLength(12);
    for (const other of [two, three]) {
      for (let i = 0; i < 12; i++) expect(Math.abs(other.losses[i]! - one.losses[i]!)).toBeLessThanOrEqual(1e-5);
      expect(maxRelativeDifference(one.weights, other.weights)).toBeLessThanOrEqual(1e-5);
    }
    const untrained = await run({ ...sgd, workers: 1, lr: 1e-12 });
    expect(maxRelativeDifference(one.weights, untrained.weights)).toBeGreaterThan(1e-3);
    // Stopped in epoch 3 (step 10): epoch 2's snapshot holds the momentum gathered from both workers' shares,
    // which resume hands back to them.
    const stopped = path.join(tmp, 'sgd-stopped');
    process.env.EFFICIENT_DENSENET_WORKER_FAULT = 'throw@1:9';
    try {
      await expect(run({ ...sgd, workers: 2, outDir: stopped })).rejects.toThrow(/epoch 3, batch 2/);
    } finally {
      delete process.env.EFFICIENT_DENSENET_WORKER_FAULT;
    }
    const resumed = await trainDenseNet({ outDir: stopped, resume: true, data, workers: 2 });
    resumed.model.dispose();
    expect(await snapshotWeights(stopped)).toBe(await snapshotWeights(path.join(tmp, 'sgd-uninterrupted')));
  }, 180_000);

  it('a worker killed mid-step ends the run with a clear error within seconds; resume reaches the uninterrupted weights', async () => {
    const base: Partial<TrainDenseNetOptions> = { workers: 2, epochs: 3 };
    const uninterrupted = path.join(tmp, 'uninterrupted');
    await run({ ...base, outDir: uninterrupted });

    const killed = path.join(tmp, 'killed');
    // Worker 1 ends itself in the middle of its 6th step (epoch 2, batch 2), inside a batch-norm barrier.
    process.env.EFFICIENT_DENSENET_WORKER_FAULT = 'exit@1:5';
    let lastBatchAt = 0;
    let error: unknown;
    try {
      await run({ ...base, outDir: killed, callbacks: { onBatchEnd: () => void (lastBatchAt = performance.now()) } });
    } catch (e) {
      error = e;
    } finally {
      delete process.env.EFFICIENT_DENSENET_WORKER_FAULT;
    }
    const seconds = (performance.now() - lastBatchAt) / 1000;
    expect(error).toBeInstanceOf(Error);
    const message = (error as Error).message;
    expect(message).toMatch(/training stopped at epoch 2, batch 2: data-parallel worker 1 of 2 exited unexpectedly \(exit code 1\)/);
    expect(message).toContain(`the last good snapshot (epoch 1) is kept in ${killed}; resume continues from it`);
    expect(seconds).toBeLessThan(10);
    // The folder holds epoch 1's complete snapshot and nothing half-written.
    const pointer = JSON.parse(await fs.readFile(path.join(killed, 'snapshot.json'), 'utf8')) as { epoch: number };
    expect(pointer.epoch).toBe(1);
    expect((await fs.readdir(killed)).filter((f) => f.includes('.tmp'))).toEqual([]);

    const resumed = await trainDenseNet({ outDir: killed, resume: true, data, workers: 2 });
    expect(resumed.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
    resumed.model.dispose();
    expect(await snapshotWeights(killed)).toBe(await snapshotWeights(uninterrupted));
  }, 180_000);

  it('a worker that throws names itself and the cause', async () => {
    process.env.EFFICIENT_DENSENET_WORKER_FAULT = 'throw@0:1';
    try {
      await expect(run({ workers: 2 })).rejects.toThrow(/training stopped at epoch 1, batch 2: data-parallel worker 0 of 2 failed: injected fault in worker 0 at step 1/);
    } finally {
      delete process.env.EFFICIENT_DENSENET_WORKER_FAULT;
    }
  }, 60_000);
});
