/**
 * The time of a data-parallel training step: the same random batch and optimizer as measureTrainingStep, split
 * over a WorkerPool. What each worker's backend holds comes back too; tensor accounting per worker is a
 * single step at the shard's size (see runBenchConfig on meta).
 */
import * as tf from '@tensorflow/tfjs';
import { inputImageSize } from '../layers/densenet.js';
import { median } from '../util/stats.js';
import { backendPeakBytes } from '../memory/backend-memory.js';
import { WARMUP_STEPS } from '../memory/measure.js';
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

export async function measurePooledSteps(
  model: tf.LayersModel,
  options: { batchSize: number; workers: number; steps: number; seed: number; optimizer: OptimizerSettings; syncBatchNorm?: boolean },
): Promise<PooledStepTiming> {
  const imageSize = inputImageSize(model)!;
  const numClasses = model.outputs[0]!.shape[1] as number;
  const { batchSize } = options;
  // Before any worker starts: the workers' memory (replica, shard, runtime) and the model of record must fit.
  await checkWorkerMemory({ model, workers: options.workers, batchSize, imageSize, numClasses, optimizer: options.optimizer });
  const xs = tf.randomNormal([batchSize, imageSize, imageSize, 3], 0, 1, 'float32', options.seed);
  const ys = tf.tidy(() => tf.oneHot(tf.randomUniform([batchSize], 0, numClasses, 'int32', options.seed), numClasses));
  const pool = await WorkerPool.start({ workers: options.workers, model, optimizer: { ...options.optimizer, featuresLrScale: 1 }, classifier: classifierIndices(model), syncBatchNorm: options.syncBatchNorm });
  try {
    const step = () => pool.step({ xs, ys, lr: options.optimizer.lr, features: true, dropout: { seed: options.seed, step: [0] } });
    for (let i = 0; i < WARMUP_STEPS; i++) await step(); // as measureTrainingStep
    const stepMs: number[] = [];
    for (let i = 0; i < options.steps; i++) {
      const start = performance.now();
      await step();
      stepMs.push(performance.now() - start);
    }
    return { msPerStep: median(stepMs), stepMs, workerBackendBytes: await pool.backendPeakBytes(), mainBackendBytes: await backendPeakBytes() };
  } finally {
    await pool.close();
    tf.dispose([xs, ys]);
  }
}
