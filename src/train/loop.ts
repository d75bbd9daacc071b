/** One epoch of training steps: learning-rate schedule, the step, divergence check, metrics and progress. */
import * as tf from '@tensorflow/tfjs';
import { withDropoutContext } from '../checkpoint/dropout.js';
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

interface EpochTotals {
  loss: number;
  accuracy: number;
  images: number;
  seconds: number;
  lr: number;
}

export async function trainEpoch(
  model: tf.LayersModel,
  optimizer: TrainingOptimizer,
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
  // Frozen features run in inference mode (running BatchNorm statistics, no dropout).
  const training = variables.features.length > 0;
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
    optimizer.setLearningRate(lr);
    const n = xs.shape[0]!;
    const start = performance.now();
    let loss: number;
    let batchCorrect: number;
    try {
      if (ys.shape[1] !== data.numClasses) {
        throw new UsageError(`a training batch has labels of width ${ys.shape[1]}; the model has ${data.numClasses} classes`);
      }
      const targets = smoothLabels(ys, settings.labelSmoothing);
      // Dropout masks derive from (seed, epoch, batch, layer, sample): the same run again, or resumed, draws the same.
      const dropout = { seed: settings.seed, step: [epoch, batch] };
      let out;
      try {
        out = optimizer.step(() => withDropoutContext(dropout, () => model.apply(xs, { training }) as tf.Tensor), targets, variables);
      } finally {
        if (targets !== ys) targets.dispose();
      }
      [loss, batchCorrect] = [(await out.loss.data())[0]!, (await out.correct.data())[0]!];
      tf.dispose([out.loss, out.correct]);
    } finally {
      tf.dispose([xs, ys]);
    }
    stepSeconds += (performance.now() - start) / 1000;
    if (!Number.isFinite(loss)) {
      const last = history.length > 0 ? history[history.length - 1]!.epoch : 0;
      const kept =
        outDir === undefined
          ? ''
          : last > 0
            ? `; the last good snapshot (epoch ${last}) is kept in ${outDir}`
            : `; no snapshot had been written to ${outDir} yet`;
      throw new TrainingDivergedError(
        `training diverged: the loss became ${loss} at epoch ${epoch + 1}, batch ${batch + 1} (learning rate ${lr})${kept}; lower lr and start again`,
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
