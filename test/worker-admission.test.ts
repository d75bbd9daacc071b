/**
 * What a data-parallel run may start, decided before any worker thread exists (src/parallel/admission.ts):
 * workers capped to the batch, refused above the cores unless allowOversubscribe, refused when their memory
 * does not fit; and the size messages. Every refusal here is checked to have started no worker thread
 * (workerThreadsStarted, counted where the pool creates one); the machine is played smaller through
 * `machine` where a test needs it.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { runBenchmark } from '../src/bench/benchmark.js';
import { measurePooledSteps } from '../src/bench/pooled-step.js';
import { parseBytes, parseCommandArgs } from '../src/cli/args.js';
import { MAX_BATCH_OPTIONS } from '../src/cli/commands/max-batch.js';
import { writeSyntheticImageFolder } from '../src/data/synthetic.js';
import { createDenseNet, type CreateDenseNetOptions } from '../src/layers/densenet.js';
import { admitWorkerCount, fitWorkerMemory, machine, WORKER_RUNTIME_BYTES } from '../src/parallel/admission.js';
import { workerThreadsStarted } from '../src/parallel/pool.js';
import { autoWorkers, MIN_PIXELS_PER_WORKER } from '../src/parallel/workers.js';
import { MEASURING_OPTIMIZER } from '../src/step/step.js';
import { trainDenseNet, validateTrainOptions, type TrainDenseNetOptions } from '../src/train/index.js';
import { UsageError } from '../src/util/errors.js';
import { formatSize } from '../src/util/format.js';
import { byteSize } from '../src/util/validate.js';

const MiB = 2 ** 20;
const SMALL: CreateDenseNetOptions = { growthRate: 4, blockConfig: [2, 2], numInitFeatures: 8, bnSize: 2 };
const realMachine = { ...machine };

let tmp: string;
let data: string;

beforeAll(async () => {
  await initBackend('wasm');
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'worker-admission-'));
  data = path.join(tmp, 'shapes');
  await writeSyntheticImageFolder(data, { numClasses: 3, imagesPerClass: 10, valImagesPerClass: 2, imageSize: 32, seed: 4 });
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});
afterEach(() => {
  Object.assign(machine, realMachine);
});

function run(options: Partial<TrainDenseNetOptions>): Promise<unknown> {
  return trainDenseNet({ model: { ...SMALL }, data, imageSize: 32, batchSize: 8, epochs: 1, seed: 1, augment: 'none', jpegQuality: null, ...options });
}

/** Runs `fn`, expects a UsageError matching every pattern, and that no worker thread was started meanwhile. */
async function refusedWithoutWorkers(fn: () => Promise<unknown>, ...patterns: RegExp[]): Promise<string> {
  const before = workerThreadsStarted();
  const error = await fn().then(
    () => new Error('expected a refusal, but it ran'),
    (e: unknown) => e as Error,
  );
  expect(error).toBeInstanceOf(UsageError);
  for (const pattern of patterns) expect(error.message).toMatch(pattern);
  expect(workerThreadsStarted()).toBe(before);
  return error.message;
}

