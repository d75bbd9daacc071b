/**
 * The memory and speed benchmark behind `efficient-densenet bench`: one training step per (mode, batch) of a
 * torchvision DenseNet on random data. On `meta` everything runs in this process in seconds; on a real
 * backend each configuration runs in a child process of its own, because wasm heaps and GPU allocators never
 * shrink and one configuration's peak must not inflate the next's — and a crash stays that configuration's.
 */
import * as tf from '@tensorflow/tfjs';
import { spawn } from 'node:child_process';
import { describeOptimizer, MEASURING_OPTIMIZER } from '../step/step.js';
import type { OptimizerSettings } from '../step/optimizers.js';
import { explainOutOfMemory } from '../memory/out-of-memory-advice.js';
import { backendTraits } from '../backend/traits.js';
import { UsageError } from '../util/errors.js';
import { initBackend, type BackendName } from '../backend/index.js';
import { BUILDERS } from '../layers/densenet.js';
import { VARIANTS, type DenseNetVariant } from '../layers/config.js';
import type { BenchMode } from './config.js';
import { trainingStepFlops } from './flops.js';
import { measureTrainingStep } from '../memory/measure.js';
import { measurePooledSteps } from './pooled-step.js';
import { describeExit, nodeEntry } from './stepper.js';
import { checkWorkersBackend } from '../parallel/workers.js';
import { modelOfRecordBytes } from '../parallel/admission.js';

export interface BenchConfig {
  model: DenseNetVariant;
  mode: BenchMode;
  batch: number;
  imageSize: number;
  numClasses: number;
  steps: number;
  /** Data-parallel workers (each a replica and a shard of the batch); 1: this process alone. Default 1. */
  workers?: number;
  /** With workers: synchronized batch norm (default true), or PyTorch DDP's per-shard statistics (false). */
  syncBatchNorm?: boolean;
  /** The step's optimizer, the same in every row. Default: MEASURING_OPTIMIZER (SGD, Nesterov momentum 0.9). */
  optimizer?: OptimizerSettings;
}

export interface BenchResult {
  mode: BenchMode;
  batch: number;
  /** Data-parallel workers. With more than one, the tensor figures are one worker's: a replica and the largest shard. */
  workers: number;
  /**
   * The whole machine's. On meta: every worker's peak (replica and shard) and the main thread's model of
   * record (= peakBytes with one worker). On a computing backend: what the backends hold, every worker's and
   * this process's (= backendPeakBytes with one worker).
   */
  totalPeakBytes: number | null;
  /** Peak bytes of distinct tensor buffers during the step, above the baseline. */
  stepPeakBytes: number | null;
  /** Weights, optimizer state and batch. */
  baselineBytes: number | null;
  peakBytes: number | null;
  /** tfjs's own accounting (every tensor object counted, views and the tape's clones included). */
  engineStepPeakBytes: number | null;
  msPerStep: number | null;
  imagesPerSecond: number | null;
  /** Training FLOPs (3× forward) per second, in GFLOP/s; recomputation not counted. */
  effectiveGflops: number | null;
  /** What the backend itself holds: wasm heap, process peak RSS on cpu, GPU memory on tensorflow, GPU buffer pool peak on webgpu; null on meta. */
  backendPeakBytes: number | null;
  /** Why the configuration has no numbers (crash, out of memory). */
  error?: string;
}

export interface BenchReport {
  model: DenseNetVariant;
  imageSize: number;
  backend: string;
  numClasses: number;
  steps: number;
  /** The one training step every row runs: its optimizer, e.g. "SGD (Nesterov momentum 0.9)". */
  optimizer: string;
  /** Present (false) when the rows with workers ran without synchronized batch norm (PyTorch DDP's default). */
  syncBatchNorm?: false;
  results: BenchResult[];
}

