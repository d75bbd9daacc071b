/** One epoch of training steps: learning-rate schedule, the step, divergence check, metrics and progress. */
import * as tf from '@tensorflow/tfjs';
import { withDropoutContext } from '../ops/dropout.js';
import { WorkerFailedError, type WorkerPool } from '../parallel/pool.js';
import { UsageError } from '../util/errors.js';
import type { DataSource } from './data-source.js';
import type { RunSettings } from './options.js';
import type { ParamGroups, TrainingOptimizer } from '../step/optimizers.js';
import type { TrainingProgress } from './progress.js';
import { learningRateAt } from './schedule.js';
import { TrainingDivergedError, type BatchMetrics, type EpochMetrics, type TrainCallbacks } from './types.js';

/**
 * PyTorch's `cross_entropy(label_smoothing=ε)` as targets: (1 − ε)·onehot + ε/K. Accuracy is unchanged (the
 * argmax stays the true class).
 */
export function smoothLabels(ys: tf.Tensor, epsilon: number): tf.Tensor {
  if (epsilon === 0) return ys;
  const classes = ys.shape[ys.shape.length - 1]!;
  return tf.tidy(() => tf.add(tf.mul(ys, 1 - epsilon), epsilon / classes));
}

/** One training step's request: the batch (targets already smoothed), the learning rate, what trains. */
export interface StepRequest {
  xs: tf.Tensor;
  targets: tf.Tensor;
  lr: number;
  /** The trained variables; no features: they run in inference mode (running BatchNorm statistics, no dropout). */
  groups: ParamGroups;
  /** Dropout masks derive from (seed, epoch, batch, layer, sample): the same run again, or resumed, draws the same. */
  dropout: { seed: number; step: number[] };
}

/** Runs one step: in this thread, or split over a worker pool. Resolves with the batch's mean loss and correct count. */
export type StepRunner = (request: StepRequest) => Promise<{ loss: number; correct: number }>;

/** Steps in this thread, on the model and optimizer of record. */
export function localSteps(model: tf.LayersModel, optimizer: TrainingOptimizer): StepRunner {
  return async ({ xs, targets, lr, groups, dropout }) => {
    optimizer.setLearningRate(lr);
    const training = groups.features.length > 0;
    const out = optimizer.step(() => withDropoutContext(dropout, () => model.apply(xs, { training }) as tf.Tensor), targets, groups);
    const [loss, correct] = [(await out.loss.data())[0]!, (await out.correct.data())[0]!];
    tf.dispose([out.loss, out.correct]);
    return { loss, correct };
  };
}

/** Steps split over data-parallel workers (their replicas train; the model of record is updated by pool.pull). */
export function poolSteps(pool: WorkerPool): StepRunner {
  return ({ xs, targets, lr, groups, dropout }) => pool.step({ xs, ys: targets, lr, features: groups.features.length > 0, dropout });
}

/** Where a stopped run can be continued from, for its error message. */
function keptNote(outDir: string | undefined, history: EpochMetrics[]): string {
  const last = history.length > 0 ? history[history.length - 1]!.epoch : 0;
  if (outDir === undefined) return '';
  return last > 0 ? `; the last good snapshot (epoch ${last}) is kept in ${outDir}` : `; no snapshot had been written to ${outDir} yet`;
}

interface EpochTotals {
  loss: number;
  accuracy: number;
  images: number;
  seconds: number;
  lr: number;
}

export async function trainEpoch(
  runStep: StepRunner,
  variables: ParamGroups,
  data: DataSource,
  settings: RunSettings,
  epoch: number,
  callbacks: TrainCallbacks,
  progress: TrainingProgress,
  outDir: string | undefined,
  history: EpochMetrics[],
): Promise<EpochTotals> {
  const iterator = await data.trainFor(epoch).iterator();
  let lossSum = 0;
  let correct = 0;
  let images = 0;
  let batch = 0;
  let stepSeconds = 0;
  let firstLr = NaN;
  for (;;) {
    const next = await iterator.next();
    if (next.done) break;
    const { xs, ys } = next.value;
    const lr = learningRateAt(settings.schedule, settings.lr, settings.epochs, { epoch, batch, batchesPerEpoch: data.batchesPerEpoch });
    if (batch === 0) firstLr = lr;
    const n = xs.shape[0]!;
    const start = performance.now();
    let loss: number;
    let batchCorrect: number;
    try {
      if (ys.shape[1] !== data.numClasses) {
        throw new UsageError(`a training batch has labels of width ${ys.shape[1]}; the model has ${data.numClasses} classes`);
      }
      const targets = smoothLabels(ys, settings.labelSmoothing);
      try {
        ({ loss, correct: batchCorrect } = await runStep({ xs, targets, lr, groups: variables, dropout: { seed: settings.seed, step: [epoch, batch] } }));
      } finally {
        if (targets !== ys) targets.dispose();
      }
    } catch (error) {
      if (error instanceof WorkerFailedError) {
        const resume = outDir !== undefined && history.length > 0 ? '; resume continues from it' : '';
        throw new WorkerFailedError(`training stopped at epoch ${epoch + 1}, batch ${batch + 1}: ${error.message}${keptNote(outDir, history)}${resume}`);
      }
      throw error;
    } finally {
      tf.dispose([xs, ys]);
    }
    stepSeconds += (performance.now() - start) / 1000;
    if (!Number.isFinite(loss)) {
      throw new TrainingDivergedError(
        `training diverged: the loss became ${loss} at epoch ${epoch + 1}, batch ${batch + 1} (learning rate ${lr})${keptNote(outDir, history)}; lower lr and start again`,
      );
    }
    lossSum += loss * n;
    correct += batchCorrect;
    images += n;
    batch++;
    const metrics: BatchMetrics = {
      epoch: epoch + 1,
      batch,
      batches: data.batchesPerEpoch,
      loss,
      accuracy: batchCorrect / n,
      epochLoss: lossSum / images,
      epochAccuracy: correct / images,
      lr,
      imagesPerSecond: images / stepSeconds,
    };
    progress.batch({ batch, batches: data.batchesPerEpoch, loss: metrics.epochLoss, accuracy: metrics.epochAccuracy, imagesPerSecond: metrics.imagesPerSecond });
    await callbacks.onBatchEnd?.(metrics);
  }
  if (images === 0) throw new UsageError(`epoch ${epoch + 1} had no training batches`);
  return { loss: lossSum / images, accuracy: correct / images, images, seconds: stepSeconds, lr: firstLr };
}
