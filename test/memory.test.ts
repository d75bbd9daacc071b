import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { measureTrainingStep } from '../src/memory/measure.js';
import { createDenseNet } from '../src/layers/index.js';
import type { MemoryMode } from '../src/layers/config.js';
import { TrainingOptimizer, trainingStep } from '../src/step/step.js';
import { MODES, modeOptions, tinyDenseNet } from './helpers/models.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

async function stepPeak(model: tf.LayersModel, batchSize: number): Promise<number> {
  const result = await measureTrainingStep({ model, batchSize, seed: 1 });
  model.dispose();
  return result.stepPeakBytes;
}

/** One dense block of `layers` layers at 8×8 (after the stem), narrow input so the block dominates. */
function singleBlock(mode: MemoryMode, layers: number): tf.LayersModel {
  return createDenseNet({ growthRate: 8, blockConfig: [layers], numInitFeatures: 8, bnSize: 2, numClasses: 3, inputShape: [32, 32, 3], seed: 3, ...modeOptions(mode) });
}

describe('training-step memory', () => {
  it('layer recomputation < bottleneck recomputation < naive', async () => {
    const peaks = new Map<MemoryMode, number>();
    for (const mode of MODES) peaks.set(mode, await stepPeak(tinyDenseNet(mode), 4));
    expect(peaks.get('layer')!).toBeLessThan(peaks.get('bottleneck')!);
    expect(peaks.get('bottleneck')!).toBeLessThan(peaks.get('naive')!);
  });

  it('naive grows quadratically with block depth, layer recomputation linearly', async () => {
    // With P(L) = a + bL + cL², (P(4L) − P(2L)) / (P(2L) − P(L)) tends to 4 when cL² dominates and to 2 when
    // the growth is linear: log2 of it is the measured exponent.
    const exponent = async (mode: MemoryMode) => {
      const [p1, p2, p4] = [await stepPeak(singleBlock(mode, 4), 2), await stepPeak(singleBlock(mode, 8), 2), await stepPeak(singleBlock(mode, 16), 2)];
      return Math.log2((p4 - p2) / (p2 - p1));
    };
    const naive = await exponent('naive');
    const efficient = await exponent('layer');
    expect(naive).toBeGreaterThan(1.6);
    expect(efficient).toBeLessThan(1.15);
    expect(efficient).toBeGreaterThan(0.85);
  });

  it('block recomputation keeps less than layer recomputation, and stays linear in depth', async () => {
    const [p1, p2, p4] = [await stepPeak(singleBlock('block', 4), 2), await stepPeak(singleBlock('block', 8), 2), await stepPeak(singleBlock('block', 16), 2)];
    expect(p4).toBeLessThan(await stepPeak(singleBlock('layer', 16), 2));
    expect(Math.log2((p4 - p2) / (p2 - p1))).toBeLessThan(1.15);
  });
});

describe('no leaks', () => {
  it.each(MODES)('%s: tensors alive after step 2 equal those after step 20', (mode) => {
    const model = tinyDenseNet(mode);
    const optimizer = new TrainingOptimizer({ name: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 1e-4 });
    const xs = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 2);
    const ys = tf.oneHot([0, 1], 3);
    const counts: number[] = [];
    for (let step = 1; step <= 20; step++) {
      const out = trainingStep(model, optimizer, xs, ys);
      tf.dispose([out.loss, out.correct]);
      counts.push(tf.memory().numTensors);
    }
    expect(counts[19]).toBe(counts[1]);
    tf.dispose([xs, ys]);
    optimizer.dispose();
    model.dispose();
  });
});