export interface BenchmarkOptions {
  model: DenseNetVariant;
  batches: number[];
  imageSize: number;
  modes: readonly BenchMode[];
  backend: BackendName;
  steps?: number;
  numClasses?: number;
  /** Run each configuration in its own process (default: on every backend but meta). */
  isolate?: boolean;
  /** Called after each configuration (for progress bars). */
  onResult?: (result: BenchResult, done: number, total: number) => void;
  /** Called before each configuration. */
  onStart?: (config: BenchConfig, index: number, total: number) => void;
  /** Worker counts to run each configuration with (default [1]); none above a batch size. */
  workers?: number[];
  /** Run more workers than the machine has cores (refused by default; meta starts none and plans any count). */
  allowOversubscribe?: boolean;
  /** With workers: synchronized batch norm (default true), or PyTorch DDP's per-shard statistics (false). */
  syncBatchNorm?: boolean;
}

/** Runs one configuration in this process on the current backend. */
/** The configuration's model: torchvision's architecture, seeded weights (the same in every row and process). */
export function benchModel(config: BenchConfig): tf.LayersModel {
  return BUILDERS[config.model]({ numClasses: config.numClasses, inputShape: [config.imageSize, config.imageSize, 3], memoryMode: config.mode, seed: 1 });
}

export async function runBenchConfig(config: BenchConfig): Promise<BenchResult> {
  const workers = config.workers ?? 1;
  const optimizer = config.optimizer ?? MEASURING_OPTIMIZER;
  const model = benchModel(config);
  let failed = false;
  try {
    const flops = trainingStepFlops({ ...VARIANTS[config.model], bnSize: 4, numClasses: config.numClasses }, config.imageSize, config.batch);
    const meta = !backendTraits().computes;
    const timing = (ms: number | null) => ({
      msPerStep: ms,
      imagesPerSecond: ms === null ? null : (config.batch * 1000) / ms,
      effectiveGflops: ms === null ? null : flops / (ms * 1e6),
    });
    if (workers > 1 && !meta) {
      const pooled = await measurePooledSteps(model, { batchSize: config.batch, workers, steps: config.steps, seed: 1, optimizer, syncBatchNorm: config.syncBatchNorm });
      const heaps = [...pooled.workerBackendBytes, pooled.mainBackendBytes];
      return {
        mode: config.mode,
        batch: config.batch,
        workers,
        totalPeakBytes: heaps.every((b) => b !== null) ? heaps.reduce((a, b) => a! + b!, 0) : null,
        stepPeakBytes: null,
        baselineBytes: null,
        peakBytes: null,
        engineStepPeakBytes: null,
        ...timing(pooled.msPerStep),
        backendPeakBytes: Math.max(...pooled.workerBackendBytes.map((b) => b ?? 0)) || null,
      };
    }
    // One worker's step: a replica and the largest shard (the whole batch without workers).
    const shard = Math.ceil(config.batch / workers);
    const m = await measureTrainingStep({ model, batchSize: shard, steps: config.steps, seed: 1, optimizer });
    // With workers the main thread also keeps the model of record: its weights and, for snapshots, the optimizer state.
    const record = workers > 1 ? modelOfRecordBytes(model, optimizer) : 0;
    return {
      mode: config.mode,
      batch: config.batch,
      workers,
      // On a computing backend the whole machine's figure is what the backend holds, as in the rows with workers.
      totalPeakBytes: meta ? workers * m.peakBytes + record : m.backendPeakBytes,
      stepPeakBytes: m.stepPeakBytes,
      baselineBytes: m.baselineBytes,
      peakBytes: m.peakBytes,
      engineStepPeakBytes: m.engine.stepPeakBytes,
      ...timing(meta ? null : m.msPerStep),
      backendPeakBytes: m.backendPeakBytes,
    };
  } catch (error) {
    failed = true;
    throw explainOutOfMemory(error, { backend: tf.getBackend(), model: config.model, batchSize: config.batch, memoryMode: config.mode });
  } finally {
    // After a wasm out-of-memory the heap may be corrupt and dispose fail too: the first error is the one to report.
    try {
      model.dispose();
    } catch (disposeError) {
      if (!failed) throw disposeError;
    }
  }
}