describe('worker count: the batch and the cores', () => {
  it('more workers than images in a batch are capped to the batch, with one log line', () => {
    machine.cores = () => 64;
    const lines: string[] = [];
    const logger = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) };
    expect(admitWorkerCount({ workers: 16, batchSize: 8, logger })).toBe(8);
    expect(lines).toEqual(['workers 16 capped to 8: a batch of 8 gives each worker at least one image; more would hold a replica and train nothing (same result)']);
    expect(admitWorkerCount({ workers: 4, batchSize: 8, logger })).toBe(4);
    expect(lines).toHaveLength(1);
  });

  it('more workers than cores are refused, naming the core count, unless allowOversubscribe', () => {
    machine.cores = () => 2;
    expect(() => admitWorkerCount({ workers: 3, batchSize: 8 })).toThrow(UsageError);
    expect(() => admitWorkerCount({ workers: 3, batchSize: 8 })).toThrow(
      /^3 workers are more than this machine's 2 cores: .*use at most 2 \('auto' starts at most one per core\), or allowOversubscribe: true \(--allow-oversubscribe\)/,
    );
    // Capped first: 16 workers at batch 8 are 8, still above 2 cores; 4 workers at batch 2 are 2, which fit.
    expect(() => admitWorkerCount({ workers: 16, batchSize: 8 })).toThrow(/^16 workers \(8 once capped to the batch of 8\) are more than this machine's 2 cores/);
    expect(admitWorkerCount({ workers: 4, batchSize: 2 })).toBe(2);
    expect(admitWorkerCount({ workers: 3, batchSize: 8, allowOversubscribe: true })).toBe(3);
  });

  it('trainDenseNet and validateTrainOptions refuse workers above the cores before a worker starts', async () => {
    machine.cores = () => 2;
    await refusedWithoutWorkers(() => run({ workers: 3 }), /^3 workers are more than this machine's 2 cores/);
    await refusedWithoutWorkers(() => validateTrainOptions({ data, batchSize: 8, workers: 3 }), /more than this machine's 2 cores/);
    await refusedWithoutWorkers(() => run({ workers: 3, allowOversubscribe: 'yes' as unknown as boolean }), /allowOversubscribe must be true or false, got 'yes'/);
  });

  it('bench refuses more workers than the smallest batch, and more than the cores on a computing backend', async () => {
    machine.cores = () => 2;
    const bench = { model: 'densenet121' as const, imageSize: 32, modes: ['block' as const], numClasses: 4 };
    await refusedWithoutWorkers(() => runBenchmark({ ...bench, batches: [2, 8], workers: [1, 4], backend: 'meta' }), /^workers 4 with batch 2: more workers than images/);
    await refusedWithoutWorkers(() => runBenchmark({ ...bench, batches: [8], workers: [1, 3], backend: 'wasm' }), /^3 workers are more than this machine's 2 cores/);
    // meta starts no thread: any count may be planned for another machine.
    const planned = await runBenchmark({ ...bench, batches: [8], workers: [4], backend: 'meta' });
    expect(planned.results[0]!.totalPeakBytes).toBeGreaterThan(4 * planned.results[0]!.peakBytes!);
    await initBackend('wasm');
  });
});

describe('worker memory', () => {
  // A step of 10 MiB plus 1 MiB per image in the shard; the model of record 5 MiB.
  const stepBytes = async (shard: number) => (10 + shard) * MiB;
  const perWorker = (shard: number) => (10 + shard) * MiB + WORKER_RUNTIME_BYTES;

  it('returns the need when it fits: every worker (replica, shard, runtime) and the model of record', async () => {
    const need = await fitWorkerMemory({ workers: 4, batchSize: 16, stepBytes, recordBytes: 5 * MiB, freeBytes: 8 * 2 ** 30, heapLimitBytes: null });
    expect(need).toEqual({ workers: 4, shard: 4, stepBytes: 14 * MiB, perWorkerBytes: perWorker(4), recordBytes: 5 * MiB, totalBytes: 4 * perWorker(4) + 5 * MiB });
  });

  it('refuses a run that does not fit the free memory, with the figures and the largest count that fits', async () => {
    // 4 workers: 4 × 142 + 5 = 573 MiB; 3: 3 × 144 + 5 = 437 MiB fits 450 MiB.
    const free = 450 * MiB;
    await expect(fitWorkerMemory({ workers: 4, batchSize: 16, stepBytes, recordBytes: 5 * MiB, freeBytes: free, heapLimitBytes: null })).rejects.toThrow(
      /^4 workers need 573 MiB \(each 142 MiB: its replica and a shard of 4 images, 14 MiB, its own Node and tfjs ≈128 MiB; the main thread's model 5 MiB\), but only 450 MiB of memory is free; at most 3 workers fit/,
    );
    await expect(fitWorkerMemory({ workers: 4, batchSize: 16, stepBytes, recordBytes: 5 * MiB, freeBytes: 200 * MiB, heapLimitBytes: null })).rejects.toThrow(
      /no count from 2 to 4 fits: use workers 1 \(this thread\)/,
    );
  });

  it("refuses a worker whose step is over its backend's heap (wasm: 4 GiB)", async () => {
    const huge = async (shard: number) => shard * 2 ** 30;
    await expect(fitWorkerMemory({ workers: 2, batchSize: 10, stepBytes: huge, recordBytes: 0, freeBytes: 2 ** 40, heapLimitBytes: 4 * 2 ** 30 })).rejects.toThrow(
      /a worker's step \(5,120 MiB\) is over its backend's 4 GiB heap; use more workers \(smaller shards\) if memory allows/,
    );
  });

  it('trainDenseNet measures the workers on meta-wasm and refuses before a worker starts; a cap is logged once', async () => {
    machine.cores = () => 2;
    machine.freeMemoryBytes = () => 300 * MiB;
    const message = await refusedWithoutWorkers(
      () => run({ workers: 3, allowOversubscribe: true }),
      /^3 workers need .* \(each .*: its replica and a shard of 3 images, .*, exact on meta-wasm, its own Node and tfjs ≈128 MiB; the main thread's model .*\), but only 300 MiB of memory is free; at most 2 workers fit/,
    );
    expect(message.split('\n')).toHaveLength(1);
    const lines: string[] = [];
    const logger = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) };
    machine.freeMemoryBytes = () => 100 * MiB;
    await refusedWithoutWorkers(() => run({ workers: 16, allowOversubscribe: true, logger }), /^8 workers need .* but only 100 MiB of memory is free; no count from 2 to 8 fits: use workers 1 \(this thread\)/);
    expect(lines.filter((l) => l.includes('capped'))).toEqual(['workers 16 capped to 8: a batch of 8 gives each worker at least one image; more would hold a replica and train nothing (same result)']);
  });

  it("workers 'auto' is a rule: one per core and per image, each shard enough pixels to pay for its synchronization", () => {
    const at = (cores: number, batchSize: number, imageSize: number, backend = 'wasm') => autoWorkers({ backend, cores, batchSize, imageSize }).workers;
    expect(MIN_PIXELS_PER_WORKER).toBe(2 * 128 * 128);
    // The measured case: DenseNet-121 112² batch 16 on 2 cores.
    expect(autoWorkers({ backend: 'wasm', cores: 2, batchSize: 16, imageSize: 112 })).toEqual({ workers: 2, reason: '2 cores, batch 16 at 112²: one per core, shards of 8 images or fewer' });
    expect(at(2, 8, 112)).toBe(2); // 50,176 pixels a worker (measured 1.15× on a quiet machine)
    expect(at(2, 4, 128)).toBe(2); // two 128² images a worker: the threshold exactly
    expect(at(2, 3, 128)).toBe(1);
    expect(at(2, 4, 112)).toBe(1); // 25,088 pixels a worker: about break-even
    expect(autoWorkers({ backend: 'wasm', cores: 2, batchSize: 4, imageSize: 32 }).reason).toBe(
      '2 cores, batch 4 at 32²: 4,096 pixels, under 32,768 pixels for each of 2 workers: too little to pay for the synchronization',
    );
    expect(autoWorkers({ backend: 'cpu', cores: 2, batchSize: 1, imageSize: 224 })).toEqual({ workers: 1, reason: '2 cores, batch 1 at 224²: a batch of one image cannot be split' });
    expect(at(1, 64, 224)).toBe(1);
    expect(at(16, 4, 224)).toBe(4); // one per image
    expect(autoWorkers({ backend: 'wasm', cores: 16, batchSize: 16, imageSize: 128 })).toEqual({ workers: 8, reason: '16 cores, batch 16 at 128²: each shard at least 32,768 pixels, shards of 2 images or fewer' });
    expect(at(16, 64, 224, 'tensorflow')).toBe(1);
    expect(autoWorkers({ backend: 'webgpu', cores: 16, batchSize: 64, imageSize: 224 }).reason).toBe('the webgpu backend parallelises inside its kernels');
  });

  it("trainDenseNet with workers 'auto' logs what it chose and why, and takes fewer workers where memory does not fit", async () => {
    machine.cores = () => 2;
    const lines: string[] = [];
    const logger = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) };
    await run({ workers: 'auto', logger });
    expect(lines.filter((l) => l.startsWith('workers auto'))).toEqual([
      'workers auto: 1 (2 cores, batch 8 at 32²: 8,192 pixels, under 32,768 pixels for each of 2 workers: too little to pay for the synchronization)',
    ]);
    lines.length = 0;
    machine.freeMemoryBytes = () => 100 * MiB;
    const started = workerThreadsStarted();
    await run({ workers: 'auto', imageSize: 128, logger });
    expect(workerThreadsStarted()).toBe(started);
    const chosen = lines.filter((l) => l.startsWith('workers auto'));
    expect(chosen).toHaveLength(1);
    expect(chosen[0]).toMatch(/^workers auto: 1 \(2 cores, batch 8 at 128²: one per core, shards of 4 images or fewer; 2 workers' memory does not fit: 2 workers need .* but only 100 MiB of memory is free; not even 2 workers fit/);
  }, 60_000);

  it("bench's pooled steps check the workers' memory before starting them", async () => {
    machine.freeMemoryBytes = () => 100 * MiB;
    const model = createDenseNet({ ...SMALL, numClasses: 3, inputShape: [32, 32, 3] });
    try {
      await refusedWithoutWorkers(() => measurePooledSteps(model, { batchSize: 4, workers: 2, steps: 1, seed: 1, optimizer: MEASURING_OPTIMIZER }), /^2 workers need .* but only 100 MiB of memory is free; not even 2 workers fit/);
    } finally {
      model.dispose();
    }
  });
});

describe('sizes in messages', () => {
  it('echo the size given, in its unit', () => {
    expect(['1KiB', '16GB', '1.5GiB', '1000MiB', '4GiB', '1e9', '500'].map((s) => formatSize(byteSize('x', s)!))).toEqual(['1 KiB', '16 GB', '1.5 GiB', '1000 MiB', '4 GiB', '1 GB', '500 B']);
  });

  it('a negative or malformed size gets one line naming the option and what is allowed', () => {
    for (const bad of ['-5GiB', '4 gigs', '0', '']) {
      expect(() => parseBytes(bad, 'budget')).toThrow(`--budget: '${bad}' is not a size; use a positive number with a unit, e.g. 4GiB, 512MiB, 16GB (or a number of bytes)`);
    }
    expect(() => byteSize('memoryBudget', -5)).toThrow('memoryBudget: -5 is not a size; use a positive number with a unit');
  });

  it("a value beginning with '-' goes to its option (parseArgs would call it ambiguous); a missing value is named", () => {
    expect(parseCommandArgs(['--budget', '-5GiB', '--json'], MAX_BATCH_OPTIONS).values).toMatchObject({ budget: '-5GiB', json: true });
    expect(parseCommandArgs(['--budget=-5GiB'], MAX_BATCH_OPTIONS).values.budget).toBe('-5GiB');
    expect(() => parseCommandArgs(['--budget', '--json'], MAX_BATCH_OPTIONS)).toThrow(/^--budget needs a value$/);
    expect(() => parseCommandArgs(['--json', '--budget'], MAX_BATCH_OPTIONS)).toThrow(/^--budget needs a value$/);
  });

  it("trainDenseNet's memoryBudget message names the budget as given", async () => {
    await expect(run({ memoryBudget: '1KiB' })).rejects.toThrow(/^memory budget 1 KiB is too small for batch 8 at 32²/);
  });
});
