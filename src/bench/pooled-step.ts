/**
 * The time of a data-parallel training step: the same random batch and optimizer as measureTrainingStep, split
 * over a WorkerPool. What each worker's backend holds comes back too; tensor accounting per worker is a
 * single step at the shard's size (see runBenchConfig on meta).
 */
import * as tf from '@tensorflow/tfjs';
import { inputImageSize } from '../layers/densenet.js';
import { median } from '../util/stats.js';
import { backendPeakBytes } from '../memory/backend-memory.js';
import { WARMUP_STEPS, type RepeatedStep } from '../memory/measure.js';
import { WorkerPool } from '../parallel/pool.js';
import { checkWorkerMemory } from '../parallel/admission.js';
import { classifierIndices } from '../step/step.js';
import type { OptimizerSettings } from '../step/optimizers.js';

export interface PooledStepTiming {
  msPerStep: number;
  stepMs: number[];
  /** Per worker, in rank order. */
  workerBackendBytes: Array<number | null>;
  /** This process's backend (the model of record and the batch). */
  mainBackendBytes: number | null;
}

/** Data-parallel steps on one random batch, run again and again (the batch is split over the pool's workers). */
export interface PooledSteps extends RepeatedStep {
  pool: WorkerPool;
  /** Closes the pool and frees the batch. */
  close(): Promise<void>;
}

/** Checks the workers' memory, starts the pool and returns its repeated step (the same batch as measureTrainingStep's). */
export async function openPooledSteps(
  model: tf.LayersModel,
  options: { batchSize: number; workers: number; seed: number; optimizer: OptimizerSettings; syncBatchNorm?: boolean },
): Promise<PooledSteps> {
  const imageSize = inputImageSize(model)!;
  const numClasses = model.outputs[0]!.shape[1] as number;
  const { batchSize } = options;
  // Before any worker starts: the workers' memory (replica, shard, runtime) and the model of record must fit.
  await checkWorkerMemory({ model, workers: options.workers, batchSize, imageSize, numClasses, optimizer: options.optimizer });
  const xs = tf.randomNormal([batchSize, imageSize, imageSize, 3], 0, 1, 'float32', options.seed);
  const ys = tf.tidy(() => tf.oneHot(tf.randomUniform([batchSize], 0, numClasses, 'int32', options.seed), numClasses));
  let pool: WorkerPool;
  try {
    pool = await WorkerPool.start({ workers: options.workers, model, optimizer: { ...options.optimizer, featuresLrScale: 1 }, classifier: classifierIndices(model), syncBatchNorm: options.syncBatchNorm });
  } catch (error) {
    tf.dispose([xs, ys]);
    throw error;
  }
  return {
    pool,
    step: async () => void (await pool.step({ xs, ys, lr: options.optimizer.lr, features: true, dropout: { seed: options.seed, step: [0] } })),
    close: async () => {
      try {
        await pool.close();
      } finally {
        tf.dispose([xs, ys]);
      }
    },
  };
}

export async function measurePooledSteps(
  model: tf.LayersModel,
  options: { batchSize: number; workers: number; steps: number; seed: number; optimizer: OptimizerSettings; syncBatchNorm?: boolean },
): Promise<PooledStepTiming> {
  const pooled = await openPooledSteps(model, options);
  try {
    for (let i = 0; i < WARMUP_STEPS; i++) await pooled.step(); // as measureTrainingStep
    const stepMs: number[] = [];
    for (let i = 0; i < options.steps; i++) {
      const start = performance.now();
      await pooled.step();
      stepMs.push(performance.now() - start);
    }
    return { msPerStep: median(stepMs), stepMs, workerBackendBytes: await pooled.pool.backendPeakBytes(), mainBackendBytes: await backendPeakBytes() };
  } finally {
    await pooled.close();
  }
}