export function failedResult(config: Pick<BenchConfig, 'mode' | 'batch' | 'workers'>, error: string): BenchResult {
  return {
    mode: config.mode,
    batch: config.batch,
    workers: config.workers ?? 1,
    totalPeakBytes: null,
    stepPeakBytes: null,
    baselineBytes: null,
    peakBytes: null,
    engineStepPeakBytes: null,
    msPerStep: null,
    imagesPerSecond: null,
    effectiveGflops: null,
    backendPeakBytes: null,
    error,
  };
}

/** Runs one configuration in a child process; a crash or an out-of-memory becomes that result's error. */
export function runBenchConfigIsolated(config: BenchConfig, backend: BackendName): Promise<BenchResult> {
  const { command, args } = nodeEntry(import.meta.url, 'child');
  return new Promise((resolve) => {
    const child = spawn(command, [...args, JSON.stringify({ config, backend })], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TF_FORCE_GPU_ALLOW_GROWTH: 'true' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', (error) => resolve(failedResult(config, `could not start the benchmark process: ${error.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) {
        try {
          resolve(JSON.parse(stdout) as BenchResult);
        } catch {
          const lastLine = stderr.trim().split('\n').filter(Boolean).pop() ?? '';
          resolve(failedResult(config, `the benchmark process printed no result (${lastLine || 'no output'})`));
        }
        return;
      }
      // A configuration refused before it started (a UsageError) says why; a crash, how it ended.
      resolve(failedResult(config, describeExit(code, signal, stderr)));
    });
  });
}

/**
 * Runs one configuration in a child process (isolate) or in this one; a failure becomes the result's error
 * instead of an exception, so a caller's other configurations still run.
 */
export async function runBenchConfigSafely(config: BenchConfig, backend: BackendName, isolate: boolean): Promise<BenchResult> {
  if (isolate) return runBenchConfigIsolated(config, backend);
  try {
    return await runBenchConfig(config);
  } catch (error) {
    return failedResult(config, error instanceof Error ? error.message : String(error));
  }
}

/** The config's syncBatchNorm where it departs from the default (so the default's configs stay as they were). */
export function syncOption(syncBatchNorm: boolean | undefined): { syncBatchNorm?: false } {
  return syncBatchNorm === false ? { syncBatchNorm: false } : {};
}

/** Runs every (mode, batch) configuration; failures are recorded and the others still run. */
export async function runBenchmark(options: BenchmarkOptions): Promise<BenchReport> {
  const steps = options.steps ?? 1;
  const numClasses = options.numClasses ?? 4;
  const workerCounts = options.workers ?? [1];
  // A worker without a shard would measure nothing (and count a replica that trains nothing).
  const most = Math.max(1, ...workerCounts);
  const least = Math.min(...options.batches);
  if (most > least) throw new UsageError(`workers ${most} with batch ${least}: more workers than images leaves workers without a shard; use batches of at least ${most} or fewer workers`);
  const backend = await initBackend(options.backend);
  const isolate = options.isolate ?? backendTraits(backend).computes;
  checkWorkersBackend(most, backend, { allowOversubscribe: options.allowOversubscribe });
  const configs: BenchConfig[] = options.modes.flatMap((mode) =>
    options.batches.flatMap((batch) => workerCounts.map((workers) => ({ model: options.model, mode, batch, imageSize: options.imageSize, numClasses, steps, workers, ...syncOption(options.syncBatchNorm) }))),
  );
  const results: BenchResult[] = [];
  for (const [index, config] of configs.entries()) {
    options.onStart?.(config, index, configs.length);
    const result = await runBenchConfigSafely(config, backend, isolate);
    results.push(result);
    options.onResult?.(result, index + 1, configs.length);
  }
  return { model: options.model, imageSize: options.imageSize, backend, numClasses, steps, optimizer: describeOptimizer(MEASURING_OPTIMIZER), ...syncOption(options.syncBatchNorm), results };
}
