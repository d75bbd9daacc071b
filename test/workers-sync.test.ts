/**
 * The collectives of a data-parallel step, counted and checked against a reference computed in one process:
 * synchronized batch norm takes exactly two barriers per training-mode BN (its statistics, then its backward's
 * two sums) and two for the gradient sum; `syncBatchNorm: false` is PyTorch DDP's default — each shard
 * normalised with its own statistics, gradients averaged over the workers, rank 0's running statistics kept.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { WorkerPool } from '../src/parallel/pool.js';
import { lossGradients, TrainingOptimizer, type OptimizerSettings } from '../src/step/optimizers.js';
import { classifierIndices, paramGroups } from '../src/step/step.js';
import { perturbNorms, tinyDenseNet } from './helpers/models.js';

const OPTIMIZER: OptimizerSettings & { featuresLrScale: number } = { name: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 1e-4, featuresLrScale: 1 };
const BATCH = 8;

beforeAll(async () => {
  await initBackend('wasm');
});

/** tinyDenseNet (blocks of 2 and 3 layers) with non-trivial BN parameters and running statistics. */
function model(): tf.LayersModel {
  return perturbNorms(tinyDenseNet('layer', { dropRate: 0 }), 3);
}

function batch(seed: number): { xs: tf.Tensor; ys: tf.Tensor } {
  const xs = tf.randomNormal([BATCH, 32, 32, 3], 0.3, 1.2, 'float32', seed);
  const ys = tf.tidy(() => tf.oneHot(tf.randomUniform([BATCH], 0, 3, 'int32', seed + 1), 3));
  return { xs, ys };
}

const normsOf = (m: tf.LayersModel) => m.weights.filter((w) => w.originalName.endsWith('/moving_mean')).length;

/** Largest |a − b| / max(|a|∞, 1e-3) over the weights whose names match. */
function maxDifference(a: tf.LayersModel, b: tf.LayersModel, which: (name: string) => boolean): number {
  let worst = 0;
  a.weights.forEach((wa, i) => {
    if (!which(wa.originalName)) return;
    const va = wa.read().dataSync();
    const vb = b.weights[i]!.read().dataSync();
    let diff = 0;
    let norm = 1e-3;
    for (let j = 0; j < va.length; j++) {
      diff = Math.max(diff, Math.abs(va[j]! - vb[j]!));
      norm = Math.max(norm, Math.abs(va[j]!));
    }
    worst = Math.max(worst, diff / norm);
  });
  return worst;
}

const running = (name: string) => name.endsWith('/moving_mean') || name.endsWith('/moving_variance');

/**
 * DDP's step in one process: each shard's forward and backward with its own BN statistics and its mean loss,
 * the gradients averaged; the running statistics are those rank 0's shard left (broadcast_buffers=True).
 */
function referenceDdpStep(m: tf.LayersModel, optimizer: TrainingOptimizer, xs: tf.Tensor, ys: tf.Tensor, shards: number, keptRank = 0): void {
  const groups = paramGroups(m);
  const size = BATCH / shards;
  const summed: tf.NamedTensorMap = {};
  let kept: tf.Tensor[] = [];
  for (let r = 0; r < shards; r++) {
    const x = xs.slice(r * size, size);
    const y = ys.slice(r * size, size);
    const out = lossGradients(() => m.apply(x, { training: true }) as tf.Tensor, y, groups, 1 / shards);
    for (const [name, g] of Object.entries(out.grads)) {
      const previous = summed[name];
      summed[name] = previous ? tf.add(previous, g) : g;
      if (previous) tf.dispose([previous, g]);
    }
    tf.dispose([out.loss, out.correct, x, y]);
    if (r === keptRank) kept = m.nonTrainableWeights.map((w) => w.read().clone());
  }
  m.nonTrainableWeights.forEach((w, i) => w.write(kept[i]!));
  optimizer.apply(summed, groups);
}

describe('data-parallel collectives', () => {
  it('synchronized batch norm: 2 barriers per BN and 2 for the gradients, every step; without: only the gradients', async () => {
    const m = model();
    const norms = normsOf(m);
    expect(norms).toBe(1 + 2 * (2 + 3) + 1 + 1); // stem, 2 per dense layer, the transition, norm5
    const { xs, ys } = batch(1);
    for (const syncBatchNorm of [true, false]) {
      const pool = await WorkerPool.start({ workers: 2, model: m, optimizer: OPTIMIZER, classifier: classifierIndices(m), syncBatchNorm });
      try {
        for (let i = 0; i < 2; i++) {
          await pool.step({ xs, ys, lr: OPTIMIZER.lr, features: true, dropout: { seed: 1, step: [i] } });
          expect(pool.lastStepBarriers).toEqual(syncBatchNorm ? [2 * norms + 2, 2 * norms + 2] : [2, 2]);
        }
      } finally {
        await pool.close();
      }
    }
    tf.dispose([xs, ys]);
    m.dispose();
  }, 60_000);

  it('syncBatchNorm false trains what DDP trains: per-shard BN statistics, averaged gradients, rank 0 running statistics', async () => {
    const pooled = model();
    const reference = model();
    const optimizer = new TrainingOptimizer(OPTIMIZER);
    const rank1 = model();
    const rank1Optimizer = new TrainingOptimizer(OPTIMIZER);
    const pool = await WorkerPool.start({ workers: 2, model: pooled, optimizer: OPTIMIZER, classifier: classifierIndices(pooled), syncBatchNorm: false });
    const before = pooled.getWeights().map((w) => w.clone());
    try {
      for (let step = 0; step < 3; step++) {
        const { xs, ys } = batch(10 + step);
        await pool.step({ xs, ys, lr: OPTIMIZER.lr, features: true, dropout: { seed: 1, step: [step] } });
        referenceDdpStep(reference, optimizer, xs, ys, 2);
        referenceDdpStep(rank1, rank1Optimizer, xs, ys, 2, 1);
        tf.dispose([xs, ys]);
      }
      await pool.pull(pooled);
    } finally {
      await pool.close();
    }
    // The same float32 operations in the same order, but for the sum of the two halves (in float64, rounded
    // once: float32's own sum of two values): bit-exact on wasm when written; the bound allows an ulp or so.
    expect(maxDifference(reference, pooled, (n) => !running(n))).toBeLessThanOrEqual(1e-6);
    expect(maxDifference(reference, pooled, running)).toBeLessThanOrEqual(1e-6);

    // Not trivially equal: the weights moved, and another function (synchronized BN; or rank 1's running
    // statistics) is far from the pooled one.
    expect(maxDifference(rank1, pooled, running)).toBeGreaterThan(1e-3);
    const untrained = model();
    untrained.setWeights(before);
    expect(maxDifference(reference, untrained, (n) => !running(n))).toBeGreaterThan(1e-3);
    const synced = model();
    const syncPool = await WorkerPool.start({ workers: 2, model: synced, optimizer: OPTIMIZER, classifier: classifierIndices(synced) });
    try {
      for (let step = 0; step < 3; step++) {
        const { xs, ys } = batch(10 + step);
        await syncPool.step({ xs, ys, lr: OPTIMIZER.lr, features: true, dropout: { seed: 1, step: [step] } });
        tf.dispose([xs, ys]);
      }
      await syncPool.pull(synced);
    } finally {
      await syncPool.close();
    }
    expect(maxDifference(reference, synced, (n) => !running(n))).toBeGreaterThan(1e-4);
    expect(maxDifference(reference, synced, running)).toBeGreaterThan(1e-3);
    tf.dispose(before);
    [pooled, reference, rank1, untrained, synced].forEach((m) => m.dispose());
  }, 120_000);
});
